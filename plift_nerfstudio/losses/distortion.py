"""Distortion loss (mip-NeRF 360, Barron et al. 2022, Eq. 15) in O(samples) per ray.

L = sum_{i,j} w_i w_j |m_i - m_j| + 1/3 sum_i w_i^2 (s_{i+1} - s_i), with m_i the interval midpoints in normalised
ray distance s. The double sum is computed with prefix sums: sum_{i,j} w_i w_j |m_i - m_j| =
2 sum_i w_i (m_i W_{<i} - (wm)_{<i}), where W_{<i} and (wm)_{<i} are exclusive prefix sums of w and w m
(midpoints increase along the ray). nerfstudio's own version builds the S x S matrix, which costs more than the
rest of a training step on a CPU.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def distortion_loss(
    weights: Float[Tensor, "R S"], starts: Float[Tensor, "R S"], ends: Float[Tensor, "R S"]
) -> Float[Tensor, ""]:
    """Mean over rays of the distortion of each ray's weights over intervals [starts, ends] (sorted along the ray)."""
    mids = 0.5 * (starts + ends)
    weighted_mids = weights * mids
    before_w = torch.cumsum(weights, dim=-1) - weights  # exclusive prefix sums
    before_wm = torch.cumsum(weighted_mids, dim=-1) - weighted_mids
    inter = 2.0 * (weights * (mids * before_w - before_wm)).sum(dim=-1)
    intra = (weights**2 * (ends - starts)).sum(dim=-1) / 3.0
    return (inter + intra).mean()
