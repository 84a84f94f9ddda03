"""``plift-export pointcloud``: the labelled point cloud of a trained scene, one file per thing instance and per stuff
class, and the manifest (all in the dataset's frame)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from plift_nerfstudio.export.crop import CropBox, model_bounds
from plift_nerfstudio.export.groups import GroupKey, absorb_fragments, clean_groups, group_indices, select_instances, statistical_inliers
from plift_nerfstudio.export.manifest import manifest, object_entry, write_manifest
from plift_nerfstudio.export.ply import write_labelled_points
from plift_nerfstudio.export.surface_points import SurfacePoints, render_surface_points

Progress = Callable[[str, int, int], None]


@dataclass
class PointCloudSettings:
    num_points: int = 300_000
    min_accumulation: float = 0.9
    outlier_neighbours: int = 20
    outlier_std_ratio: float = 2.0
    cluster_voxels: float = 3.0  # DBSCAN radius of an instance's pieces, in voxels of the field's final grid
    min_instance_points: int = 30
    min_instance_share: float = 0.001  # and at least this share of the exported points
    seed: int = 0


@dataclass
class LabelledCloud:
    """The exported points (dataset frame) and, per group, the indices of its cleaned points."""

    points: SurfacePoints
    groups: Dict[GroupKey, np.ndarray]
    left_out: List[dict]
    absorbed: Dict[GroupKey, List[GroupKey]] = field(default_factory=dict)
    """Per exported instance, the fragments (other surrogate ids of its class inside its box) it took in."""


def labelled_cloud(model, cameras, settings: PointCloudSettings, crop: Optional[CropBox] = None,
                   instances: Optional[Sequence[Union[int, str]]] = None, progress: Optional[Progress] = None) -> LabelledCloud:
    """Render, crop, clean and group the scene's surface points; positions are returned in the dataset frame."""
    frame = model.dataset_frame
    model_bounds(model.field.aabb.cpu().numpy(), crop, frame)  # a crop box that misses the scene stops here
    points = render_surface_points(model, cameras, int(settings.num_points * 1.3), settings.min_accumulation,
                                   seed=settings.seed,
                                   progress=None if progress is None else lambda d, t: progress("Rendering surface points", d, t))
    if len(points) == 0:
        raise ValueError("no ray of the training views stops on a surface (accumulation >= "
                         f"{settings.min_accumulation}): is the run trained?")
    model_positions = points.positions
    points.positions = frame.points_to_dataset(model_positions)
    keep = np.ones(len(points), dtype=bool)
    if crop is not None:
        keep &= crop.contains(points.positions)
        if not keep.any():
            raise ValueError(f"empty crop: no surface point of the scene lies in the crop box {crop.lo.tolist()} .. "
                             f"{crop.hi.tolist()} (dataset frame)")
    if progress is not None:
        progress("Removing outliers", 0, 1)
    index = np.flatnonzero(keep)
    index = index[statistical_inliers(model_positions[index], settings.outlier_neighbours, settings.outlier_std_ratio)]
    if len(index) > settings.num_points:
        index = np.sort(np.random.default_rng(settings.seed).choice(index, settings.num_points, replace=False))
    points = points.subset(index)
    model_positions = model_positions[index]
    wanted = None
    if instances is not None:
        groups = group_indices(points.class_id, points.instance_id)
        wanted = set(select_instances(list(groups), instances, model.class_table))
        chosen = np.sort(np.concatenate([groups[k] for k in wanted]))
        points, model_positions = points.subset(chosen), model_positions[chosen]
    if progress is not None:
        progress("Grouping instances", 0, 1)
    cleaned, left_out, absorbed = group_points(model_positions, points.class_id, points.instance_id,
                                               cluster_radius(model, settings), settings, wanted)
    return LabelledCloud(points, cleaned, left_out, absorbed)


def group_points(positions: np.ndarray, class_id: np.ndarray, instance_id: np.ndarray, eps: float,
                 settings: PointCloudSettings, wanted=None):
    """Groups of labelled points without specks, too-small groups left out, fragments absorbed (their points'
    ``instance_id`` is changed in place to the id of the object they joined)."""
    min_points = max(settings.min_instance_points, int(settings.min_instance_share * len(positions)))
    cleaned, left_out = clean_groups(positions, class_id, instance_id, eps, min_points, wanted)
    cleaned, absorbed = absorb_fragments(cleaned, positions)
    for key in absorbed:
        instance_id[cleaned[key]] = key.instance_id
    return cleaned, left_out, absorbed


def cluster_radius(model, settings: PointCloudSettings) -> float:
    """DBSCAN radius (model units) of an instance's pieces: ``cluster_voxels`` voxels of the field's grid."""
    aabb = model.field.aabb
    return settings.cluster_voxels * float((aabb[1] - aabb[0]).max()) / model.field.grid_resolution


def write_point_cloud_export(folder: Path, cloud: LabelledCloud, model, load_config: Path, step: int,
                             crop: Optional[CropBox], settings: PointCloudSettings) -> dict:
    """Write scene.ply, things/<class>-<id>.ply, stuff/<class>.ply and manifest.json into ``folder``."""
    names = model.class_table.names
    points = cloud.points

    def write(path: Path, subset: SurfacePoints) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_labelled_points(path, subset.positions, subset.colours, subset.class_id, subset.class_prob,
                              subset.instance_id, subset.instance_prob, names)

    write(folder / "scene.ply", points)
    objects = []
    for key, members in cloud.groups.items():
        rel = f"{'things' if key.is_thing else 'stuff'}/{key.name(model.class_table)}.ply"
        subset = points.subset(members)
        write(folder / rel, subset)
        extra = {"absorbed_ids": [k.instance_id for k in cloud.absorbed[key]]} if key in cloud.absorbed else {}
        objects.append(object_entry(key, model.class_table, subset.positions, {"ply": rel}, points=int(len(members)), **extra,
                                    mean_class_prob=float(subset.class_prob.mean()),
                                    mean_instance_prob=float(subset.instance_prob.mean()) if key.is_thing else None))
    content = manifest("pointcloud", load_config, step, model.dataset_frame, model.class_table,
                       {"ply": "scene.ply", "points": int(len(points))}, objects, cloud.left_out,
                       None if crop is None else crop.as_dict(), dict(vars(settings)))
    write_manifest(folder, content)
    return content
