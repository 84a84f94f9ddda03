"""Occupancy grid over the scene box (plain torch, any device): which cells can hold visible density.

Samples in unoccupied cells are given zero density without evaluating the field, which is where most uniform
samples of a room filmed from inside lie (the air between camera and walls, the space behind the walls). The grid
keeps, per cell, a decaying maximum of the density seen at random points inside it (as in Instant-NGP and
nerfacc's ``OccGridEstimator``), and a cell counts as occupied while that maximum, in the cell or a neighbour,
would give a sample an opacity (alpha) above a threshold. Cells are refreshed every few training steps, so density that grows somewhere is seen.

A cell must also be visible: reached by some training camera's ray before that ray's transmittance has fallen below
a threshold (:func:`cells_seen`). Density that no training ray reaches (behind walls, inside furniture, outside the
room) gets no gradient, so it is never trained; skipping it costs nothing in training and removes the floaters it
would show in novel views. Visibility is re-measured as the geometry settles, with the unseen cells counting as
empty, so a cell hidden behind early fog becomes visible again once the fog clears.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn


def cell_index(unit_positions: Float[Tensor, "N 3"], resolution: int) -> Int[Tensor, "N"]:
    """Flat index of the cell of a ``resolution``^3 grid over [-1, 1]^3 holding each position (clamped to the grid)."""
    r = resolution
    ijk = ((unit_positions + 1.0) * 0.5 * r).long().clamp(0, r - 1)
    return (ijk[:, 0] * r + ijk[:, 1]) * r + ijk[:, 2]


class OccupancyGrid(nn.Module):
    """``resolution``^3 cells over [-1, 1]^3 (box-normalised positions). Everything counts as occupied until
    the first :meth:`update`."""

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.register_buffer("density_max", torch.full((resolution,) * 3, float("inf")))
        self.register_buffer("occupied", torch.ones((resolution,) * 3, dtype=torch.bool))
        self.register_buffer("visible", torch.ones((resolution,) * 3, dtype=torch.bool))

    def cell_index(self, unit_positions: Float[Tensor, "N 3"]) -> Tensor:
        return cell_index(unit_positions, self.resolution)

    def lookup(self, unit_positions: Float[Tensor, "N 3"]) -> Bool[Tensor, "N"]:
        """Whether each position lies in an occupied cell (positions outside the box: never)."""
        inside = (unit_positions.abs() <= 1.0).all(dim=-1)
        return self.occupied.view(-1)[self.cell_index(unit_positions)] & inside

    @torch.no_grad()
    def update(
        self,
        density_fn: Callable[[Float[Tensor, "N 3"]], Float[Tensor, "N 1"]],
        step_size: float,
        alpha_threshold: float,
        decay: float = 0.5,
        chunk: int = 1 << 18,
    ) -> float:
        """Re-measure every cell at one random point; returns the occupied fraction.

        A cell is occupied while ``1 - exp(-max_density * step_size) > alpha_threshold`` for itself or one of its
        26 neighbours (a random point can miss a thin surface in its own cell), where ``max_density`` decays by
        ``decay`` per update unless a new measurement is higher. A fast decay lets the early fog of a short run
        clear within a few hundred steps.
        """
        r = self.resolution
        device = self.density_max.device
        grid = torch.stack(torch.meshgrid(*(torch.arange(r, device=device),) * 3, indexing="ij"), dim=-1).view(-1, 3)
        points = (grid + torch.rand_like(grid, dtype=torch.float32)) / r * 2.0 - 1.0
        measured = torch.cat([density_fn(points[i : i + chunk]).view(-1) for i in range(0, len(points), chunk)])
        previous = self.density_max.view(-1)
        previous = torch.where(torch.isinf(previous), torch.zeros_like(previous), previous)
        self.density_max.copy_(torch.maximum(previous * decay, measured).view((r,) * 3))
        neighbourhood_max = F.max_pool3d(self.density_max[None, None], kernel_size=3, stride=1, padding=1)[0, 0]
        alpha = 1.0 - torch.exp(-neighbourhood_max * step_size)
        self.occupied.copy_((alpha > alpha_threshold) & self.visible)
        return float(self.occupied.float().mean())

    @torch.no_grad()
    def set_visible(self, visible: Bool[Tensor, "r r r"]) -> None:
        """Replace the visibility mask (cells outside it count as empty from now on)."""
        self.visible.copy_(visible)
        self.occupied &= visible

    def reset(self) -> None:
        """Everything occupied and visible again, as before the first update (e.g. after the box moved)."""
        self.density_max.fill_(float("inf"))
        self.occupied.fill_(True)
        self.visible.fill_(True)


def cells_seen(
    unit_positions: Float[Tensor, "R S 3"], transmittance: Float[Tensor, "R S"], resolution: int, threshold: float
) -> Bool[Tensor, "r r r"]:
    """Cells of a ``resolution``^3 grid over [-1, 1]^3 that hold a sample whose transmittance (the light reaching
    it from the camera) is above ``threshold``, grown by one cell on every side (rays are a sparse lattice, and a
    cell a ray only grazes is still seen)."""
    seen = torch.zeros(resolution**3, dtype=torch.bool, device=unit_positions.device)
    lit = (transmittance > threshold) & (unit_positions.abs() <= 1.0).all(dim=-1)
    seen[cell_index(unit_positions[lit], resolution)] = True
    r = resolution
    grown = F.max_pool3d(seen.view(1, 1, r, r, r).float(), kernel_size=3, stride=1, padding=1)
    return grown.view(r, r, r) > 0
