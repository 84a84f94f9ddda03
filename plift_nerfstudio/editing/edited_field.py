"""Rendering a field with instances deleted, duplicated or moved (paper Sec. 4.1.2).

An instance is the pair (surrogate id, class). Its *support* is where edits act on it: the box around the surface
points the views see (padded), and the lattice cells where the views see it or the field holds it that are attached
to that box, grown by two cells. Deleting and copying use the same support, so a move puts back all it removes.

- Deletion: inside the support, the density is zero wherever the field says the point belongs to the instance (thing
  class and its surrogate id); what lies behind shows through. A stray speck of the instance outside its support is
  removed where it shows (the renderer empties a shaded sample the field gives to a deleted instance and marches its
  ray again, querying what lies behind) and in dense queries (``density(..., remove_fragments=True)``, for exports).
- Duplication: inside the copy's region (the support under the copy's transform T), a point x also takes the field
  at T^-1 x, where that point lies in the support and belongs to the original: density (divided by the transform's
  scale, so that a ray through a scaled copy gathers the optical depth of the corresponding ray through the
  original: the copy is as opaque as the original), colour (seen from the correspondingly rotated direction), class,
  and a one-hot instance id (a new one for a duplicate, the original's for a move).
- Where the original scene and copies overlap, their densities add and colours and distributions mix in proportion
  to density (two media in one place).
- Isolate (the viewer's): only the isolated instance is rendered, the original's points or one copy's.

Only the samples inside these regions cost anything extra (a segmentation-head query for deletions; a second field
query for copies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from jaxtyping import Bool, Float
from torch import Tensor

from plift_nerfstudio.editing.regions import InstanceRegion

MIN_DENSITY = 0.1
"""Below this density a sample counts as air for editing (nobody's: no segmentation head is asked about it, and a copy
takes nothing from it). A shaded sample of a deleted instance that this lets through is still caught: the renderer
empties it and marches its ray again."""


@dataclass(frozen=True)
class ResolvedEdit:
    """One operation in the model frame, checked against the scene."""

    op: str
    instance_id: int
    class_id: int
    region: InstanceRegion
    matrix: Optional[np.ndarray] = None  # [4, 4] original -> copy (model frame)
    copy_id: Optional[int] = None  # instance id the copy renders with

    @property
    def scale(self) -> float:
        """The transform's uniform scale (1 for a deletion)."""
        if self.matrix is None:
            return 1.0
        return float(abs(np.linalg.det(self.matrix[:3, :3])) ** (1.0 / 3.0))


def transformed_box(lo: np.ndarray, hi: np.ndarray, matrix: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box around the corners of the box (lo, hi) under the 4x4 ``matrix``."""
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float64)
    corners = lo + corners * (hi - lo)
    moved = corners @ matrix[:3, :3].T + matrix[:3, 3]
    return moved.min(0), moved.max(0)


@dataclass
class InstanceSupport:
    """Where edits act on an instance (model frame): its padded box, and its attached lattice cells grown by two
    cells."""

    lo: Tensor  # [3]
    hi: Tensor  # [3]
    lattice_lo: Optional[Tensor] = None  # [3]
    lattice_hi: Optional[Tensor] = None  # [3]
    mask: Optional[Tensor] = None  # [r, r, r] bool

    @classmethod
    def of(cls, region: InstanceRegion, device) -> "InstanceSupport":
        as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        support = cls(as_tensor(region.lo), as_tensor(region.hi))
        if region.cells is None or region.lattice is None or len(region.cells) == 0:
            return support
        lo, hi, resolution = region.lattice
        grid = np.zeros((resolution,) * 3, dtype=bool)
        grid[tuple(region.cells.T)] = True
        grid = ndimage.binary_dilation(grid, structure=np.ones((3, 3, 3), dtype=bool), iterations=2)
        support.lattice_lo, support.lattice_hi = as_tensor(lo), as_tensor(hi)
        support.mask = torch.as_tensor(grid, device=device)
        return support

    def contains(self, world: Float[Tensor, "N 3"]) -> Bool[Tensor, "N"]:
        inside = ((world >= self.lo) & (world <= self.hi)).all(dim=-1)
        if self.mask is None:
            return inside
        assert self.lattice_lo is not None and self.lattice_hi is not None
        resolution = self.mask.shape[0]
        index = ((world - self.lattice_lo) / (self.lattice_hi - self.lattice_lo) * resolution).floor().long()
        valid = ((index >= 0) & (index < resolution)).all(dim=-1)
        index = index.clamp(0, resolution - 1)
        return inside | (valid & self.mask[index[:, 0], index[:, 1], index[:, 2]])

    def bounds(self) -> Tuple[np.ndarray, np.ndarray]:
        """Axis-aligned box (model frame) around the whole support."""
        lo, hi = self.lo.cpu().numpy().astype(np.float64), self.hi.cpu().numpy().astype(np.float64)
        if self.mask is not None and bool(self.mask.any()):
            assert self.lattice_lo is not None and self.lattice_hi is not None
            cells = self.mask.nonzero().cpu().numpy()
            resolution = self.mask.shape[0]
            size = (self.lattice_hi - self.lattice_lo).cpu().numpy().astype(np.float64)
            origin = self.lattice_lo.cpu().numpy().astype(np.float64)
            lo = np.minimum(lo, origin + cells.min(0) / resolution * size)
            hi = np.maximum(hi, origin + (cells.max(0) + 1) / resolution * size)
        return lo, hi


@dataclass
class _Copy:
    source_id: int
    source_class: int
    copy_id: int  # the instance id the copy renders with
    support: InstanceSupport  # the original's
    lo: Tensor  # box (world) around the support under the transform
    hi: Tensor
    inverse_linear: Tensor  # [3, 3]
    inverse_offset: Tensor  # [3]
    density_factor: float  # 1 / scale

    @property
    def column(self) -> int:
        """0-based column of the copy's id in the instance distribution."""
        return self.copy_id - 1


@dataclass
class _Deletion:
    instance_id: int
    class_id: int
    support: InstanceSupport


class EditedScene:
    """Density, colour and segmentation of ``field`` with ``edits`` applied, on box-normalised positions."""

    def __init__(self, field, is_thing_lut: Bool[Tensor, "C1"], edits: Sequence[ResolvedEdit], num_surrogate_ids: int,
                 isolate: Optional[Tuple[int, int]] = None, skipped: Optional[Callable[[Tensor], Tensor]] = None):
        self.field = field
        self.queried = skipped
        """The renders' skipping structure (occupancy lookup: True where the field is queried): copies make the
        renderer query their regions, where the original scene must still count as empty wherever it is skipped."""
        self.edits = list(edits)
        self.isolate = isolate
        """(instance id, class id) shown alone (the viewer's 'isolate'): an instance of the original scene, or a copy
        (its copy id and class); everything else is emptied, copies included."""
        device = field.aabb.device
        self.is_thing_lut = is_thing_lut.to(device)
        self.num_surrogate_ids = num_surrogate_ids
        as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        supports = {}
        for e in self.edits:
            key = (e.instance_id, e.class_id)
            if key not in supports:
                supports[key] = InstanceSupport.of(e.region, device)
        self.deleted: List[_Deletion] = [_Deletion(e.instance_id, e.class_id, supports[(e.instance_id, e.class_id)])
                                         for e in self.edits if e.op in ("delete", "move")]
        self.copies: List[_Copy] = []
        for e in self.edits:
            if e.op == "delete":
                continue
            assert e.matrix is not None and e.copy_id is not None
            support = supports[(e.instance_id, e.class_id)]
            lo, hi = transformed_box(*support.bounds(), e.matrix)
            inverse = np.linalg.inv(e.matrix)
            self.copies.append(_Copy(e.instance_id, e.class_id, e.copy_id, support, as_tensor(lo), as_tensor(hi),
                                     as_tensor(inverse[:3, :3]), as_tensor(inverse[:3, 3]), 1.0 / e.scale))
        self.num_instance_outputs = max([num_surrogate_ids] + [c.copy_id for c in self.copies])

    # ---------------------------------------------------------------- geometry helpers
    def _to_world(self, unit: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
        lo, hi = self.field.aabb[0], self.field.aabb[1]
        return (unit + 1) / 2 * (hi - lo) + lo

    def _to_unit(self, world: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
        lo, hi = self.field.aabb[0], self.field.aabb[1]
        return (world - lo) / (hi - lo) * 2 - 1

    def owned_by(self, unit: Float[Tensor, "N 3"], instance_id: int, class_id: int) -> Bool[Tensor, "N"]:
        """Points the field assigns to the instance: that class and that surrogate id, as the renders decide (two
        objects of different classes may share a surrogate id; the pair is the instance)."""
        out = torch.zeros(len(unit), dtype=torch.bool, device=unit.device)
        if len(unit) == 0:
            return out
        candidates = (self.field.instance_scores(unit).argmax(-1) + 1 == instance_id).nonzero()[:, 0]
        if len(candidates):
            classes = self.field.semantic_scores(unit[candidates]).argmax(-1) + 1
            out[candidates[classes == class_id]] = True
        return out

    def _owned_where_dense(self, unit: Float[Tensor, "N 3"], sigma: Float[Tensor, "N"], instance_id: int,
                           class_id: int) -> Bool[Tensor, "N"]:
        """``owned_by``, asked only where the density matters (air is nobody's and costs no head query)."""
        out = torch.zeros(len(unit), dtype=torch.bool, device=unit.device)
        dense = (sigma > MIN_DENSITY).nonzero()[:, 0]
        if len(dense):
            out[dense] = self.owned_by(unit[dense], instance_id, class_id)
        return out

    def _deleted_where_dense(self, unit: Float[Tensor, "N 3"], sigma: Float[Tensor, "N"]) -> Bool[Tensor, "N"]:
        """Points (with density) the field gives to any deleted or moved instance, wherever they are."""
        out = torch.zeros(len(unit), dtype=torch.bool, device=unit.device)
        dense = (sigma > MIN_DENSITY).nonzero()[:, 0]
        if len(dense) == 0 or not self.deleted:
            return out
        ids = self.field.instance_scores(unit[dense]).argmax(-1) + 1
        classes = self.field.semantic_scores(unit[dense]).argmax(-1) + 1
        hit = torch.zeros(len(dense), dtype=torch.bool, device=unit.device)
        for deletion in self.deleted:
            hit |= (ids == deletion.instance_id) & (classes == deletion.class_id)
        out[dense[hit]] = True
        return out

    def _copy_shown(self, copy: _Copy) -> bool:
        return self.isolate is None or self.isolate == (copy.copy_id, copy.source_class)

    def covers(self, unit: Float[Tensor, "N 3"]) -> Bool[Tensor, "N"]:
        """Positions inside some shown copy's region (a skipping structure built on the unedited field must query
        them)."""
        world = self._to_world(unit)
        out = torch.zeros(len(unit), dtype=torch.bool, device=unit.device)
        for copy in self.copies:
            if self._copy_shown(copy):
                out |= ((world >= copy.lo) & (world <= copy.hi)).all(dim=-1)
        return out

    # ---------------------------------------------------------------- field queries
    def _components(self, unit: Float[Tensor, "N 3"], remove_fragments: bool = False):
        """Density of the original scene after deletions (and, with ``remove_fragments``, without any point the field
        gives to a deleted instance, wherever it is), and each shown copy's samples: (index, density, source unit
        position, copy)."""
        sigma = self.field.density(unit)[:, 0]
        if self.queried is not None and self.copies:
            sigma = sigma * self.queried(unit)
        if self.isolate is not None:
            sigma = sigma * self._owned_where_dense(unit, sigma, *self.isolate)
        world = self._to_world(unit)
        for deletion in self.deleted:
            index = deletion.support.contains(world).nonzero()[:, 0]
            if len(index):
                gone = self._owned_where_dense(unit[index], sigma[index], deletion.instance_id, deletion.class_id)
                sigma = sigma.index_put((index[gone],), sigma.new_zeros(int(gone.sum())))
        if remove_fragments and self.deleted:
            sigma = torch.where(self._deleted_where_dense(unit, sigma), torch.zeros_like(sigma), sigma)
        copies = []
        for copy in self.copies:
            if not self._copy_shown(copy):
                continue
            index = ((world >= copy.lo) & (world <= copy.hi)).all(dim=-1).nonzero()[:, 0]
            if len(index) == 0:
                continue
            source_world = world[index] @ copy.inverse_linear.T + copy.inverse_offset
            within = copy.support.contains(source_world).nonzero()[:, 0]
            index, source = index[within], self._to_unit(source_world[within])
            if len(index) == 0:
                continue
            copy_sigma = self.field.density(source)[:, 0]
            copy_sigma = copy_sigma * self._owned_where_dense(source, copy_sigma, copy.source_id, copy.source_class)
            copies.append((index, copy_sigma * copy.density_factor, source, copy))
        return sigma, copies

    def density(self, unit: Float[Tensor, "N 3"], remove_fragments: bool = False) -> Float[Tensor, "N 1"]:
        """Density of the edited scene; ``remove_fragments``: also without the stray specks of deleted instances
        outside their supports (dense queries: every point with density costs a head query)."""
        sigma, copies = self._components(unit, remove_fragments)
        for index, copy_sigma, _, _ in copies:
            sigma = sigma.index_add(0, index, copy_sigma)
        return sigma[:, None]

    def shade(
        self, unit: Float[Tensor, "M 3"], directions: Float[Tensor, "M 3"]
    ) -> Tuple[Float[Tensor, "M 3"], Float[Tensor, "M C"], Float[Tensor, "M K"], Float[Tensor, "M"]]:
        """Colour, class distribution and instance distribution (``num_instance_outputs`` ids) at shaded samples, and
        the density there that belongs to a deleted instance but was left (outside its support: a speck; zero almost
        everywhere). The renderer empties it and marches again."""
        rgb = self.field.rgb(unit, directions)
        semantic = F.softmax(self.field.semantic_scores(unit), dim=-1)
        instance = F.softmax(self.field.instance_scores(unit), dim=-1)
        missed = unit.new_zeros(len(unit))
        if len(unit) == 0 or (not self.copies and not self.deleted):
            instance = F.pad(instance, (0, self.num_instance_outputs - instance.shape[-1]))
            return rgb, semantic, instance, missed
        sigma, copies = self._components(unit)
        if self.deleted:
            classes, ids = semantic.argmax(-1) + 1, instance.argmax(-1) + 1
            for deletion in self.deleted:
                missed = torch.where((classes == deletion.class_id) & (ids == deletion.instance_id), sigma, missed)
        instance = F.pad(instance, (0, self.num_instance_outputs - instance.shape[-1]))
        if not copies:
            return rgb, semantic, instance, missed
        total = sigma.clone()
        for index, copy_sigma, _, _ in copies:
            total = total.index_add(0, index, copy_sigma)
        share = torch.where(total > 0, sigma / total.clamp_min(1e-12), torch.ones_like(sigma))[:, None]
        rgb, semantic, instance = rgb * share, semantic * share, instance * share
        for index, copy_sigma, source, copy in copies:
            copy_share = (copy_sigma / total[index].clamp_min(1e-12))[:, None]
            copy_dirs = F.normalize(directions[index] @ copy.inverse_linear.T, dim=-1)
            rgb = rgb.index_add(0, index, self.field.rgb(source, copy_dirs) * copy_share)
            semantic = semantic.index_add(0, index, F.softmax(self.field.semantic_scores(source), dim=-1) * copy_share)
            one_hot = torch.zeros(len(index), self.num_instance_outputs, device=unit.device)
            one_hot[:, copy.column] = 1.0
            instance = instance.index_add(0, index, one_hot * copy_share)
        return rgb, semantic, instance, missed
