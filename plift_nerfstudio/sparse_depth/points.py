"""The sparse depth file (``sparse_depth/points.npz`` beside transforms.json): triangulated points in the dataset's
frame and where each training image sees them.

Arrays:
- ``frame_names`` [F] str: the ``file_path`` of each training frame, as transforms.json spells it;
- ``points_xyz`` [P, 3] float64: points in the dataset's frame (transforms.json);
- ``point_error`` [P] float32: the point's mean reprojection error in pixels;
- ``track_length`` [P] int32: how many training images see it;
- ``observation_frame`` [M] int32 (index into ``frame_names``), ``observation_uv`` [M, 2] float32 (pixel
  coordinates, the top-left corner of the image at (0, 0), COLMAP's and nerfstudio's convention),
  ``observation_point`` [M] int32 (index into ``points_xyz``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
from jaxtyping import Float, Int

SPARSE_DEPTH_FILE = Path("sparse_depth") / "points.npz"
FORMAT_VERSION = 1


class SparseDepthFileError(ValueError):
    """A sparse depth file that cannot be used; the message names the file."""


@dataclass
class SparseDepthPoints:
    frame_names: List[str]
    points_xyz: Float[np.ndarray, "P 3"]
    point_error: Float[np.ndarray, "P"]
    track_length: Int[np.ndarray, "P"]
    observation_frame: Int[np.ndarray, "M"]
    observation_uv: Float[np.ndarray, "M 2"]
    observation_point: Int[np.ndarray, "M"]

    @property
    def num_points(self) -> int:
        return len(self.points_xyz)

    @property
    def num_observations(self) -> int:
        return len(self.observation_point)

    def observations_per_frame(self) -> Dict[str, int]:
        counts = np.bincount(self.observation_frame, minlength=len(self.frame_names))
        return {name: int(count) for name, count in zip(self.frame_names, counts)}

    def filtered(self, max_error: float, min_track_length: int) -> "SparseDepthPoints":
        """Only points with a reprojection error of at most ``max_error`` pixels seen by ``min_track_length`` images
        or more (the observations of the others go too); points are renumbered."""
        keep = (self.point_error <= max_error) & (self.track_length >= min_track_length)
        new_index = np.full(self.num_points, -1, dtype=np.int64)
        new_index[keep] = np.arange(int(keep.sum()))
        seen = keep[self.observation_point]
        return SparseDepthPoints(
            frame_names=list(self.frame_names),
            points_xyz=self.points_xyz[keep],
            point_error=self.point_error[keep],
            track_length=self.track_length[keep],
            observation_frame=self.observation_frame[seen],
            observation_uv=self.observation_uv[seen],
            observation_point=new_index[self.observation_point[seen]].astype(np.int32),
        )


def save_sparse_depth(path: Path, points: SparseDepthPoints, settings: Dict[str, object]) -> None:
    """Write ``points`` with the settings that made them (kept as a JSON string)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        version=np.int32(FORMAT_VERSION),
        frame_names=np.asarray(points.frame_names, dtype=str),
        points_xyz=points.points_xyz.astype(np.float64),
        point_error=points.point_error.astype(np.float32),
        track_length=points.track_length.astype(np.int32),
        observation_frame=points.observation_frame.astype(np.int32),
        observation_uv=points.observation_uv.astype(np.float32),
        observation_point=points.observation_point.astype(np.int32),
        settings=np.asarray(json.dumps(settings)),
    )


def load_sparse_depth(path: Path) -> SparseDepthPoints:
    """Read and check a sparse depth file; a missing, unreadable or inconsistent one raises
    ``SparseDepthFileError`` naming it."""
    if not path.is_file():
        raise SparseDepthFileError(f"{path}: no sparse depth file (make it with `plift-sparse-depth --data <dataset>`)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as error:  # zip or npy errors of a damaged file
        raise SparseDepthFileError(f"{path}: not a readable .npz file ({error})") from error
    required = ("version", "frame_names", "points_xyz", "point_error", "track_length", "observation_frame",
                "observation_uv", "observation_point")
    missing = [key for key in required if key not in arrays]
    if missing:
        raise SparseDepthFileError(f"{path}: missing arrays {missing}; remake it with plift-sparse-depth")
    if int(arrays["version"]) != FORMAT_VERSION:
        raise SparseDepthFileError(f"{path}: format version {int(arrays['version'])}, this plift reads {FORMAT_VERSION}")
    points = SparseDepthPoints(
        frame_names=[str(name) for name in arrays["frame_names"]],
        points_xyz=arrays["points_xyz"].astype(np.float64),
        point_error=arrays["point_error"].astype(np.float32),
        track_length=arrays["track_length"].astype(np.int32),
        observation_frame=arrays["observation_frame"].astype(np.int64),
        observation_uv=arrays["observation_uv"].astype(np.float32),
        observation_point=arrays["observation_point"].astype(np.int64),
    )
    _check_consistent(path, points)
    return points


def _check_consistent(path: Path, points: SparseDepthPoints) -> None:
    num_points, num_frames = points.num_points, len(points.frame_names)
    problems = []
    if points.points_xyz.ndim != 2 or points.points_xyz.shape[1] != 3:
        problems.append(f"points_xyz has shape {points.points_xyz.shape}, not [P, 3]")
    elif not np.isfinite(points.points_xyz).all():
        problems.append("points_xyz holds non-finite values")
    if len(points.point_error) != num_points or len(points.track_length) != num_points:
        problems.append("point_error / track_length do not have one entry per point")
    m = points.num_observations
    if len(points.observation_frame) != m or points.observation_uv.shape != (m, 2):
        problems.append("observation arrays differ in length")
    if m and (points.observation_point.min() < 0 or points.observation_point.max() >= num_points):
        problems.append("an observation names a point that does not exist")
    if m and (points.observation_frame.min() < 0 or points.observation_frame.max() >= num_frames):
        problems.append("an observation names a frame that does not exist")
    if problems:
        raise SparseDepthFileError(f"{path}: " + "; ".join(problems))


def match_frames(points: SparseDepthPoints, training_names: Sequence[str], path: Path) -> Int[np.ndarray, "F"]:
    """For each of the file's frames, the index of the training image with that name (-1 when the training set
    lacks it). A file none of whose frames are training images is refused."""
    index = {str(Path(name)): i for i, name in enumerate(training_names)}
    found = np.array([index.get(str(Path(name)), -1) for name in points.frame_names], dtype=np.int64)
    if points.num_observations and not (found[points.observation_frame] >= 0).any():
        raise SparseDepthFileError(
            f"{path}: none of its {len(points.frame_names)} frames is a training image of this dataset "
            f"(first: {points.frame_names[:1]}); remake it with plift-sparse-depth"
        )
    return found
