"""Meshes of the segmented scene: marching cubes on the density over a dense lattice, the one surface cut into a mesh
per thing instance and per stuff class.

Each face takes the label of the surface points the training views render nearest to it (the majority of their
class and instance: the renders' argmax); faces no view saw (the backs of furniture, the outside of walls) are left
out. Vertex colours come from the colour field seen from outside the surface (against its normal). The density is
the scene the renders show (``model.density_at_points``: cells the occupancy grid skips are empty, an edited run's
edits apply).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch

from plift_nerfstudio.export.groups import GroupKey


@dataclass
class DensityLattice:
    origin: np.ndarray  # [3] model-frame centre of voxel (0, 0, 0)
    spacing: np.ndarray  # [3] voxel size (model units)
    density: np.ndarray  # [X, Y, Z] float32
    level: float  # the density at which marching cubes puts the surface

    @property
    def solid(self) -> np.ndarray:
        """[X, Y, Z] voxels at or above the surface's density."""
        return self.density >= self.level


def lattice_shape(lo: np.ndarray, hi: np.ndarray, resolution: int) -> np.ndarray:
    """Voxels per axis: ``resolution`` along the longest side of (lo, hi), cubic voxels."""
    size = np.asarray(hi, dtype=np.float64) - lo
    return np.maximum(2, np.ceil(size / size.max() * resolution)).astype(np.int64)


@torch.no_grad()
def query_lattice(
    model, lo: np.ndarray, hi: np.ndarray, resolution: int, level: float, chunk: int = 1 << 18,
    progress: Optional[Callable[[int, int], None]] = None,
) -> DensityLattice:
    """The scene's density (``model.density_at_points``) on a lattice over the model-frame box (lo, hi)."""
    shape = lattice_shape(lo, hi, resolution)
    spacing = (np.asarray(hi, dtype=np.float64) - lo) / shape
    origin = np.asarray(lo, dtype=np.float64) + spacing / 2
    axes = [torch.arange(n, dtype=torch.float64) * spacing[i] + origin[i] for i, n in enumerate(shape)]
    density = np.zeros(int(np.prod(shape)), dtype=np.float32)
    plane = int(shape[1] * shape[2])
    slabs = max(1, chunk // plane)
    for x0 in range(0, int(shape[0]), slabs):
        grid = torch.stack(torch.meshgrid(axes[0][x0 : x0 + slabs], axes[1], axes[2], indexing="ij"), dim=-1).view(-1, 3)
        sigma = model.density_at_points(model.field.normalise_positions(grid.float().to(model.device)))
        density[x0 * plane : x0 * plane + len(grid)] = sigma.float().cpu().numpy()
        if progress is not None:
            progress(min(x0 + slabs, int(shape[0])), int(shape[0]))
    return DensityLattice(origin=origin, spacing=spacing, density=density.reshape(tuple(shape)), level=level)


@dataclass
class GroupMesh:
    vertices: np.ndarray  # [V, 3] model frame
    faces: np.ndarray  # [F, 3]
    normals: np.ndarray  # [V, 3] outward (towards empty space)


FaceLabeller = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray, np.ndarray]]
"""face centres [F, 3] -> (class id [F], instance id [F], keep [F])."""


def split_surface(lattice: DensityLattice, labeller: FaceLabeller) -> Dict[GroupKey, GroupMesh]:
    """One marching-cubes surface of the density, cut by ``labeller`` (which may also drop faces)."""
    from skimage.measure import marching_cubes

    solid = lattice.solid
    if not solid.any() or solid.all():
        return {}
    volume = np.pad(lattice.density, 1, constant_values=0.0)  # closed where the lattice ends
    vertices, faces, normals, _ = marching_cubes(volume, level=lattice.level, spacing=tuple(lattice.spacing))
    vertices = vertices - lattice.spacing + lattice.origin  # padding and voxel centres
    # 'descent' gradients: the normals point to lower density, out of the solid
    classes, ids, keep = labeller(vertices[faces].mean(1))
    keys = np.where(keep, classes.astype(np.int64) * 1_000_000 + ids, 0)
    out: Dict[GroupKey, GroupMesh] = {}
    for key in np.unique(keys):
        if key // 1_000_000 == 0:
            continue
        mine = faces[keys == key]
        used, remapped = np.unique(mine, return_inverse=True)
        out[GroupKey(int(key // 1_000_000), int(key % 1_000_000))] = GroupMesh(
            vertices=vertices[used], faces=remapped.reshape(-1, 3), normals=normals[used])
    return out


def nearest_point_labeller(positions: np.ndarray, class_id: np.ndarray, instance_id: np.ndarray, max_distance: float,
                           neighbours: int = 8) -> FaceLabeller:
    """Faces take the majority (class, instance) of the ``neighbours`` nearest labelled surface points (model frame);
    faces farther than ``max_distance`` from every point (surfaces no training view saw) are dropped."""
    from scipy.spatial import cKDTree

    tree = cKDTree(positions)
    keys = class_id.astype(np.int64) * 1_000_000 + instance_id.astype(np.int64)

    def label(centres: np.ndarray):
        k = min(neighbours, len(positions))
        distance, index = tree.query(centres, k=k)
        distance, index = distance.reshape(len(centres), k), index.reshape(len(centres), k)
        near = keys[index]
        votes = np.where(distance <= max_distance, 1.0, 0.0)
        # majority among the near neighbours: each neighbour's key counts the near neighbours sharing it
        best = np.zeros(len(centres), dtype=np.int64)
        best_count = np.zeros(len(centres))
        for j in range(k):
            count = ((near == near[:, j : j + 1]) * votes).sum(1)
            better = count > best_count
            best[better], best_count[better] = near[better, j], count[better]
        keep = distance[:, 0] <= max_distance
        return best // 1_000_000, best % 1_000_000, keep

    return label


def main_components(mesh: GroupMesh, min_share: float = 0.1, min_faces: int = 8) -> Optional[GroupMesh]:
    """The mesh without its connected pieces smaller than ``min_share`` of its largest (stray specks); None when
    nothing is left."""
    import trimesh

    tri = trimesh.Trimesh(mesh.vertices, mesh.faces, vertex_normals=mesh.normals, process=False)
    labels = trimesh.graph.connected_component_labels(tri.face_adjacency, node_count=len(tri.faces))
    sizes = np.bincount(labels)
    keep_labels = np.flatnonzero(sizes >= max(min_faces, min_share * sizes.max()))
    keep = np.isin(labels, keep_labels)
    if not keep.any():
        return None
    faces = mesh.faces[keep]
    used, remapped = np.unique(faces, return_inverse=True)
    return GroupMesh(mesh.vertices[used], remapped.reshape(-1, 3), mesh.normals[used])


@torch.no_grad()
def density_at(model, positions: np.ndarray, chunk: int = 1 << 17) -> np.ndarray:
    """The scene's density [N] at model-frame points (``model.density_at_points``: edits applied, skipped cells 0)."""
    out = []
    for start in range(0, len(positions), chunk):
        part = torch.from_numpy(np.ascontiguousarray(positions[start : start + chunk])).float().to(model.device)
        out.append(model.density_at_points(model.field.normalise_positions(part)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


@torch.no_grad()
def vertex_colours(model, vertices: np.ndarray, normals: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Colour [V, 3] in [0, 1] of the colour field at each vertex, seen from outside (looking against the normal)."""
    field = model.field
    out = []
    for start in range(0, len(vertices), chunk):
        unit = field.normalise_positions(torch.from_numpy(np.ascontiguousarray(vertices[start : start + chunk])).float().to(model.device))
        n = torch.from_numpy(np.ascontiguousarray(normals[start : start + chunk])).float().to(model.device)
        directions = -n / n.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        out.append(model.rgb_at_points(unit, directions).clamp(0, 1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 3), dtype=np.float32)
