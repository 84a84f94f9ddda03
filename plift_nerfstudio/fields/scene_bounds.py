"""Where the scene is: a box around the surfaces the training cameras see, and VM grids resampled into it.

A room filmed from inside fills only part of nerfstudio's cube scene box (the cube is set from the camera
positions, and a room is flatter and usually off-centre): on the shipped realistic rooms about 6-15% of the cube.
The VM grids spread their voxels, and the uniform sampler its samples, over the whole cube. Shrinking the box to
the surfaces the cameras see (TensoRF shrinks its box to the occupied cells the same way; ours is the space the
cameras see, because a VM field keeps density behind walls where no ray reaches) gives finer voxels and denser
samples at the same cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from nerfstudio.field_components.encodings import TensorVMEncoding
from torch import Tensor

# TensorVMEncoding's layout: plane k spans the axes PLANE_AXES[k] (grid_sample's x, y); line k runs along LINE_AXIS[k]
PLANE_AXES = ((0, 1), (0, 2), (1, 2))
LINE_AXIS = (2, 1, 0)


def ray_surface_points(
    origins: Float[Tensor, "R 3"],
    directions: Float[Tensor, "R 3"],
    weights: Float[Tensor, "R S"],
    t_mid: Float[Tensor, "R S"],
    min_opacity: float = 0.5,
    depth_quantile: float = 0.9,
) -> Float[Tensor, "N 3"]:
    """The points the opaque rays see: per ray whose accumulated weight reaches ``min_opacity``, where its
    cumulative weight passes ``depth_quantile`` of that total. Early in training surfaces still sit in haze in front
    of where they belong; the back of the weight, not its median, keeps the box from cutting them (measured on the
    realistic rooms at step 400: the median cut 0.6-16% of the true surface pixels, the 0.9 quantile none). Rays that
    stay more transparent see nothing and give no point."""
    cumulative = weights.cumsum(dim=1)
    total = cumulative[:, -1]
    opaque = total >= min_opacity
    index = (cumulative < depth_quantile * total[:, None]).sum(dim=1).clamp(max=weights.shape[1] - 1)
    t = t_mid.gather(1, index[:, None])[:, 0]
    return (origins + directions * t[:, None])[opaque]


def box_around_points(
    points: Float[Tensor, "N 3"],
    limit: Float[Tensor, "2 3"],
    quantile: float = 0.002,
    margin: float = 0.15,
) -> Float[Tensor, "2 3"]:
    """Axis-aligned box around ``points``: per axis the ``quantile`` and ``1 - quantile`` quantiles (a few stray
    rays do not keep it large), grown by ``margin`` of its size on each side and clipped to ``limit``."""
    if points.shape[0] == 0:
        return limit.clone()
    lo = torch.quantile(points, quantile, dim=0)
    hi = torch.quantile(points, 1.0 - quantile, dim=0)
    pad = (hi - lo) * margin
    box = torch.stack([torch.maximum(lo - pad, limit[0]), torch.minimum(hi + pad, limit[1])])
    # a degenerate axis (all points on one plane) keeps a sliver of the limit instead of a zero-width box
    thin = (box[1] - box[0]) < 1e-3 * (limit[1] - limit[0])
    box[0] = torch.where(thin, limit[0], box[0])
    box[1] = torch.where(thin, limit[1], box[1])
    return box


def map_unit_coordinates(
    unit: Float[Tensor, "*bs 3"], from_box: Float[Tensor, "2 3"], to_box: Float[Tensor, "2 3"]
) -> Float[Tensor, "*bs 3"]:
    """Positions in [-1, 1]^3 of ``from_box`` to [-1, 1]^3 coordinates of ``to_box`` (the same world points)."""
    world = from_box[0] + (unit + 1.0) * 0.5 * (from_box[1] - from_box[0])
    return (world - to_box[0]) / (to_box[1] - to_box[0]) * 2.0 - 1.0


@torch.no_grad()
def resample_vm_into_box(encoding: TensorVMEncoding, old_box: Float[Tensor, "2 3"], new_box: Float[Tensor, "2 3"]) -> None:
    """Resample a VM encoding's planes and lines so that, over ``new_box``, it holds the values it had at the same
    world points over ``old_box`` (same resolution; replaces the parameters: optimisers must be rebuilt)."""
    resolution = encoding.resolution
    nodes = torch.linspace(-1.0, 1.0, resolution, device=encoding.plane_coef.device)  # align_corners=True nodes
    old_nodes = map_unit_coordinates(nodes[:, None].expand(-1, 3), new_box, old_box)  # [R, 3]: per axis
    planes, lines = [], []
    for k, (a, b) in enumerate(PLANE_AXES):
        gx, gy = old_nodes[:, a][None, :].expand(resolution, -1), old_nodes[:, b][:, None].expand(-1, resolution)
        grid = torch.stack([gx, gy], dim=-1)[None]  # [1, H=b, W=a, 2]
        planes.append(F.grid_sample(encoding.plane_coef[k : k + 1], grid, align_corners=True, padding_mode="border"))
        line_grid = torch.stack([torch.zeros_like(old_nodes[:, 0]), old_nodes[:, LINE_AXIS[k]]], dim=-1)[None, :, None]
        lines.append(F.grid_sample(encoding.line_coef[k : k + 1], line_grid, align_corners=True, padding_mode="border"))
    encoding.plane_coef = torch.nn.Parameter(torch.cat(planes))
    encoding.line_coef = torch.nn.Parameter(torch.cat(lines))

