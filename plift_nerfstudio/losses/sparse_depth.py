"""Sparse depth loss: a ray through a triangulated point should end at the point.

Per ray, the loss is the share of the ray's rendering weight that does not end near the point: 1 - sum_i w_i k_i,
with k_i = exp(-(t_i - d)^2 / (2 std^2)) a Gaussian window round the point's distance d whose width grows with d
(triangulation error does) but never falls under the ray's sample spacing (a window between two samples would see
none). A surface at the point scores about 0; weight in front of it (fog, a wall floating in front of where it is)
or behind it costs what it takes away. Unlike DS-NeRF's cross-entropy (nerfstudio's ``ds_nerf_depth_loss``), it does
not ask the weights to spread like the window, so surfaces can stay sharp; and a wrong point (a bad match) costs at
most 1, so it cannot pull hard.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def sparse_depth_loss(
    weights: Float[Tensor, "R S 1"],
    starts: Float[Tensor, "R S 1"],
    ends: Float[Tensor, "R S 1"],
    point_distance: Float[Tensor, "R"],
    relative_std: float,
) -> Float[Tensor, ""]:
    """Mean over rays of the weight not ending within the window round each ray's point (``starts``/``ends`` of the
    samples and ``point_distance`` in the same units along normalised ray directions)."""
    spacing = (ends - starts).mean(dim=(1, 2))
    std = torch.maximum(relative_std * point_distance, spacing).detach()
    mids = (starts + ends)[..., 0] / 2
    window = torch.exp(-0.5 * ((mids - point_distance[:, None]) / std[:, None]) ** 2)
    return (1.0 - (weights[..., 0] * window).sum(dim=-1)).mean()
