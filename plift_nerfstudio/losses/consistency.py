"""Segment consistency loss (paper Eq. 7): all rays of one 2D segment are pushed to the segment's majority class."""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from plift_nerfstudio.losses.semantic import EPS, normalise_rendered


def segment_ids_of(
    semantics: Int[Tensor, "R"], instances: Int[Tensor, "R"], is_thing: Bool[Tensor, "R"]
) -> Int[Tensor, "R"]:
    """Panoptic segment of each ray of one image: its 2D instance for thing rays, its class for stuff rays.

    Returns -1 for void rays. Stuff segments get ids -2 - class so they cannot clash with instance ids.
    """
    seg = torch.where(is_thing & (instances > 0), instances, -2 - semantics)
    return torch.where(semantics > 0, seg, torch.full_like(seg, -1))


def segment_consistency_loss(
    rendered_probs: Float[Tensor, "R C"],
    segment_ids: Int[Tensor, "R"],
    confidence: Float[Tensor, "R"],
) -> Float[Tensor, ""]:
    """-1/|R| sum_r w_r log p_r(K_seg(r)), K_i = argmax_k sum_{r in R_i} w_r p_r(k) (targets carry no gradient)."""
    valid = segment_ids != -1
    if not bool(valid.any()):
        return rendered_probs.sum() * 0.0
    probs = normalise_rendered(rendered_probs[valid])
    w = confidence[valid]
    _, inverse = torch.unique(segment_ids[valid], return_inverse=True)
    with torch.no_grad():
        votes = torch.zeros(int(inverse.max()) + 1, probs.shape[1], dtype=probs.dtype, device=probs.device)
        votes.index_add_(0, inverse, probs * w[:, None])
        majority = votes.argmax(dim=1)
    log_p = torch.log(probs + EPS).gather(1, majority[inverse][:, None]).squeeze(1)
    return -(log_p * w).sum() / valid.sum()
