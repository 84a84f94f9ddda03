"""The loss dict of a training step: which losses apply to which rays of the batch, with their weights and start
steps (the losses themselves are the pure functions of this package).

A batch holds rays drawn across the whole scene (RGB and semantic losses), rays of one single image (instance and
segment consistency losses; the extra thing rays only in the instance loss) and, last, the sparse depth rays
(:func:`split_sparse_depth_rays`); evaluation batches carry no machine labels and get the RGB loss only.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from nerfstudio.model_components.losses import tv_loss
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor

from plift_nerfstudio.losses.consistency import segment_consistency_loss, segment_ids_of
from plift_nerfstudio.losses.instance import assign_surrogate_ids, instance_loss
from plift_nerfstudio.losses.semantic import self_training_targets, semantic_loss
from plift_nerfstudio.losses.sparse_depth import sparse_depth_loss

OVERFLOW_WARNING_EVERY = 500
"""Steps between two warnings that an image had more 2D instances than surrogate ids."""


def split_sparse_depth_rays(
    outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
) -> Tuple[Dict[str, Tensor], Optional[Dict[str, Tensor]]]:
    """The outputs of the labelled rays, and those of the sparse depth rays the datamanager put after them (None
    when the batch has none). Per-ray tensors are split; anything else (scalars) stays with the labelled rays."""
    if "sparse_depth" not in batch:
        return outputs, None
    num_depth = len(batch["sparse_depth"])
    num_rays = outputs["rgb"].shape[0]
    labelled, depth = {}, {}
    for key, value in outputs.items():
        if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == num_rays:
            labelled[key], depth[key] = value[: num_rays - num_depth], value[num_rays - num_depth:]
        else:
            labelled[key] = value
    return labelled, depth


@contextmanager
def timed(timings: Optional[Dict[str, float]], name: str) -> Iterator[None]:
    """Adds the seconds spent in the block to ``timings[name]`` when a benchmark set ``timings`` to a dict."""
    if timings is None:
        yield
        return
    start = time.perf_counter()
    yield
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


def regularisers(model, outputs: Dict[str, Tensor], depth_rays: Optional[Dict[str, Tensor]],
                 batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """The training-only losses on the geometry: total variation and L1 of the grids, distortion, sparse depth."""
    cfg, losses = model.config, {}
    if cfg.tv_density_mult > 0:
        losses["tv_density"] = cfg.tv_density_mult * tv_loss(model.field.density_encoding.plane_coef)
    if cfg.distortion_loss_mult > 0 and "distortion" in outputs:
        losses["distortion_loss"] = cfg.distortion_loss_mult * outputs["distortion"]
    if cfg.l1_density_mult > 0:
        encoding = model.field.density_encoding
        coefficients = torch.cat([encoding.plane_coef.view(-1), encoding.line_coef.view(-1)])
        losses["l1_density"] = cfg.l1_density_mult * coefficients.abs().mean()
    if cfg.tv_color_mult > 0:
        losses["tv_color"] = cfg.tv_color_mult * tv_loss(model.field.color_encoding.plane_coef)
    if depth_rays is not None and cfg.sparse_depth_loss_mult > 0:
        with timed(model.loss_timings, "sparse_depth_loss"):
            losses["sparse_depth_loss"] = cfg.sparse_depth_loss_mult * sparse_depth_loss(
                depth_rays["sample_weights"], depth_rays["sample_starts"], depth_rays["sample_ends"],
                batch["sparse_depth"].to(outputs["rgb"].device), cfg.sparse_depth_relative_std,
            )
    return losses


def segmentation_losses(model, outputs: Dict[str, Tensor], batch: Dict[str, Tensor],
                        metrics_dict: Optional[Dict[str, Tensor]]) -> Dict[str, Tensor]:
    """Semantic loss on the scene-wide rays, instance loss (linear assignment) on the single image's rays, segment
    consistency loss on its uniform rays; each from its start step."""
    cfg, losses = model.config, {}
    device = outputs["rgb"].device
    semantics, instances = batch["semantics"].to(device), batch["instances"].to(device)
    is_thing = batch["is_thing"].to(device)
    if cfg.use_confidence:
        targets, confidence = batch["class_probs"].to(device), batch["confidence"].to(device)
    else:
        targets = batch["class_probs"].new_zeros(batch["class_probs"].shape).to(device)
        targets[semantics > 0, semantics[semantics > 0] - 1] = 1.0
        confidence = (semantics > 0).float()
    image_rays = batch["is_single_image_ray"].to(device)
    scene_rays = ~image_rays
    if model.step >= cfg.semantic_loss_start_step and bool(scene_rays.any()):
        with timed(model.loss_timings, "semantic_loss"):
            rendered, scene_targets = outputs["semantic_probs"][scene_rays], targets[scene_rays]
            if 0 < cfg.self_training_start_step <= model.step:
                scene_targets = self_training_targets(rendered, scene_targets, cfg.self_training_share)
            losses["semantic_loss"] = cfg.semantic_loss_mult * semantic_loss(
                rendered, scene_targets, confidence[scene_rays]
            )
    if model.step >= cfg.instance_loss_start_step:
        thing_rays = image_rays & is_thing & (instances > 0)
        probs = outputs["instance_probs"][thing_rays]
        with timed(model.loss_timings, "linear_assignment"):
            assignment = assign_surrogate_ids(probs, instances[thing_rays])
        with timed(model.loss_timings, "instance_loss"):
            losses["instance_loss"] = cfg.instance_loss_mult * instance_loss(probs, assignment.target, confidence[thing_rays])
        count_unassigned(model, assignment.num_instances, assignment.num_unassigned, metrics_dict)
    if cfg.use_segment_consistency and model.step >= cfg.consistency_loss_start_step:
        # the uniform rays of the image only: the extra thing rays would over-weight thing segments
        uniform = image_rays & ~batch["is_instance_ray"].to(device) if "is_instance_ray" in batch else image_rays
        with timed(model.loss_timings, "consistency_loss"):
            segments = segment_ids_of(semantics[uniform], instances[uniform], is_thing[uniform])
            losses["consistency_loss"] = cfg.consistency_loss_mult * segment_consistency_loss(
                outputs["semantic_probs"][uniform], segments, confidence[uniform]
            )
    return losses


def loss_dict(model, outputs: Dict[str, Tensor], batch: Dict[str, Tensor],
              metrics_dict: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
    """Every loss of a batch, weighted (``model``'s config) and named as nerfstudio logs them."""
    outputs, depth_rays = split_sparse_depth_rays(outputs, batch)
    device = outputs["rgb"].device
    with timed(model.loss_timings, "rgb_loss"):
        pred_rgb, gt_rgb = model.renderer_rgb.blend_background_for_loss_computation(
            pred_image=outputs["rgb"], pred_accumulation=outputs["accumulation"], gt_image=batch["image"].to(device)
        )
        losses: Dict[str, Tensor] = {"rgb_loss": model.config.rgb_loss_mult * F.mse_loss(pred_rgb, gt_rgb)}
    if model.training:
        losses.update(regularisers(model, outputs, depth_rays, batch))
    if "semantics" in batch:  # evaluation batches carry no machine labels
        losses.update(segmentation_losses(model, outputs, batch, metrics_dict))
    return losses


def count_unassigned(model, num_instances: int, num_unassigned: int, metrics_dict) -> None:
    """Log how many 2D instances of the image got no surrogate id, and warn (at most every 500 steps) when any."""
    if metrics_dict is not None:
        metrics_dict["instances_2d_in_image"] = torch.tensor(float(num_instances))
        metrics_dict["instances_without_surrogate_id"] = torch.tensor(float(num_unassigned))
    if num_unassigned == 0:
        return
    model.unassigned_instances_total += num_unassigned
    if model.step - model.last_overflow_warning_step >= OVERFLOW_WARNING_EVERY:
        model.last_overflow_warning_step = model.step
        CONSOLE.print(
            f"[bold yellow]step {model.step}: an image has {num_instances} 2D instances but only "
            f"{model.config.num_surrogate_ids} surrogate ids; {num_unassigned} were left out of the instance loss "
            f"({model.unassigned_instances_total} so far). Raise --pipeline.model.num-surrogate-ids."
        )
