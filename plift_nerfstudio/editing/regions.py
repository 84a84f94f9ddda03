"""Where each 3D instance is: a dense query of the trained field on a voxel lattice over its box.

A voxel is solid when a ray crossing it would be mostly stopped there (opacity over one voxel >= ``min_opacity``);
a solid voxel belongs to instance k when the semantic head's class there is a thing class and the surrogate-id head's
argmax is k - 1 (as the ``instance_id`` render decides per ray). An instance's region is the box around its solid
voxels, without the stray specks (connected pieces much smaller than its largest), padded by one voxel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np
import torch
from jaxtyping import Bool, Float
from scipy import ndimage
from torch import Tensor


@dataclass(frozen=True)
class InstanceRegion:
    instance_id: int
    class_id: int
    lo: np.ndarray  # [3] model frame
    hi: np.ndarray  # [3] model frame
    num_voxels: int

    @property
    def centre(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def size(self) -> np.ndarray:
        return self.hi - self.lo


def lattice_points(aabb: Float[Tensor, "2 3"], resolution: int) -> Float[Tensor, "r r r 3"]:
    """Centres of a resolution^3 lattice of voxels filling ``aabb`` (world coordinates)."""
    lo, hi = aabb[0], aabb[1]
    steps = (torch.arange(resolution, dtype=torch.float32, device=aabb.device) + 0.5) / resolution
    axes = [lo[i] + steps * (hi[i] - lo[i]) for i in range(3)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def keep_main_pieces(mask: np.ndarray, min_share: float = 0.1, min_voxels: int = 2) -> np.ndarray:
    """``mask`` without the 26-connected pieces smaller than ``min_share`` of its largest piece (or ``min_voxels``)."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if count <= 1:
        return mask if mask.sum() >= min_voxels else np.zeros_like(mask)
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(sizes >= max(min_voxels, min_share * sizes.max())) + 1
    return np.isin(labels, keep)


@torch.no_grad()
def find_instance_regions(
    field,
    is_thing_lut: Bool[Tensor, "C1"],
    resolution: int = 96,
    min_opacity: float = 0.5,
    queried: Optional[Callable[[Tensor], Tensor]] = None,
    chunk: int = 1 << 17,
) -> Dict[int, InstanceRegion]:
    """Regions (model frame) of the instances the field holds, by instance id (1..K).

    ``field`` offers ``aabb``, ``density``, ``semantic_scores`` and ``instance_scores`` on box-normalised positions
    (:class:`~plift_nerfstudio.fields.panoptic_field.PanopticTensoRFField`); ``queried`` (e.g. the occupancy grid's
    lookup) marks the positions worth querying: the others count as empty, as they do in rendering.
    """
    aabb = field.aabb
    points = lattice_points(aabb, resolution).view(-1, 3)
    voxel = float(((aabb[1] - aabb[0]) / resolution).max())
    unit = (points - aabb[0]) / (aabb[1] - aabb[0]) * 2 - 1
    instance = torch.zeros(len(unit), dtype=torch.long, device=unit.device)
    classes = torch.zeros(len(unit), dtype=torch.long, device=unit.device)
    lut = is_thing_lut.to(unit.device)
    for start in range(0, len(unit), chunk):
        part = unit[start : start + chunk]
        solid = torch.ones(len(part), dtype=torch.bool, device=unit.device) if queried is None else queried(part)
        index = solid.nonzero()[:, 0]
        opacity = 1 - torch.exp(-field.density(part[index])[:, 0] * voxel)
        index = index[opacity >= min_opacity]
        if len(index) == 0:
            continue
        class_id = field.semantic_scores(part[index]).argmax(-1) + 1
        ids = field.instance_scores(part[index]).argmax(-1) + 1
        classes[start + index] = class_id
        instance[start + index] = torch.where(lut[class_id], ids, torch.zeros_like(ids))
    instance_grid = instance.view(resolution, resolution, resolution).cpu().numpy()
    class_grid = classes.view(resolution, resolution, resolution).cpu().numpy()
    lo, size = aabb[0].cpu().numpy().astype(np.float64), (aabb[1] - aabb[0]).cpu().numpy().astype(np.float64)
    regions: Dict[int, InstanceRegion] = {}
    for instance_id in np.unique(instance_grid):
        if instance_id == 0:
            continue
        mask = keep_main_pieces(instance_grid == instance_id)
        if not mask.any():
            continue
        where = np.argwhere(mask)
        first, last = where.min(0), where.max(0) + 1
        class_id = int(np.bincount(class_grid[mask]).argmax())
        regions[int(instance_id)] = InstanceRegion(
            instance_id=int(instance_id),
            class_id=class_id,
            lo=lo + (first - 1) / resolution * size,
            hi=lo + (last + 1) / resolution * size,
            num_voxels=int(mask.sum()),
        )
    return regions
