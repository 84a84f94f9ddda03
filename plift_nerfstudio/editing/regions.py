"""Where each 3D instance is, as boxes around its surface points.

From the training views (``regions_from_points``): rays on a pixel lattice of the training cameras are rendered; each
ray that hits a thing (accumulation above a half) gives its surface point (rendered depth) with the class and
instance id the renders show there. Only what the cameras see counts: the inside of walls and furniture, whose
density is solid but whose class nobody trained, stays out.

From a dense query (``find_instance_regions``, for fields without cameras): a voxel is solid when a ray crossing it would be mostly stopped there (opacity over one voxel >= ``min_opacity``);
a solid voxel belongs to instance k when the semantic head's class there is a thing class and the surrogate-id head's
argmax is k - 1 (as the ``instance_id`` render decides per ray). An instance's region is the box around its solid
voxels, without the stray specks (connected pieces much smaller than its largest), padded by one voxel.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

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
    seen_lo: Optional[np.ndarray] = None  # [3] extent of the surface the views see (None: lo)
    seen_hi: Optional[np.ndarray] = None
    cells: Optional[np.ndarray] = None
    """[M, 3] lattice cells of the instance beyond its box: where the views see it and where the field holds it (a
    dense query), in the pieces that reach into the box. Deletions and copies both act on the box and these cells
    (grown by two cells); pieces far from the box are stray specks, which the renders remove when they show."""
    lattice: Optional[Tuple[np.ndarray, np.ndarray, int]] = None
    """(lo, hi, resolution) of the lattice of ``cells`` and ``seen_cells``."""
    seen_cells: Optional[np.ndarray] = None
    """[M, 3] lattice cells of the surface points the views see, without stray specks (where its footprint is)."""

    @property
    def centre(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def size(self) -> np.ndarray:
        return self.hi - self.lo

    @property
    def seen_size(self) -> np.ndarray:
        """Size of what the views see of the instance (the region itself is padded)."""
        lo = self.lo if self.seen_lo is None else self.seen_lo
        hi = self.hi if self.seen_hi is None else self.seen_hi
        return hi - lo


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


RegionKey = Tuple[int, int]
"""(instance id, class id): the instance as the renders show it."""


@torch.no_grad()
def find_instance_regions(
    field,
    is_thing_lut: Bool[Tensor, "C1"],
    resolution: int = 96,
    min_opacity: float = 0.5,
    queried: Optional[Callable[[Tensor], Tensor]] = None,
    chunk: int = 1 << 17,
) -> Dict[RegionKey, InstanceRegion]:
    """Regions (model frame) of the instances the field holds, by (instance id, class id).

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
    regions: Dict[RegionKey, InstanceRegion] = {}
    pairs = np.unique(np.stack([instance_grid.ravel(), class_grid.ravel()], axis=1), axis=0)
    for instance_id, class_id in pairs:
        if instance_id == 0:
            continue
        mask = keep_main_pieces((instance_grid == instance_id) & (class_grid == class_id))
        if not mask.any():
            continue
        where = np.argwhere(mask)
        first, last = where.min(0), where.max(0) + 1
        regions[(int(instance_id), int(class_id))] = InstanceRegion(
            instance_id=int(instance_id),
            class_id=int(class_id),
            lo=lo + (first - 1) / resolution * size,
            hi=lo + (last + 1) / resolution * size,
            num_voxels=int(mask.sum()),
        )
    return regions


def regions_from_points(
    points: np.ndarray, class_ids: np.ndarray, instance_ids: np.ndarray, aabb: np.ndarray, resolution: int = 96,
    min_points: int = 8,
    padding: float = 0.15,
) -> Dict[RegionKey, InstanceRegion]:
    """Regions of the instances from surface points [N, 3] (model frame) labelled with the class and instance id the
    renders show there (instance 0: stuff, left out). Points are binned on a resolution^3 lattice over ``aabb``; an
    instance's region is the box around its occupied voxels without stray specks, padded by two voxels and
    ``padding`` of its size on each side."""
    aabb = np.asarray(aabb, dtype=np.float64)
    lo, size = aabb[0], aabb[1] - aabb[0]
    cells = np.clip(((points - lo) / size * resolution).astype(np.int64), 0, resolution - 1)
    regions: Dict[RegionKey, InstanceRegion] = {}
    for instance_id, class_id in np.unique(np.stack([instance_ids, class_ids], axis=1), axis=0):
        if instance_id == 0:
            continue
        mine = (instance_ids == instance_id) & (class_ids == class_id)
        if mine.sum() < min_points:
            continue
        seen = np.zeros((resolution,) * 3, dtype=bool)
        seen[tuple(cells[mine].T)] = True
        grid = keep_main_pieces(seen, min_share=0.05)
        if not grid.any():
            continue
        where = np.argwhere(grid)
        first, last = where.min(0), where.max(0) + 1
        # the views sample a surface only between pixel rays and never see its back: pad generously (deletion and
        # copies act only where the field says the point belongs to the instance, so a loose box takes nothing else)
        seen_lo, seen_hi = lo + first / resolution * size, lo + last / resolution * size
        pad = 2 * size / resolution + padding * (seen_hi - seen_lo)
        regions[(int(instance_id), int(class_id))] = InstanceRegion(
            instance_id=int(instance_id),
            class_id=int(class_id),
            lo=np.maximum(seen_lo - pad, lo),
            hi=np.minimum(seen_hi + pad, aabb[1]),
            num_voxels=int(grid.sum()),
            seen_lo=seen_lo,
            seen_hi=seen_hi,
            cells=np.argwhere(seen).astype(np.int32),
            lattice=(aabb[0].copy(), aabb[1].copy(), resolution),
            seen_cells=where.astype(np.int32),
        )
    return regions


def cell_centres(cells: np.ndarray, lattice: Tuple[np.ndarray, np.ndarray, int]) -> np.ndarray:
    """[M, 3] model-frame centres of lattice ``cells``."""
    lo, hi, resolution = lattice
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    return lo + (np.asarray(cells, dtype=np.float64) + 0.5) / resolution * (hi - lo)


def attach_cells(region: InstanceRegion, extra: Optional[np.ndarray] = None) -> InstanceRegion:
    """``region`` whose ``cells`` are its own and ``extra`` (e.g. a dense query's), kept only in the 26-connected pieces
    that reach into its box: what belongs to the object, not the specks the field gave its id elsewhere."""
    if region.lattice is None:
        return region
    parts = [c for c in (region.cells, extra) if c is not None and len(c)]
    if not parts:
        return dataclasses.replace(region, cells=np.zeros((0, 3), dtype=np.int32))
    resolution = int(region.lattice[2])
    grid = np.zeros((resolution,) * 3, dtype=bool)
    grid[tuple(np.concatenate(parts).T)] = True
    labels, _ = ndimage.label(grid, structure=np.ones((3, 3, 3), dtype=bool))
    cells = np.argwhere(grid)
    centres = cell_centres(cells, region.lattice)
    in_box = np.all((centres >= region.lo) & (centres <= region.hi), axis=-1)
    keep = np.isin(labels, np.unique(labels[tuple(cells[in_box].T)]))
    return dataclasses.replace(region, cells=np.argwhere(keep & grid).astype(np.int32))


@torch.no_grad()
def owned_cells(
    field, resolution: int = 96, min_density: float = 1e-2, queried: Optional[Callable[[Tensor], Tensor]] = None,
    chunk: int = 1 << 17,
) -> Dict[RegionKey, np.ndarray]:
    """Lattice cells (over the field's box) whose centre has density above ``min_density`` and belongs to an instance
    by the heads' argmax, as [M, 3] cell indices per (instance id, class id): where a deletion must act, seen or not
    (specks included). ``queried`` marks the positions the renders query (the occupancy grid)."""
    aabb = field.aabb
    points = lattice_points(aabb, resolution).view(-1, 3)
    unit = (points - aabb[0]) / (aabb[1] - aabb[0]) * 2 - 1
    keys = torch.zeros(len(unit), dtype=torch.long, device=unit.device)
    for start in range(0, len(unit), chunk):
        part = unit[start : start + chunk]
        index = torch.arange(len(part), device=unit.device) if queried is None else queried(part).nonzero()[:, 0]
        index = index[field.density(part[index])[:, 0] > min_density]
        if len(index) == 0:
            continue
        ids = field.instance_scores(part[index]).argmax(-1) + 1
        classes = field.semantic_scores(part[index]).argmax(-1) + 1
        keys[start + index] = classes * 100000 + ids
    keys_np = keys.cpu().numpy()
    out: Dict[RegionKey, np.ndarray] = {}
    for key in np.unique(keys_np):
        if key == 0:
            continue
        flat = np.flatnonzero(keys_np == key)
        out[(int(key % 100000), int(key // 100000))] = np.stack(np.unravel_index(flat, (resolution,) * 3), axis=1).astype(np.int32)
    return out
