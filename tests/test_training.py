"""A short run through nerfstudio's own trainer on a tiny generated scene; its checkpoint reloads and renders."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from nerfstudio.utils.eval_utils import eval_setup

from plift_nerfstudio.labels.frame_labels import read_label_png
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


def frames_of_test_split(data: Path):
    meta = json.loads((data / "transforms.json").read_text())
    return [f for f in meta["frames"] if f["file_path"] in set(meta["test_filenames"])]


def read_test_frame_names(data: Path):
    return [Path(f["file_path"]).name for f in frames_of_test_split(data)]


def read_test_frame_maps(data: Path):
    """Ground-truth and 2D-label maps of the dataset's test frames, read straight from their files."""
    frames = frames_of_test_split(data)

    def stack(key: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([read_label_png(data / f[key]).astype(np.int64) for f in frames]))

    return stack("gt_semantics_path"), stack("gt_instances_path"), stack("semantics_path"), stack("instances_path")


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
    assert (outputs["semantic_id"] > 0).float().mean() > 0.95 and outputs["semantic_id"].max() <= 21  # 0: void

    # whole-image renders merge panoptic segments under min_segment_share into their neighbours; 0 keeps them all
    model = loaded.model
    segment_key = lambda out: out["semantic_id"][..., 0].long() * 1000 + out["instance_id"][..., 0].long()  # noqa: E731
    default_share = model.config.min_segment_share
    model.config.min_segment_share = 0.0
    cameras = loaded.datamanager.train_dataset.cameras
    renders = [model.get_outputs_for_camera(cameras[i : i + 1]) for i in range(len(cameras))]
    most = max(range(len(renders)), key=lambda i: len(torch.unique(segment_key(renders[i]))))  # most segments
    raw, camera = renders[most], cameras[most : most + 1]
    _, raw_areas = torch.unique(segment_key(raw)[segment_key(raw) > 0], return_counts=True)
    assert len(raw_areas) >= 2, len(raw_areas)
    min_pixels = int(raw_areas.min()) + 1  # at least the smallest segment must go
    model.config.min_segment_share = min_pixels / segment_key(raw).numel()
    merged = model.get_outputs_for_camera(camera)
    model.config.min_segment_share = default_share
    _, merged_areas = torch.unique(segment_key(merged)[segment_key(merged) > 0], return_counts=True)
    assert merged_areas.min() >= min_pixels and len(merged_areas) < len(raw_areas)
    changed = segment_key(raw) != segment_key(merged)
    assert 0 < int(changed.sum()) <= int(raw_areas[raw_areas < min_pixels].sum())
    assert torch.equal(raw["rgb"], merged["rgb"]) and torch.equal(raw["depth"], merged["depth"])
    colours = model.class_colors.to(merged["semantics"].device)[merged["semantic_id"][..., 0].long()]
    assert torch.allclose(merged["semantics"], colours)

    # views listed apart from transforms.json (e.g. off the walk) are placed in the trained scene as the dataparser
    # placed the dataset's own: a training frame given that way gets the training camera's pose
    from plift_nerfstudio.evaluation.eval_views import cameras_of_frames

    meta = json.loads((tiny_scene_dir / "transforms.json").read_text())
    train_cameras = loaded.datamanager.train_dataset.cameras
    first = Path(loaded.datamanager.train_dataset.image_filenames[0]).name
    frame = next(f for f in meta["frames"] if Path(f["file_path"]).name == first)
    placed = cameras_of_frames(loaded, [frame], meta)
    assert torch.allclose(placed.camera_to_worlds[0].cpu(), train_cameras.camera_to_worlds[0].cpu(), atol=1e-5)
    assert float(placed.fx[0]) == pytest.approx(float(train_cameras.fx[0]))

    # the evaluation renders every test view and scores ours and the 2D labels against ground truth
    from plift_nerfstudio.evaluation.eval_views import evaluate_pipeline, flat_metrics
    from plift_nerfstudio.evaluation.metrics import PROTOCOLS, protocol_scores

    result = evaluate_pipeline(loaded, keep_renders=1)
    assert result.num_views == 3 and len(result.renders) == 1
    gt_sem, gt_ins, label_sem, label_ins = read_test_frame_maps(tiny_scene_dir)
    # the 2D labels' row is their own files scored against the ground truth of the same frames, by the same rules
    expected = protocol_scores(label_sem, label_ins, gt_sem, gt_ins, 21, scene_level=False)
    for protocol in PROTOCOLS:
        assert result.machine_labels[protocol] == pytest.approx(expected[protocol]), protocol
        assert result.machine_labels[protocol]["scene_pq"] is None  # per-frame ids: PQscene is not defined
        for key in ("scene_pq", "scene_sq", "scene_rq", "pq", "sq", "rq", "miou"):
            assert 0 <= result.ours[protocol][key] <= 100, (protocol, key)
    # level comparison: the labels again, with the small-segment merge our renders get
    from plift_nerfstudio.panoptic import merge_small_segments

    assert result.min_segment_share == loaded.model.config.min_segment_share > 0
    merged = [merge_small_segments(s, i, round(result.min_segment_share * s.numel())) for s, i in zip(label_sem, label_ins)]
    merged_sem, merged_ins = torch.stack([m[0] for m in merged]), torch.stack([m[1] for m in merged])
    expected_merged = protocol_scores(merged_sem, merged_ins, gt_sem, gt_ins, 21, scene_level=False)
    for protocol in PROTOCOLS:
        assert result.machine_labels_merged[protocol] == pytest.approx(expected_merged[protocol]), protocol
    # our row is our renders of the same frames (paired with the ground truth by file name here, not by the
    # evaluation's loop) scored by the same rules: a render scored against another frame's ground truth would differ
    eval_dataset = loaded.datamanager.eval_dataset
    names = [Path(f).name for f in eval_dataset.image_filenames]
    renders = [loaded.model.get_outputs_for_camera(eval_dataset.cameras[names.index(name):names.index(name) + 1])
               for name in read_test_frame_names(tiny_scene_dir)]
    our_sem = torch.stack([r["semantic_id"][..., 0].long().cpu() for r in renders])
    our_ins = torch.stack([r["instance_id"][..., 0].long().cpu() for r in renders])
    ours_expected = protocol_scores(our_sem, our_ins, gt_sem, gt_ins, 21, scene_level=True)
    for protocol in PROTOCOLS:
        assert result.ours[protocol] == pytest.approx(ours_expected[protocol], abs=1e-6), protocol
    # the same frames given as views listed apart (how views off the walk are scored) score the same
    from plift_nerfstudio.evaluation.eval_views import evaluate_extra_views

    apart = evaluate_extra_views(loaded, tiny_scene_dir, frames_of_test_split(tiny_scene_dir))
    for protocol in PROTOCOLS:
        assert apart.ours[protocol] == pytest.approx(ours_expected[protocol], abs=1e-6), protocol
        assert apart.machine_labels[protocol] == pytest.approx(expected[protocol]), protocol
        assert apart.machine_labels_merged[protocol] == pytest.approx(expected_merged[protocol]), protocol
    # 80 steps on 9 tiny frames: about 14-16 dB, varying with the CPU's floating-point paths; an untrained field
    # renders black (5.2 dB on these images)
    assert result.image_metrics["psnr"] > 12
    # the picture: test image | ground truth | machine labels | ours | our colour, one row per kept view
    import cv2

    from plift_nerfstudio.cli.eval import GRID_COLUMNS, grid_png

    grid_png(result.renders, tmp_path / "grid.png")
    height, width = result.renders[0]["image"].shape[:2]
    assert cv2.imread(str(tmp_path / "grid.png")).shape == (height, width * len(GRID_COLUMNS), 3)
    assert not np.allclose(result.renders[0]["gt_panoptic"], result.renders[0]["image"])

    # ns-eval: nerfstudio's per-image averages plus the scene-level metrics computed over all test views at once
    ns_eval = loaded.get_average_eval_image_metrics(output_path=tmp_path / "ns-eval-images", get_std=True)
    assert abs(ns_eval["psnr"] - result.image_metrics["psnr"]) < 1e-4 and "psnr_std" in ns_eval
    flat = flat_metrics(result)
    for protocol in PROTOCOLS:
        for key in ("scene_pq", "scene_sq", "scene_rq", "pq", "miou"):
            assert ns_eval[f"{protocol}_{key}"] == pytest.approx(flat[f"{protocol}_{key}"], abs=1e-6), (protocol, key)
        assert ns_eval[f"labels_{protocol}_miou"] == pytest.approx(flat[f"labels_{protocol}_miou"], abs=1e-6)
        assert ns_eval[f"labels_merged_{protocol}_pq"] == pytest.approx(flat[f"labels_merged_{protocol}_pq"], abs=1e-6)
        assert f"labels_{protocol}_scene_pq" not in ns_eval
    assert len(list((tmp_path / "ns-eval-images").glob("eval_panoptic_*.png"))) == 3


def test_benchmark_runs_repeat_exactly(tiny_scene_dir: Path, tmp_path: Path) -> None:
    """A benchmark's run (seeded as ns-train seeds) gives the same weights twice, whatever the global generators
    held before: the benchmarks' numbers repeat."""
    from plift_nerfstudio.bench.harness import seeded_trainer

    weights = []
    for attempt in range(2):
        torch.manual_seed(1000 + attempt), np.random.seed(1000 + attempt)  # leftovers of whatever ran before
        config = tiny_config(tiny_scene_dir, tmp_path / f"run{attempt}")
        config.max_num_iterations = config.steps_per_save = 25
        trainer = seeded_trainer(config)
        trainer.train()
        weights.append({k: v.detach().clone() for k, v in trainer.pipeline.model.state_dict().items()})
    assert weights[0].keys() == weights[1].keys()
    changed = [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])]
    assert not changed, f"weights differ between two seeded runs: {changed[:5]}"
