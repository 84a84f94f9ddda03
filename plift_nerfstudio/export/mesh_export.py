"""``plift-export mesh``: a mesh per thing instance and per stuff class (PLY and GLB, vertex colours), the whole
scene as one PLY and as one GLB with a named node per object, and the manifest (all in the dataset's frame)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from plift_nerfstudio.export.crop import CropBox, model_bounds
from plift_nerfstudio.export.groups import GroupKey, select_instances
from plift_nerfstudio.export.manifest import manifest, object_entry, write_manifest
from plift_nerfstudio.export.surface_mesh import (GroupMesh, density_at, main_components, nearest_point_labeller, query_lattice, split_surface,
                                         vertex_colours)
from plift_nerfstudio.export.point_cloud_export import PointCloudSettings, labelled_cloud

Progress = Callable[[str, int, int], None]


@dataclass
class MeshSettings:
    resolution: int = 256
    level: Optional[float] = None  # density of the surface; None: the median density at the rendered surface points
    min_share: float = 0.1
    min_faces: int = 20
    surface_points: int = 200_000  # rendered surface points that label the faces
    max_distance_voxels: float = 2.0


@dataclass
class ObjectMesh:
    key: GroupKey
    vertices: np.ndarray  # [V, 3] dataset frame
    faces: np.ndarray  # [F, 3]
    colours: np.ndarray  # [V, 3] in [0, 1]


def object_meshes(model, cameras, settings: MeshSettings, crop: Optional[CropBox] = None,
                  instances: Optional[Sequence[Union[int, str]]] = None, progress: Optional[Progress] = None) -> tuple:
    """The objects' meshes (dataset frame) and the groups left out (too small once their specks are removed).

    Faces are labelled by the surface points the training views render (the point cloud export's, specks removed):
    the majority of the nearest ones; faces no view saw (farther than ``max_distance_voxels`` lattice voxels from
    every such point: the backs of furniture, the outside of walls) are left out."""
    frame = model.dataset_frame
    lo, hi = model_bounds(model.field.aabb.cpu().numpy(), crop, frame)
    cloud = labelled_cloud(model, cameras, PointCloudSettings(num_points=settings.surface_points), None, None, progress)
    members = np.concatenate(list(cloud.groups.values()))
    labelled = cloud.points.subset(members)
    surface = frame.points_to_model(labelled.positions)
    level = settings.level if settings.level is not None else float(np.median(density_at(model, surface)))
    lattice = query_lattice(model, lo, hi, settings.resolution, level,
                            progress=None if progress is None else lambda d, t: progress("Querying the field", d, t))
    if progress is not None:
        progress("Marching cubes", 0, 1)
    labeller = nearest_point_labeller(surface, labelled.class_id,
                                      labelled.instance_id, settings.max_distance_voxels * float(lattice.spacing.max()))
    pieces: Dict[GroupKey, GroupMesh] = split_surface(lattice, labeller)
    if instances is not None:
        wanted = set(select_instances(list(pieces), instances, model.class_table))
        pieces = {k: v for k, v in pieces.items() if k in wanted}
    out: List[ObjectMesh] = []
    left_out: List[dict] = []
    for n, (key, piece) in enumerate(sorted(pieces.items())):
        if progress is not None:
            progress("Colouring meshes", n, len(pieces))
        cleaned = main_components(piece, settings.min_share if key.is_thing else 0.0, settings.min_faces)
        vertices = frame.points_to_dataset(cleaned.vertices) if cleaned is not None else None
        faces = cleaned.faces if cleaned is not None else None
        if cleaned is not None and crop is not None:
            inside = crop.contains(vertices)
            faces = faces[inside[faces].all(1)]
            used, remapped = np.unique(faces, return_inverse=True)
            vertices, faces = vertices[used], remapped.reshape(-1, 3)
            cleaned = GroupMesh(cleaned.vertices[used], faces, cleaned.normals[used])
        if cleaned is None or len(faces) < settings.min_faces:
            left_out.append({"instance_id": key.instance_id, "class_id": key.class_id, "faces": int(len(piece.faces)),
                             "why": f"fewer than {settings.min_faces} faces once its specks are removed (or cropped)"})
            continue
        out.append(ObjectMesh(key, vertices, faces, vertex_colours(model, cleaned.vertices, cleaned.normals)))
    if not out:
        where = "in the crop box" if crop is not None else "in the scene"
        raise ValueError(f"empty export: no surface {where} near what the training views see (density level "
                         f"{lattice.level:.3g}, solid voxels: {int(lattice.solid.sum())}; try another --density-level)")
    return out, left_out, lattice.level


def to_trimesh(obj: ObjectMesh):
    import trimesh

    colours = np.concatenate([np.round(obj.colours * 255), np.full((len(obj.colours), 1), 255)], axis=1)
    return trimesh.Trimesh(obj.vertices, obj.faces, vertex_colors=colours.astype(np.uint8), process=False)


def write_mesh_export(folder: Path, meshes: List[ObjectMesh], left_out: List[dict], model, load_config: Path,
                      step: int, crop: Optional[CropBox], settings: MeshSettings, level: float) -> dict:
    """Write things/<class>-<id>.{ply,glb}, stuff/<class>.{ply,glb}, scene.ply, scene.glb and manifest.json."""
    import trimesh

    objects = []
    scene = trimesh.Scene()
    for obj in meshes:
        name = obj.key.name(model.class_table)
        sub = "things" if obj.key.is_thing else "stuff"
        (folder / sub).mkdir(parents=True, exist_ok=True)
        tri = to_trimesh(obj)
        tri.export(folder / sub / f"{name}.ply")
        tri.export(folder / sub / f"{name}.glb")
        scene.add_geometry(tri, node_name=name, geom_name=name)
        objects.append(object_entry(obj.key, model.class_table, obj.vertices,
                                    {"ply": f"{sub}/{name}.ply", "glb": f"{sub}/{name}.glb"},
                                    vertices=int(len(obj.vertices)), faces=int(len(obj.faces))))
    merged = trimesh.util.concatenate([to_trimesh(m) for m in meshes])
    merged.export(folder / "scene.ply")
    scene.export(folder / "scene.glb")
    content = manifest("mesh", load_config, step, model.dataset_frame, model.class_table,
                       {"ply": "scene.ply", "glb": "scene.glb", "vertices": int(len(merged.vertices)),
                        "faces": int(len(merged.faces))}, objects, left_out,
                       None if crop is None else crop.as_dict(), {**vars(settings), "density_level_used": level})
    write_manifest(folder, content)
    return content
