"""Marching rays through the field: which rays (a pixel lattice over the training views), where they start and end
(the field's box), and the density along them, queried front to back only where it can matter.

A sample is queried only where the occupancy grid says the field may hold something (or an edit's copy stands), and
only while its ray still lets light through: samples are taken in ``marching_chunks`` pieces, and a ray whose
transmittance has fallen below ``termination_transmittance`` stops (its remaining samples would weigh less still).
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle, RaySamples
from nerfstudio.model_components.scene_colliders import AABBBoxCollider
from torch import Tensor

DensityQuery = Callable[[Float[Tensor, "N 3"], Int[Tensor, "N"]], Float[Tensor, "N 1"]]
"""(box-normalised positions, their flat sample index [ray * samples + sample]) -> density."""


def pixel_lattice(cameras: Cameras, num_rays: int, seed: int) -> Tuple[Int[Tensor, "N"], Float[Tensor, "N 2"]]:
    """The camera index and (y, x) pixel-centre coordinates of about ``num_rays`` pixels spread evenly over all
    images of ``cameras``: every ``stride``-th pixel in both directions, from a random offset (so successive calls
    see different pixels)."""
    heights, widths = cameras.height.flatten().tolist(), cameras.width.flatten().tolist()
    pixels = sum(h * w for h, w in zip(heights, widths))
    stride = max(1, int(round((pixels / max(num_rays, 1)) ** 0.5)))
    generator = torch.Generator().manual_seed(seed)
    index, coords = [], []
    for camera, (h, w) in enumerate(zip(heights, widths)):
        dy, dx = (torch.randint(stride, (2,), generator=generator) + 0.5).tolist()
        ys, xs = torch.arange(dy, h, stride), torch.arange(dx, w, stride)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).view(-1, 2)
        coords.append(grid)
        index.append(torch.full((len(grid),), camera, dtype=torch.long))
    return torch.cat(index), torch.cat(coords)


def pixel_lattice_rays(cameras: Cameras, num_rays: int, seed: int) -> RayBundle:
    """The rays of :func:`pixel_lattice`'s pixels."""
    camera_index, coords = pixel_lattice(cameras, num_rays, seed)
    device = cameras.device
    return cameras.generate_rays(camera_indices=camera_index[:, None].to(device), coords=coords.to(device))


class FieldBoxCollider(AABBBoxCollider):
    """nerfstudio's box collider on the field's current box (which shrinks in training and reloads with the
    checkpoint) instead of the dataparser's fixed scene box."""

    def __init__(self, field, near_plane: float) -> None:
        super().__init__(scene_box=None, near_plane=near_plane)  # type: ignore[arg-type]
        self._box = lambda: field.aabb  # a closure, so the field is not registered twice as a submodule

    def set_nears_and_fars(self, ray_bundle: RayBundle) -> RayBundle:
        nears, fars = self._intersect_with_aabb(ray_bundle.origins, ray_bundle.directions, self._box())
        ray_bundle.nears = nears[..., None]
        ray_bundle.fars = fars[..., None]
        return ray_bundle


def density_along_rays(
    density_at: DensityQuery,
    positions: Float[Tensor, "R S 3"],
    deltas: Float[Tensor, "R S 1"],
    queried: Optional[Bool[Tensor, "R S"]],
    marching_chunks: int,
    termination_transmittance: float,
) -> Float[Tensor, "R S 1"]:
    """Density at the samples: ``density_at`` where ``queried`` (None: everywhere) and the ray is still alive, zero
    elsewhere. With ``termination_transmittance`` > 0 the samples are queried front to back in ``marching_chunks``
    pieces and a ray stops once its transmittance falls below it."""
    num_rays, num_samples = positions.shape[:2]
    if queried is None and termination_transmittance <= 0:
        every = torch.arange(num_rays * num_samples, device=positions.device)
        return density_at(positions.view(-1, 3), every).view(num_rays, num_samples, 1)
    if queried is None:
        queried = torch.ones(num_rays, num_samples, dtype=torch.bool, device=positions.device)
    chunks = marching_chunks if termination_transmittance > 0 else 1
    bounds = np.linspace(0, num_samples, chunks + 1).round().astype(int)
    alive = torch.ones(num_rays, dtype=torch.bool, device=positions.device)
    optical_depth = torch.zeros(num_rays, device=positions.device)
    flat_index, values = [], []
    for start, end in zip(bounds[:-1], bounds[1:]):
        ray_index, sample_index = (queried[:, start:end] & alive[:, None]).nonzero(as_tuple=True)
        sample_index = sample_index + int(start)
        flat = ray_index * num_samples + sample_index
        sigma = density_at(positions[ray_index, sample_index], flat)
        flat_index.append(flat)
        values.append(sigma)
        with torch.no_grad():
            optical_depth.index_add_(0, ray_index, sigma[:, 0].detach() * deltas[ray_index, sample_index, 0])
            alive = torch.exp(-optical_depth) > termination_transmittance
    density = positions.new_zeros(num_rays * num_samples, 1)
    density = density.index_put((torch.cat(flat_index),), torch.cat(values))
    return density.view(num_rays, num_samples, 1)


def queried_positions(model, unit_positions: Float[Tensor, "N 3"], edited=None) -> Optional[Bool[Tensor, "N"]]:
    """Where ``model``'s renders query its field: the occupancy grid's occupied cells, and where an edit's copies
    stand (the unedited grid may be empty there); None while the grid holds everything (before its first refresh)."""
    occupancy = model.occupancy
    if occupancy is None or bool(occupancy.occupied.all()):
        return None
    queried = occupancy.lookup(unit_positions)
    if edited is not None:
        queried = queried | edited.covers(unit_positions)
    return queried


def scene_density_along_rays(model, positions: Float[Tensor, "R S 3"], deltas: Float[Tensor, "R S 1"], edited=None,
                             removed: Optional[Float[Tensor, "R S"]] = None) -> Float[Tensor, "R S 1"]:
    """:func:`density_along_rays` of ``model``'s field (of the ``edited`` scene if given, less ``removed`` where
    given), skipping what the occupancy grid skips."""
    query = model.field.density if edited is None else edited.density
    removed_flat = removed.reshape(-1) if removed is not None else None

    def density_at(unit: Float[Tensor, "N 3"], flat_index: Int[Tensor, "N"]) -> Float[Tensor, "N 1"]:
        sigma = query(unit)
        return sigma if removed_flat is None else (sigma - removed_flat[flat_index][:, None]).clamp_min(0)

    num_rays, num_samples = positions.shape[:2]
    queried = queried_positions(model, positions.view(-1, 3), edited)
    cfg = model.config
    return density_along_rays(density_at, positions, deltas,
                              None if queried is None else queried.view(num_rays, num_samples),
                              cfg.marching_chunks, cfg.termination_transmittance)


def march(model, ray_bundle: RayBundle) -> Tuple[RaySamples, Float[Tensor, "R S 3"], Float[Tensor, "R S 1"]]:
    """Samples of rays as ``model`` renders them (its collider sets their near and far ends), their box-normalised
    positions and the density there (skipped cells and terminated rays: zero)."""
    samples = model.sampler(model.collider(ray_bundle))
    positions = model.field.normalise_positions(samples.frustums.get_positions())
    return samples, positions, scene_density_along_rays(model, positions, samples.deltas)


def ray_weights(model, ray_bundle: RayBundle) -> Tuple[Float[Tensor, "R S"], Float[Tensor, "R S"]]:
    """Rendering weights of each ray's samples and the samples' mid-distances, sampled as ``model`` renders."""
    samples, _, density = march(model, ray_bundle)
    t_mid = ((samples.frustums.starts + samples.frustums.ends) / 2)[..., 0]
    return samples.get_weights(density)[..., 0], t_mid
