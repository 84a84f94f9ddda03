"""Instance loss (paper Eq. 5, 6): 2D instances of one image matched to surrogate 3D ids by linear assignment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from plift_nerfstudio.losses.semantic import EPS, normalise_rendered


@dataclass
class InstanceAssignment:
    """Surrogate id per ray (-1 where the ray's 2D instance got none) and bookkeeping."""

    target: Int[Tensor, "R"]
    num_instances: int
    num_unassigned: int  # 2D instances left without a surrogate id (more instances than ids)


def mean_probs_per_instance(
    probs: Float[Tensor, "R K"], instance_ids: Int[Tensor, "R"]
) -> tuple[Int[Tensor, "L"], Int[Tensor, "R"], Float[Tensor, "L K"]]:
    """Unique 2D ids, each ray's row in them, and the mean predicted id distribution of each 2D instance."""
    unique_ids, inverse = torch.unique(instance_ids, return_inverse=True)
    sums = torch.zeros(len(unique_ids), probs.shape[1], dtype=probs.dtype, device=probs.device)
    sums.index_add_(0, inverse, probs)
    counts = torch.bincount(inverse, minlength=len(unique_ids)).clamp(min=1).to(probs.dtype)
    return unique_ids, inverse, sums / counts[:, None]


def assign_surrogate_ids(probs: Float[Tensor, "R K"], instance_ids: Int[Tensor, "R"]) -> InstanceAssignment:
    """Injective map of the rays' 2D instance ids to surrogate ids maximising the mean predicted probability.

    ``probs`` are the rendered surrogate-id distributions of rays that all belong to one image and to a thing
    instance (id > 0). Cost of matching 2D instance l to id k is minus the mean of probs[:, k] over the rays of
    l (Eq. 6), solved by ``scipy.optimize.linear_sum_assignment``. With more 2D instances than surrogate ids,
    the instances the assignment leaves out get target -1 (counted in ``num_unassigned``), never a shared id.
    """
    if len(instance_ids) == 0:
        return InstanceAssignment(torch.empty(0, dtype=torch.long, device=probs.device), 0, 0)
    unique_ids, inverse, mean_probs = mean_probs_per_instance(probs.detach(), instance_ids)
    cost = -mean_probs.float().cpu().numpy().astype(np.float64)
    rows, cols = linear_sum_assignment(cost)
    id_of_row = torch.full((len(unique_ids),), -1, dtype=torch.long)
    id_of_row[torch.from_numpy(rows).long()] = torch.from_numpy(cols).long()
    target = id_of_row.to(probs.device)[inverse]
    return InstanceAssignment(target, len(unique_ids), len(unique_ids) - len(rows))


def instance_loss(
    rendered_probs: Float[Tensor, "R K"],
    target: Int[Tensor, "R"],
    confidence: Float[Tensor, "R"],
) -> Float[Tensor, ""]:
    """-1/|R| sum_r w_r log p_r(target_r) over rays with an assigned id (target >= 0)."""
    valid: Bool[Tensor, "R"] = target >= 0
    if not bool(valid.any()):
        return rendered_probs.sum() * 0.0
    log_p = torch.log(normalise_rendered(rendered_probs[valid]) + EPS)
    picked = log_p.gather(1, target[valid, None]).squeeze(1)
    return -(picked * confidence[valid]).sum() / valid.sum()
