"""nerfstudio method registrations: ``panoptic-lifting`` (paper scale, for GPUs) and ``panoptic-lifting-lite`` (CPU).

Every ``ns-*`` command imports this module, so it only builds config objects.
"""

from __future__ import annotations

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


PAPER_STEPS = 40_000
panoptic_lifting = MethodSpecification(
    config=TrainerConfig(
        _target=PanopticTrainer,
        method_name="panoptic-lifting",
        steps_per_eval_batch=500,
        steps_per_eval_image=2000,
        steps_per_save=2000,
        max_num_iterations=PAPER_STEPS,
        mixed_precision=False,
        pipeline=PanopticPipelineConfig(
            datamanager=PanopticDataManagerConfig(
                dataparser=_dataparser(scene_scale=2.0), train_num_rays_per_batch=2048, single_image_num_rays=1024
            ),
            model=PanopticLiftingModelConfig(
                init_resolution=128,
                final_resolution=192,
                upsampling_iters=(2000, 3000, 4000, 5500, 7000),
                num_samples=384,
                instance_loss_start_step=4000,
                # the official schedule turns the segment loss on at 60% of training (epoch 6 of 10)
                consistency_loss_start_step=24000,
            ),
        ),
        optimizers=_optimizers(PAPER_STEPS),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 14),
        vis="viewer",
        machine=_machine(),
    ),
    description="Panoptic Lifting (CVPR 2023): 3D-consistent panoptic segmentation from noisy 2D labels; paper-scale, for GPUs.",
)

LITE_STEPS = 3_000
panoptic_lifting_lite = MethodSpecification(
    config=TrainerConfig(
        _target=PanopticTrainer,
        method_name="panoptic-lifting-lite",
        steps_per_eval_batch=250,
        steps_per_eval_image=1000,
        steps_per_save=1000,
        max_num_iterations=LITE_STEPS,
        mixed_precision=False,
        pipeline=PanopticPipelineConfig(
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
        ),
        # few steps: the segmentation heads learn faster than the paper's 5e-4
        optimizers=_optimizers(LITE_STEPS, mlp_lr=2e-3),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 13),
        vis="viewer",
        machine=_machine(),
    ),
    description="Panoptic Lifting, CPU-sized: small grids and heads that train a small scene in minutes on 2 cores.",
)
