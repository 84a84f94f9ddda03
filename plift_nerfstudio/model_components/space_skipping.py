"""What space the renders skip: the occupancy grid (cells whose density is too low to matter), the cells no training
ray reaches (behind walls, inside furniture: they get no gradient and would show untrained density in novel views),
and the box shrink that makes the grids and the samples cover the seen surfaces instead of the dataparser's cube."""

from __future__ import annotations

from typing import List, Optional

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.utils.rich_utils import CONSOLE

from plift_nerfstudio.fields.occupancy import cells_seen
from plift_nerfstudio.fields.scene_bounds import box_around_points, ray_surface_points
from plift_nerfstudio.model_components.grid_schedule import rebuild_grid_optimiser
from plift_nerfstudio.model_components.marching import march, pixel_lattice_rays, ray_weights


def update_occupancy(model, step: int, cameras: Optional[Cameras] = None) -> None:
    """Refresh ``model``'s occupancy grid every ``occupancy_update_every`` steps once warmed up, and which cells the
    training ``cameras`` see every ``visibility_update_every`` steps (never without cameras)."""
    cfg = model.config
    if model.occupancy is None or step < cfg.occupancy_warmup_steps:
        return
    since = step - cfg.occupancy_warmup_steps
    if since % cfg.occupancy_update_every:
        return
    if cameras is not None and cfg.visibility_update_every > 0 and since % cfg.visibility_update_every == 0:
        update_visibility(model, cameras, seed=step)
    # the longest step a sample can span: the box diagonal split into num_samples (conservative)
    extent = model.field.aabb[1] - model.field.aabb[0]
    step_size = float(extent.norm()) / model.sampler.num_samples
    model.occupancy.update(model.field.density, step_size, cfg.occupancy_alpha_threshold)
    model.structure_version += 1


@torch.no_grad()
def update_visibility(model, cameras: Cameras, seed: int = 0, chunk: int = 4096) -> float:
    """Mark as visible the occupancy cells that rays of the training ``cameras`` reach (``visibility_rays`` rays on
    a pixel lattice with a random offset); returns the visible share of the grid."""
    assert model.occupancy is not None
    cfg = model.config
    threshold = cfg.termination_transmittance if cfg.termination_transmittance > 0 else 1e-4
    bundle = pixel_lattice_rays(cameras.to(model.device), cfg.visibility_rays, seed)
    seen = torch.zeros_like(model.occupancy.visible)
    for start in range(0, len(bundle), chunk):
        samples, positions, density = march(model, bundle[start : start + chunk])
        step_depth = (density * samples.deltas)[..., 0]
        optical_depth = torch.cumsum(step_depth, dim=1) - step_depth  # up to each sample, not through it
        seen |= cells_seen(positions, torch.exp(-optical_depth), model.occupancy.resolution, threshold)
    model.occupancy.set_visible(seen)
    model.structure_version += 1
    return float(seen.float().mean())


@torch.no_grad()
def shrink_box(model, cameras: Cameras, chunk: int = 4096) -> None:
    """Shrink ``model``'s box to the surfaces that ``box_shrink_rays`` random rays of ``cameras`` see now, and start
    the occupancy grid afresh over it."""
    cfg = model.config
    generator = torch.Generator().manual_seed(model.step)
    num = cfg.box_shrink_rays
    index = torch.randint(len(cameras), (num,), generator=generator)
    size = torch.stack([cameras.height[index, 0], cameras.width[index, 0]], dim=-1).float()
    coords = torch.rand(num, 2, generator=generator) * size
    bundle = cameras.to(model.device).generate_rays(camera_indices=index[:, None].to(model.device),
                                                    coords=coords.to(model.device))
    points = []
    for start in range(0, num, chunk):
        part = bundle[start : start + chunk]
        weights, t_mid = ray_weights(model, part)
        points.append(ray_surface_points(part.origins, part.directions, weights, t_mid))
    box = box_around_points(torch.cat(points), model.field.aabb, margin=cfg.box_shrink_margin)
    model.field.shrink_box(box)
    model.structure_version += 1
    if model.occupancy is not None:
        model.occupancy.reset()
        if model.step >= cfg.occupancy_warmup_steps:
            update_occupancy(model, cfg.occupancy_warmup_steps, cameras)


def space_skipping_callbacks(model, attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
    """The occupancy refresh after every step and, at ``box_shrink_step``, the box shrink (then the grid optimiser
    is built again over the resampled grids)."""

    def training_cameras() -> Cameras:
        assert attributes.pipeline is not None
        return attributes.pipeline.datamanager.train_dataset.cameras

    callbacks = []
    if model.occupancy is not None:
        callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                                          lambda step: update_occupancy(model, step, training_cameras()),
                                          update_every_num_iters=1))
    if model.config.box_shrink_step > 0:
        def shrink(step: int) -> None:
            old = model.field.aabb.clone()
            shrink_box(model, training_cameras())
            rebuild_grid_optimiser(attributes)
            share = float((model.field.aabb[1] - model.field.aabb[0]).prod() / (old[1] - old[0]).prod())
            corners = " to ".join("(" + ", ".join(f"{v:.2f}" for v in corner) + ")"
                                  for corner in model.field.aabb.cpu().tolist())
            CONSOLE.print(f"[dim]step {step}: scene box shrunk to the seen surfaces, {100 * share:.0f}% of its volume "
                          f"({corners})")

        callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], shrink,
                                          iters=(model.config.box_shrink_step,)))
    return callbacks
