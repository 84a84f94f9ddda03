"""Rendering a field with instances deleted, duplicated or moved (paper Sec. 4.1.2).

- Deletion: inside the deleted instance's region, the density is zero wherever the field says the point belongs to
  it (thing class and its surrogate id); what lies behind shows through.
- Duplication: inside the copy's region (the original's region under the copy's transform), a point x also takes the
  field at T^-1 x, where that point belongs to the original: density, colour (seen from the correspondingly rotated
  direction), class, and a one-hot instance id (a new one for a duplicate, the original's for a move).
- Where the original scene and copies overlap, their densities add and colours and distributions mix in proportion
  to density (two media in one place).

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
from jaxtyping import Bool, Float, Int
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
    def copy_box(self) -> Tuple[np.ndarray, np.ndarray]:
        """Axis-aligned box around the transformed corners of the original's region."""
        assert self.matrix is not None
        corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float64)
        corners = self.region.lo + corners * (self.region.hi - self.region.lo)
        moved = corners @ self.matrix[:3, :3].T + self.matrix[:3, 3]
        return moved.min(0), moved.max(0)


@dataclass
class _CellMask:
    """Lattice cells where the views saw an instance, grown by two cells: a deletion also covers the instance's
    stray specks outside its main region."""

    lo: Tensor
    hi: Tensor
    mask: Tensor  # [r, r, r] bool

    @classmethod
    def of(cls, region: InstanceRegion, device) -> Optional["_CellMask"]:
        if region.cells is None or region.lattice is None or len(region.cells) == 0:
            return None
        lo, hi, resolution = region.lattice
        grid = np.zeros((resolution,) * 3, dtype=bool)
        grid[tuple(region.cells.T)] = True
        grid = ndimage.binary_dilation(grid, structure=np.ones((3, 3, 3), dtype=bool), iterations=2)
        as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        return cls(as_tensor(lo), as_tensor(hi), torch.as_tensor(grid, device=device))

    def contains(self, world: Float[Tensor, "N 3"]) -> Bool[Tensor, "N"]:
        resolution = self.mask.shape[0]
        index = ((world - self.lo) / (self.hi - self.lo) * resolution).floor().long()
        valid = ((index >= 0) & (index < resolution)).all(dim=-1)
        index = index.clamp(0, resolution - 1)
        return valid & self.mask[index[:, 0], index[:, 1], index[:, 2]]


@dataclass
class _Copy:
    source_id: int
    source_class: int
    column: int  # 0-based column of the copy's id in the instance distribution
    lo: Tensor
    hi: Tensor
    inverse_linear: Tensor  # [3, 3]
    inverse_offset: Tensor  # [3]


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
        """(instance id, class id) shown alone (the viewer's 'isolate'): the rest of the original scene is emptied."""
        device = field.aabb.device
        self.is_thing_lut = is_thing_lut.to(device)
        self.num_surrogate_ids = num_surrogate_ids
        as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        self.deleted: List[Tuple[int, int, Tensor, Tensor, Optional[_CellMask]]] = [
            (e.instance_id, e.class_id, as_tensor(e.region.lo), as_tensor(e.region.hi), _CellMask.of(e.region, device))
            for e in self.edits if e.op in ("delete", "move")
        ]
        self.copies: List[_Copy] = []
        for e in self.edits:
            if e.op == "delete":
                continue
            assert e.matrix is not None and e.copy_id is not None
            lo, hi = e.copy_box
            inverse = np.linalg.inv(e.matrix)
            self.copies.append(_Copy(e.instance_id, e.class_id, e.copy_id - 1, as_tensor(lo), as_tensor(hi),
                                     as_tensor(inverse[:3, :3]), as_tensor(inverse[:3, 3])))
        self.num_instance_outputs = max([num_surrogate_ids] + [c.column + 1 for c in self.copies])

    # ---------------------------------------------------------------- geometry helpers
    def _to_world(self, unit: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
        lo, hi = self.field.aabb[0], self.field.aabb[1]
        return (unit + 1) / 2 * (hi - lo) + lo

    def _to_unit(self, world: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
        lo, hi = self.field.aabb[0], self.field.aabb[1]
        return (world - lo) / (hi - lo) * 2 - 1

    @staticmethod
    def _inside(world: Float[Tensor, "N 3"], lo: Tensor, hi: Tensor, cells: Optional["_CellMask"] = None) -> Int[Tensor, "M"]:
        inside = ((world >= lo) & (world <= hi)).all(dim=-1)
        if cells is not None:
            inside |= cells.contains(world)
        return inside.nonzero()[:, 0]

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

    def covers(self, unit: Float[Tensor, "N 3"]) -> Bool[Tensor, "N"]:
        """Positions inside some copy's region (a skipping structure built on the unedited field must query them)."""
        world = self._to_world(unit)
        out = torch.zeros(len(unit), dtype=torch.bool, device=unit.device)
        for copy in self.copies:
            out |= ((world >= copy.lo) & (world <= copy.hi)).all(dim=-1)
        return out

    # ---------------------------------------------------------------- field queries
    def _components(self, unit: Float[Tensor, "N 3"]):
        """Density of the original scene after deletions, and each copy's samples: (index, density, source unit
        position, copy)."""
        sigma = self.field.density(unit)[:, 0]
        if self.queried is not None and self.copies:
            sigma = sigma * self.queried(unit)
        if self.isolate is not None:
            sigma = sigma * self._owned_where_dense(unit, sigma, *self.isolate)
        world = self._to_world(unit)
        for instance_id, class_id, lo, hi, cells in self.deleted:
            index = self._inside(world, lo, hi, cells)
            if len(index):
                gone = self._owned_where_dense(unit[index], sigma[index], instance_id, class_id)
                sigma = sigma.index_put((index[gone],), sigma.new_zeros(int(gone.sum())))
        copies = []
        for copy in self.copies:
            index = self._inside(world, copy.lo, copy.hi)
            if len(index) == 0:
                continue
            source = self._to_unit(world[index] @ copy.inverse_linear.T + copy.inverse_offset)
            copy_sigma = self.field.density(source)[:, 0]
            copy_sigma = copy_sigma * self._owned_where_dense(source, copy_sigma, copy.source_id, copy.source_class)
            copies.append((index, copy_sigma, source, copy))
        return sigma, copies

    def density(self, unit: Float[Tensor, "N 3"]) -> Float[Tensor, "N 1"]:
        sigma, copies = self._components(unit)
        for index, copy_sigma, _, _ in copies:
            sigma = sigma.index_add(0, index, copy_sigma)
        return sigma[:, None]

    def shade(
        self, unit: Float[Tensor, "M 3"], directions: Float[Tensor, "M 3"]
    ) -> Tuple[Float[Tensor, "M 3"], Float[Tensor, "M C"], Float[Tensor, "M K"], Float[Tensor, "M"]]:
        """Colour, class distribution and instance distribution (``num_instance_outputs`` ids) at shaded samples, and
        the density there that belongs to a deleted instance but was left (outside the region found for it: a speck
        the views and the lattice missed; zero almost everywhere). The renderer empties it and marches again."""
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
            for instance_id, class_id, *_ in self.deleted:
                missed = torch.where((classes == class_id) & (ids == instance_id), sigma, missed)
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
