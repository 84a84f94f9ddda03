"""A short run through nerfstudio's own trainer on a tiny generated scene; its checkpoint reloads and renders."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from nerfstudio.utils.eval_utils import eval_setup

from plift_nerfstudio.method_config import panoptic_lifting_lite

STEPS = 80


def tiny_config(data: Path, output_dir: Path):
    config = copy.deepcopy(panoptic_lifting_lite.config)
    config.pipeline.datamanager.data = data
    config.pipeline.datamanager.dataparser.data = data
    config.pipeline.datamanager.train_num_rays_per_batch = 256
    config.pipeline.datamanager.single_image_num_rays = 128
    model = config.pipeline.model
    model.init_resolution, model.final_resolution, model.upsampling_iters = 24, 32, (30, 50)
    model.num_samples = 48
    model.instance_loss_start_step = 10
    model.consistency_loss_start_step = 20
    model.background_color = "black"  # deterministic loss for the before/after comparison
    config.output_dir = output_dir
    config.vis = "tensorboard"
    config.max_num_iterations = STEPS
    config.steps_per_save = STEPS
    config.steps_per_eval_batch = 1000
    config.steps_per_eval_image = 1000
    config.steps_per_eval_all_images = 100000
    config.set_timestamp()
    return config


def fixed_batch_loss(pipeline, ray_bundle, batch) -> float:
    pipeline.model.train()
    with torch.no_grad():
        out = pipeline.model(ray_bundle)
        losses = pipeline.model.get_loss_dict(out, batch, {})
    return float(losses["rgb_loss"] + losses["semantic_loss"])


def test_train_reload_and_render(tiny_scene_dir: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_scene_dir, tmp_path / "outputs")
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    pipeline = trainer.pipeline
    torch.manual_seed(1)
    ray_bundle, batch = pipeline.datamanager.next_train(0)
    before = fixed_batch_loss(pipeline, ray_bundle, batch)
    trainer.train()
    after = fixed_batch_loss(pipeline, ray_bundle, batch)
    assert after < 0.85 * before, (before, after)
    assert pipeline.model.field.grid_resolution == 32  # upsampled twice during training

    checkpoints = sorted((config.get_base_dir() / "nerfstudio_models").glob("*.ckpt"))
    assert checkpoints, "no checkpoint written"
    _, loaded, _, step = eval_setup(config.get_base_dir() / "config.yml", test_mode="test")
    assert step == STEPS - 1
    assert loaded.model.field.grid_resolution == 32
    trained_state = pipeline.model.state_dict()
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value.cpu(), trained_state[name].cpu()), name

    camera = loaded.datamanager.train_dataset.cameras[0:1]
    outputs = loaded.model.get_outputs_for_camera(camera)
    h, w = int(camera.height), int(camera.width)
    for key in ("rgb", "semantics", "instances", "panoptic"):
        assert outputs[key].shape == (h, w, 3), key
    assert outputs["semantic_id"].shape == (h, w, 1)
    assert outputs["semantic_id"].min() >= 1 and outputs["semantic_id"].max() <= 21

    # the evaluation renders every test view and scores ours and the 2D labels against ground truth
    from plift_nerfstudio.evaluation import evaluate_pipeline

    result = evaluate_pipeline(loaded, keep_renders=1)
    assert result.num_views == 3 and len(result.renders) == 1
    for key in ("scene_pq", "pq", "miou", "psnr", "ssim"):
        assert result.ours[key] is not None and result.ours[key] >= 0, key
    assert 0 <= result.ours["miou"] <= 100 and result.ours["psnr"] > 10
    assert result.machine_labels["scene_pq"] is None  # per-frame ids: PQscene is not defined
    assert result.machine_labels["miou"] > 0
    # the picture: test image | ground truth | machine labels | ours | our colour, one row per kept view
    import cv2

    from plift_nerfstudio.eval_cli import GRID_COLUMNS, grid_png

    grid_png(result.renders, tmp_path / "grid.png")
    height, width = result.renders[0]["image"].shape[:2]
    assert cv2.imread(str(tmp_path / "grid.png")).shape == (height, width * len(GRID_COLUMNS), 3)
    assert not np.allclose(result.renders[0]["gt_panoptic"], result.renders[0]["image"])

    # ns-eval: nerfstudio's per-image averages plus the scene-level metrics computed over all test views at once
    ns_eval = loaded.get_average_eval_image_metrics(output_path=tmp_path / "ns-eval-images", get_std=True)
    assert abs(ns_eval["psnr"] - result.ours["psnr"]) < 1e-4 and "psnr_std" in ns_eval
    for key in ("scene_pq", "scene_sq", "scene_rq", "pq", "miou"):
        assert abs(ns_eval[key] - result.ours[key]) < 1e-6, key
    assert abs(ns_eval["labels_miou"] - result.machine_labels["miou"]) < 1e-6
    assert len(list((tmp_path / "ns-eval-images").glob("eval_panoptic_*.png"))) == 3
