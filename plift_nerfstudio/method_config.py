"""nerfstudio method registrations: ``panoptic-lifting`` (paper scale, for GPUs), ``panoptic-lifting-lite`` (CPU,
small scenes), ``panoptic-lifting-cpu`` (CPU, real rooms) and ``panoptic-lifting-quick`` (CPU, a first look).

Every ``ns-*`` command imports this module, so it only builds config objects.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Dict, Tuple

import torch
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from plift_nerfstudio.datamanager.panoptic_datamanager import PanopticDataManagerConfig
from plift_nerfstudio.model import PanopticLiftingModelConfig
from plift_nerfstudio.pipeline import PanopticPipelineConfig
from plift_nerfstudio.schedulers import FloatExponentialDecaySchedulerConfig
from plift_nerfstudio.trainer import PanopticTrainer


def _optimizers(max_steps: int, grid_lr: float = 0.02, mlp_lr: float = 5e-4) -> dict:
    """Adam per parameter group; rates decay tenfold over the run (float-only schedule)."""
    def adam(lr: float, final: float, weight_decay: float = 0.0) -> dict:
        return {
            "optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15, weight_decay=weight_decay),
            "scheduler": FloatExponentialDecaySchedulerConfig(lr_final=final, max_steps=max_steps),
        }

    return {
        "fields": adam(1e-3, 1e-4),
        "encodings": adam(grid_lr, grid_lr / 10),
        "semantic_head": adam(mlp_lr, mlp_lr / 10),
        "instance_head": adam(mlp_lr, mlp_lr / 10, weight_decay=1e-6),
    }


def _machine() -> MachineConfig:
    """CUDA when this machine has it, else the CPU (nerfstudio's own default is CUDA only)."""
    return MachineConfig(device_type="cuda" if torch.cuda.is_available() else "cpu")


def _dataparser(scene_scale: float) -> NerfstudioDataParserConfig:
    # every 6th frame held out for evaluation unless transforms.json lists the splits (as plift-synth writes)
    return NerfstudioDataParserConfig(eval_mode="interval", eval_interval=6, scene_scale=scene_scale)


def dataparser_config(data: Path) -> NerfstudioDataParserConfig:
    """The presets' dataparser (the same train/eval split) for the dataset at ``data``."""
    config = _dataparser(scene_scale=2.0)
    config.data = Path(data)
    return config


def stretch_schedule(config: TrainerConfig, steps: int) -> TrainerConfig:
    """A copy of ``config`` whose schedule is stretched (or compressed) to ``steps`` training steps: the step count,
    the learning-rate decays, the grid upsampling steps, the loss start steps and the occupancy warm-up move together
    (``--max-num-iterations`` alone moves only the first)."""
    config = copy.deepcopy(config)
    factor = steps / config.max_num_iterations
    config.max_num_iterations = steps
    model = config.pipeline.model
    model.upsampling_iters = tuple(max(1, round(s * factor)) for s in model.upsampling_iters)  # type: ignore[attr-defined]
    for name in ("semantic_loss_start_step", "instance_loss_start_step", "consistency_loss_start_step",
                 "occupancy_warmup_steps"):
        setattr(model, name, round(getattr(model, name) * factor))
    for group in config.optimizers.values():
        scheduler = group.get("scheduler")
        if isinstance(scheduler, FloatExponentialDecaySchedulerConfig):
            group["scheduler"] = dataclasses.replace(scheduler, max_steps=steps)
    return config


def _trainer(method_name: str, steps: int, eval_batch_every: int, eval_image_every: int, save_every: int,
             datamanager: PanopticDataManagerConfig, model: PanopticLiftingModelConfig, optimizers: dict,
             viewer_rays: int) -> TrainerConfig:
    """A preset's trainer: this method's trainer and pipeline, full precision, the viewer on."""
    return TrainerConfig(
        _target=PanopticTrainer,
        method_name=method_name,
        steps_per_eval_batch=eval_batch_every,
        steps_per_eval_image=eval_image_every,
        steps_per_save=save_every,
        max_num_iterations=steps,
        mixed_precision=False,
        pipeline=PanopticPipelineConfig(datamanager=datamanager, model=model),
        optimizers=optimizers,
        viewer=ViewerConfig(num_rays_per_chunk=viewer_rays),
        vis="viewer",
        machine=_machine(),
    )


def _paper_optimizers() -> dict:
    """Adam per parameter group at constant rates, as the authors train (their decay is never stepped, facts file
    'Schedule'): grids 1e-2 (paper Sec. 3 'Implementation Details'; the supplementary says 0.02, the code 0.01), MLPs
    5e-4 (paper Sec. 3), the surrogate-id MLP with weight decay 1e-3 (facts file 'Instance')."""
    def adam(lr: float, weight_decay: float = 0.0) -> dict:
        return {"optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15, weight_decay=weight_decay), "scheduler": None}

    return {
        "fields": adam(PAPER_MLP_LR),
        "encodings": adam(PAPER_GRID_LR),
        "semantic_head": adam(PAPER_MLP_LR),
        "instance_head": adam(PAPER_MLP_LR, weight_decay=PAPER_INSTANCE_WEIGHT_DECAY),
    }


# The paper-scale schedule, each value from ../shared/reference (paper text or the facts file on the authors' code).
# The authors count epochs (one pass over all training pixels, ~10 per run); the paper trains 450k iterations.
# Where ours still differs from the authors, on purpose: no bounding-box shrink at epochs 1-3 (the scene box is
# fixed; the occupancy grid skips empty space instead); no distortion loss (their code ramps it to 0.005; it is not
# in the paper, and on our CPU demo scene a constant 0.01 cost 20 PQscene); no weight decay of 1e-8 on the grids
# before the first upsampling; the paper's semantic loss weight 1 and 50 surrogate ids, not their code's 0.1 and 25;
# density is queried through an occupancy grid with early ray termination (the same renders, tested).
PAPER_STEPS = 450_000  # paper Sec. 3 'Implementation Details': "450k iterations (~10 hours)" on one A6000
PAPER_EPOCH = PAPER_STEPS // 10  # facts 'Schedule': ~10 epochs in all
PAPER_GRID_LR = 1e-2
PAPER_MLP_LR = 5e-4
PAPER_INSTANCE_WEIGHT_DECAY = 1e-3
panoptic_lifting = MethodSpecification(
    config=_trainer(
        "panoptic-lifting", PAPER_STEPS, 500, 5000, 5000,
        datamanager=PanopticDataManagerConfig(
            # paper supplementary C.1: batches of 2048 rays; facts 'Instance': up to 1024 thing rays of one image
            dataparser=_dataparser(scene_scale=2.0), train_num_rays_per_batch=2048, single_image_num_rays=1024,
            instance_num_rays=1024,
        ),
        model=PanopticLiftingModelConfig(
            # facts 'Schedule': grids upsampled at epochs 1..4, 128^3 -> 192^3 log-spaced, optimisers rebuilt
            init_resolution=128,
            final_resolution=192,
            upsampling_iters=tuple(PAPER_EPOCH * e for e in (1, 2, 3, 4)),
            # facts 'Field and sampling': a step of half a voxel, ~440 samples per ray at 128^3
            num_samples=440,
            # facts 'Schedule': semantic loss from epoch 0, instance loss from epoch 3, segment loss from epoch 6
            semantic_loss_start_step=0,
            instance_loss_start_step=3 * PAPER_EPOCH,
            consistency_loss_start_step=6 * PAPER_EPOCH,
            # paper Sec. 3: lambda_con 1.35, lambda_ins = lambda_sem = lambda_RGB = 1; supplementary C.1: 5 x 256
            # semantic MLP, 3-layer surrogate-id MLP, 50 ids; the defaults of PanopticLiftingModelConfig
        ),
        optimizers=_paper_optimizers(),
        viewer_rays=1 << 14,
    ),
    description="Panoptic Lifting (CVPR 2023): 3D-consistent panoptic segmentation from noisy 2D labels; paper-scale "
                "(450k steps, the paper's schedule), for GPUs.",
)

LITE_STEPS = 3_000
panoptic_lifting_lite = MethodSpecification(
    config=_trainer(
        "panoptic-lifting-lite", LITE_STEPS, 250, 1000, 1000,
        datamanager=PanopticDataManagerConfig(
            dataparser=_dataparser(scene_scale=2.0), train_num_rays_per_batch=1024, single_image_num_rays=512,
            instance_num_rays=256,
        ),
        model=PanopticLiftingModelConfig(
            init_resolution=48,
            final_resolution=96,
            upsampling_iters=(500, 1000, 1500),
            num_samples=96,
            max_kept_samples_per_ray=16,
            # skip the cells no training camera sees (demo scene: 99% -> 51% of the grid occupied, same quality)
            visibility_update_every=256,
            density_components=8,
            color_components=16,
            color_mlp_width=64,
            semantic_mlp_layers=3,
            semantic_mlp_width=64,
            instance_mlp_layers=3,
            instance_mlp_width=64,
            num_surrogate_ids=24,
            position_frequencies=6,
            instance_loss_start_step=300,
            # the segment loss pushes each 2D segment to the field's current majority class: switched on
            # before the semantic field has learnt small classes (door, window, lamp) it locks them into
            # their surroundings (mIoU 55 with weight 1.35 from step 600, 80 with 0.3 from step 1500)
            consistency_loss_mult=0.3,
            consistency_loss_start_step=1500,
            eval_num_rays_per_chunk=8192,
        ),
        # few steps: the segmentation heads learn faster than the paper's 5e-4
        optimizers=_optimizers(LITE_STEPS, mlp_lr=2e-3),
        viewer_rays=1 << 13,
    ),
    description="Panoptic Lifting, CPU-sized: small grids and heads that train a small scene in minutes on 2 cores.",
)

# The CPU preset for real rooms (issue 14): photoreal rooms need more capacity and steps than the procedural demo
# scene. Sized to train a 48-view 192x144 room in under 30 minutes on 2 CPU cores; see docs/results.md, "Realistic rooms".
CPU_STEPS = 2_500
panoptic_lifting_cpu = MethodSpecification(
    config=_trainer(
        "panoptic-lifting-cpu", CPU_STEPS, 500, 1250, 500,
        datamanager=PanopticDataManagerConfig(
            dataparser=_dataparser(scene_scale=2.0), train_num_rays_per_batch=1024, single_image_num_rays=512,
            instance_num_rays=256,
            sparse_depth_num_rays=256,
        ),
        model=PanopticLiftingModelConfig(
            init_resolution=48,
            final_resolution=112,
            upsampling_iters=(250, 500, 850, 1250),
            num_samples=128,
            max_kept_samples_per_ray=24,
            density_components=16,
            color_components=32,
            color_mlp_width=128,
            semantic_mlp_layers=3,
            semantic_mlp_width=128,
            instance_mlp_layers=3,
            instance_mlp_width=128,
            num_surrogate_ids=32,
            position_frequencies=6,
            # each head reads a VM grid of its own: small objects keep their class instead of their surroundings'
            # (six v2 rooms, three of them held out, against no grids: 8 components +3.3 PQ / +4.5 mIoU, 16 components
            # +5.6 / +6.4, every room up; a training step 1.19x the time without grids)
            segmentation_grid_components=16,
            occupancy_warmup_steps=250,
            # a room fills 6-15% of the dataparser's cube: shrink the box to it once the walls have formed
            box_shrink_step=400,
            # rays through COLMAP's points (plift-sparse-depth) end there: pins plain walls and cabinet fronts
            # that photo-consistency alone leaves floating (kitchen: depth error 55 -> 10 cm, PQ +3 -> +14)
            sparse_depth_loss_mult=0.1,
            instance_loss_start_step=250,
            consistency_loss_mult=0.3,
            consistency_loss_start_step=1250,
            eval_num_rays_per_chunk=8192,
        ),
        optimizers=_optimizers(CPU_STEPS, mlp_lr=2e-3),
        viewer_rays=1 << 13,
    ),
    description="Panoptic Lifting for real rooms on a CPU: larger grids and heads than -lite, 2500 steps "
                "(under 30 minutes on 2 cores for a 48-view room).",
)

# A first look while the user is still there (issue 15): the lite preset with panoptic-lifting-cpu's sparse depth
# loss, its whole schedule compressed from 3000 to 2000 steps, samples per ray growing with the grids. On the demo
# scene (2 CPU cores, seeds 42 and 7) it reaches 90% of its final PQscene in 1.0-1.5 minutes, and after 3.4-3.6 ends
# where the lite preset without sparse depth ends after 9-11 (docs/results.md).
QUICK_STEPS = 2_000


def cpu_sparse_depth_settings() -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(model, datamanager) options of ``panoptic-lifting-cpu``'s sparse depth loss, to add it to another preset."""
    cpu = panoptic_lifting_cpu.config.pipeline
    return ({"sparse_depth_loss_mult": cpu.model.sparse_depth_loss_mult},  # type: ignore[attr-defined]
            {"sparse_depth_num_rays": cpu.datamanager.sparse_depth_num_rays})  # type: ignore[attr-defined]


def _quick_config() -> TrainerConfig:
    config = stretch_schedule(panoptic_lifting_lite.config, QUICK_STEPS)
    config.method_name = "panoptic-lifting-quick"
    config.steps_per_eval_batch = 250
    config.steps_per_eval_image = 500
    config.steps_per_save = 500
    model_settings, datamanager_settings = cpu_sparse_depth_settings()
    for part, settings in ((config.pipeline.model, model_settings), (config.pipeline.datamanager, datamanager_settings)):
        for key, value in settings.items():
            setattr(part, key, value)
    # 48 samples per ray (8 shaded) on the 48^3 grid, 96 (16) from the last upsampling on: in the 1500-step version
    # of this schedule the first 250 steps took 0.4-0.5 minutes instead of 0.8-1.0, same final quality (two seeds)
    config.pipeline.model.samples_follow_resolution = True  # type: ignore[attr-defined]
    return config


panoptic_lifting_quick = MethodSpecification(
    config=_quick_config(),
    description="Panoptic Lifting, a first look on a CPU: the lite preset with sparse depth (run plift-sparse-depth "
                "first) in 2000 steps, about 3.5 minutes for a small scene on 2 cores.",
)
