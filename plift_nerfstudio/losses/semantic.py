"""Semantic loss (paper Eq. 4): confidence-weighted cross-entropy of rendered class distributions."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

EPS = 1e-8


def normalise_rendered(rendered: Float[Tensor, "R C"]) -> Float[Tensor, "R C"]:
    """Rendered probabilities sum to the ray's opacity (<= 1); divide by that sum to get a distribution."""
    return rendered / rendered.sum(dim=-1, keepdim=True).clamp(min=EPS)


def semantic_loss(
    rendered_probs: Float[Tensor, "R C"],
    target_probs: Float[Tensor, "R C"],
    confidence: Float[Tensor, "R"],
) -> Float[Tensor, ""]:
    """-1/|R| sum_r w_r sum_k target_r(k) log p_r(k), with p the renormalised rendered distribution.

    Rays with zero confidence (void pixels) add nothing; the mean runs over rays with a label.
    """
    log_p = torch.log(normalise_rendered(rendered_probs) + EPS)
    per_ray = -(target_probs * log_p).sum(dim=-1) * confidence
    labelled = (target_probs.sum(dim=-1) > 0).float()
    return per_ray.sum() / labelled.sum().clamp(min=1.0)


def self_training_targets(
    rendered_probs: Float[Tensor, "R C"],
    target_probs: Float[Tensor, "R C"],
    share: float,
) -> Float[Tensor, "R C"]:
    """Targets that merge the labels with the field's own class (self-training on pseudo labels, as PLGS does late in
    training): ``(1 - share) * label + share * one_hot(argmax rendered)`` on labelled rays; void rays keep their
    empty target. The field's class is detached: it is a target, not a path for gradients."""
    own = torch.nn.functional.one_hot(rendered_probs.detach().argmax(dim=-1), rendered_probs.shape[-1]).to(target_probs)
    mass = target_probs.sum(dim=-1, keepdim=True)
    return torch.where(mass > 0, (1.0 - share) * target_probs + share * own * mass, target_probs)
