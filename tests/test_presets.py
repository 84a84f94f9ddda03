"""The paper-scale preset follows the paper's schedule, and runs on the CPU (a GPU is rarely lent to test it)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from plift_nerfstudio.method_config import panoptic_lifting


def test_paper_preset_follows_the_papers_schedule() -> None:
    config = panoptic_lifting.config
    model, datamanager = config.pipeline.model, config.pipeline.datamanager
    epoch = 45_000  # 450k iterations (paper Sec. 3) over ~10 epochs (facts file)
    assert config.max_num_iterations == 10 * epoch
    assert model.upsampling_iters == (epoch, 2 * epoch, 3 * epoch, 4 * epoch)  # epochs 1..4
    assert (model.init_resolution, model.final_resolution) == (128, 192)
    assert model.semantic_loss_start_step == 0
    assert model.instance_loss_start_step == 3 * epoch and model.consistency_loss_start_step == 6 * epoch
    assert (model.rgb_loss_mult, model.semantic_loss_mult, model.instance_loss_mult) == (1.0, 1.0, 1.0)
    assert model.consistency_loss_mult == 1.35
    assert (model.semantic_mlp_layers, model.semantic_mlp_width, model.instance_mlp_layers) == (5, 256, 3)
    assert model.num_surrogate_ids == 50 and model.position_frequencies == 0
    assert (datamanager.train_num_rays_per_batch, datamanager.single_image_num_rays, datamanager.instance_num_rays) == (
        2048, 1024, 1024)
    optimizers = config.optimizers
    assert optimizers["encodings"]["optimizer"].lr == 1e-2
    for name in ("fields", "semantic_head", "instance_head"):
        assert optimizers[name]["optimizer"].lr == 5e-4, name
    assert all(group["scheduler"] is None for group in optimizers.values())  # constant rates, as the authors train
    assert optimizers["instance_head"]["optimizer"].weight_decay == 1e-3


def test_paper_preset_trains_a_few_steps_on_the_cpu(tiny_scene_dir: Path, tmp_path: Path) -> None:
    """The paper's model sizes, optimisers and schedule; only the batch is smaller, so that three steps are quick."""
    config = copy.deepcopy(panoptic_lifting.config)
    config.machine.device_type = "cpu"  # --machine.device-type cpu
    config.pipeline.datamanager.data = tiny_scene_dir
    config.pipeline.datamanager.dataparser.data = tiny_scene_dir
    datamanager = config.pipeline.datamanager
    datamanager.train_num_rays_per_batch, datamanager.single_image_num_rays, datamanager.instance_num_rays = 128, 64, 64
    config.max_num_iterations = 3
    config.output_dir, config.vis = tmp_path, "tensorboard"
    config.set_timestamp()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    model = trainer.pipeline.model
    assert model.device.type == "cpu" and model.field.grid_resolution == 128
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer.train()
    changed = [k for k, v in model.named_parameters() if not torch.equal(v.detach(), before[k])]
    assert any("density_encoding" in k for k in changed) and any("semantic_head" in k for k in changed)
    for name, optimizer in trainer.optimizers.optimizers.items():
        expected = panoptic_lifting.config.optimizers[name]["optimizer"].lr
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected), name  # no decay
    assert not trainer.optimizers.schedulers


def test_every_preset_is_a_registered_method_with_a_schedule_inside_its_run() -> None:
    """ns-train finds all four presets, and each one's upsampling and loss start steps fall inside its run."""
    from nerfstudio.plugins.registry import discover_methods

    methods, _descriptions = discover_methods()
    for name in ("panoptic-lifting", "panoptic-lifting-lite", "panoptic-lifting-cpu", "panoptic-lifting-quick"):
        assert name in methods, name
        config = methods[name]
        model = config.pipeline.model
        steps = config.max_num_iterations
        assert list(model.upsampling_iters) == sorted(model.upsampling_iters) and model.upsampling_iters[-1] < steps
        assert 0 <= model.instance_loss_start_step < model.consistency_loss_start_step < steps
        assert model.final_resolution >= model.init_resolution
    cpu, lite = methods["panoptic-lifting-cpu"].pipeline.model, methods["panoptic-lifting-lite"].pipeline.model
    assert cpu.final_resolution > lite.final_resolution and cpu.color_components > lite.color_components


def test_quick_preset_is_the_lite_preset_with_sparse_depth_in_fewer_steps() -> None:
    """panoptic-lifting-quick keeps lite's field and heads, adds the CPU preset's sparse depth loss, and compresses
    every step count of lite's schedule by the same factor (what time_to_quality.py measured)."""
    from plift_nerfstudio.method_config import panoptic_lifting_cpu, panoptic_lifting_lite, panoptic_lifting_quick

    quick, lite, cpu = (m.config for m in (panoptic_lifting_quick, panoptic_lifting_lite, panoptic_lifting_cpu))
    factor = quick.max_num_iterations / lite.max_num_iterations
    assert quick.method_name == "panoptic-lifting-quick" and quick.max_num_iterations == 2000 and factor < 1
    q, l_ = quick.pipeline.model, lite.pipeline.model
    assert tuple(q.upsampling_iters) == tuple(round(s * factor) for s in l_.upsampling_iters)
    for name in ("instance_loss_start_step", "consistency_loss_start_step", "occupancy_warmup_steps"):
        assert getattr(q, name) == round(getattr(l_, name) * factor), name
    for name, group in quick.optimizers.items():
        assert group["scheduler"].max_steps == quick.max_num_iterations, name
        assert group["optimizer"].lr == lite.optimizers[name]["optimizer"].lr, name
    for name in ("final_resolution", "density_components", "color_components", "num_samples",
                 "max_kept_samples_per_ray", "semantic_mlp_width", "num_surrogate_ids", "consistency_loss_mult"):
        assert getattr(q, name) == getattr(l_, name), name
    assert q.sparse_depth_loss_mult == cpu.pipeline.model.sparse_depth_loss_mult > 0
    assert quick.pipeline.datamanager.sparse_depth_num_rays == cpu.pipeline.datamanager.sparse_depth_num_rays > 0
    assert q.samples_follow_resolution and not l_.samples_follow_resolution
    assert l_.sparse_depth_loss_mult == 0 and lite.pipeline.datamanager.sparse_depth_num_rays == 0  # lite untouched
    assert quick.steps_per_save <= quick.max_num_iterations
