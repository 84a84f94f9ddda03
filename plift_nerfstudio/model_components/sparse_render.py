"""Rendering rays sparsely: density at every (queried) sample, but colour and segmentation only at the samples whose
weight matters.

After the density pass, the heads run on the samples with weight above ``weight_threshold`` (at most
``max_kept_samples_per_ray`` of each ray's heaviest, and always each ray's heaviest so that an empty scene still
gets gradient); the other samples' weights are negligible. Segmentation is rendered as probabilities per sample
(bounded fields: the rendered vector sums to the ray's opacity) with weights detached from the density (the
segmentation losses cannot move geometry).
"""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from nerfstudio.cameras.rays import RayBundle
from torch import Tensor

from plift_nerfstudio.losses import distortion_loss
from plift_nerfstudio.model_components.marching import scene_density_along_rays


def render_sparse(
    values: Float[Tensor, "M D"], weights: Float[Tensor, "M"], ray_index: Int[Tensor, "M"], num_rays: int
) -> Float[Tensor, "R D"]:
    """sum_i w_i * f_i per ray, over the kept samples only (others have negligible weight)."""
    out = torch.zeros(num_rays, values.shape[-1], dtype=values.dtype, device=values.device)
    return out.index_add(0, ray_index, values * weights[:, None])


def samples_to_shade(weights: Float[Tensor, "R S"], threshold: float, max_per_ray: int) -> Bool[Tensor, "R S"]:
    """Samples whose colour and segmentation are evaluated: weight above ``threshold`` (at most ``max_per_ray``
    of the heaviest per ray when > 0), and always each ray's heaviest sample so an empty scene gets gradient."""
    keep = weights > threshold
    if 0 < max_per_ray < weights.shape[1]:
        top = torch.zeros_like(keep)
        top.scatter_(1, weights.topk(max_per_ray, dim=1).indices, True)
        keep &= top
    keep[torch.arange(weights.shape[0], device=weights.device), weights.argmax(dim=1)] = True
    return keep


def render_segmentation(
    scores: Float[Tensor, "M K"], weights: Float[Tensor, "M"], ray_index: Int[Tensor, "M"], num_rays: int,
    bounded: bool,
) -> Float[Tensor, "R K"]:
    """A ray's class (or surrogate-id) distribution from its kept samples' scores."""
    if bounded:
        # probabilities per sample: the rendered vector sums to the ray's opacity, never more than 1
        return render_sparse(F.softmax(scores, dim=-1), weights, ray_index, num_rays)
    # ablation: render unbounded logits, turn them into a distribution afterwards
    return F.softmax(render_sparse(scores, weights, ray_index, num_rays), dim=-1)


def render_rays(model, ray_bundle: RayBundle, median_depth: bool = False) -> Dict[str, Tensor]:
    """Colour, accumulation, depth and the class and surrogate-id distributions of rays (the collider has set their
    ends), of the edited scene when ``model`` renders edits; in training also what the distortion and sparse depth
    losses need."""
    cfg = model.config
    edited = model.editing.active()
    ray_samples = model.sampler(ray_bundle)
    num_rays = ray_samples.shape[0]
    positions = model.field.normalise_positions(ray_samples.frustums.get_positions())
    density = scene_density_along_rays(model, positions, ray_samples.deltas, edited)
    weights = ray_samples.get_weights(density)  # [R, S, 1]
    keep = samples_to_shade(weights[..., 0], cfg.weight_threshold, model.max_kept_samples)
    if edited is None:
        ray_index, sample_index = keep.nonzero(as_tuple=True)
        kept_positions = positions[ray_index, sample_index]
        kept_weights = weights[ray_index, sample_index, 0]
        rgb_samples = model.field.rgb(kept_positions, ray_samples.frustums.directions[ray_index, sample_index])
    else:
        shaded = model.editing.shade(edited, ray_samples, positions, density, keep)
        ray_index, sample_index, weights = shaded.ray_index, shaded.sample_index, shaded.weights
        kept_weights = weights[ray_index, sample_index, 0]
        rgb_samples = shaded.rgb
    # with a 'random' background the loss blends one in (nerfstudio's convention); black when rendering
    rgb = model.renderer_rgb(rgb=rgb_samples, weights=kept_weights[:, None], ray_indices=ray_index, num_rays=num_rays)
    seg_weights = kept_weights.detach() if cfg.block_segmentation_gradients else kept_weights
    if edited is None:
        semantic_probs = render_segmentation(model.field.semantic_scores(kept_positions), seg_weights, ray_index,
                                             num_rays, cfg.bounded_fields)
        instance_probs = render_segmentation(model.field.instance_scores(kept_positions), seg_weights, ray_index,
                                             num_rays, cfg.bounded_fields)
    else:  # the edited scene mixes probabilities (bounded fields)
        semantic_probs = render_sparse(shaded.semantic, seg_weights, ray_index, num_rays)
        instance_probs = render_sparse(shaded.instance, seg_weights, ray_index, num_rays)
    outputs = {
        "rgb": rgb,
        "accumulation": model.renderer_accumulation(weights),
        "depth": model.renderer_depth(weights, ray_samples),
        "semantic_probs": semantic_probs,
        "instance_probs": instance_probs,
    }
    if model.training and cfg.distortion_loss_mult > 0:
        spacing = ray_samples.spacing_starts, ray_samples.spacing_ends  # normalised distance along the ray
        outputs["distortion"] = distortion_loss(weights[..., 0], spacing[0][..., 0], spacing[1][..., 0])  # type: ignore[index]
    if model.training and cfg.sparse_depth_loss_mult > 0:  # per-sample weights for the sparse depth loss
        outputs.update(sample_weights=weights, sample_starts=ray_samples.frustums.starts,
                       sample_ends=ray_samples.frustums.ends)
    if median_depth:
        outputs["depth_median"] = model.renderer_median_depth(weights, ray_samples)
    return outputs
