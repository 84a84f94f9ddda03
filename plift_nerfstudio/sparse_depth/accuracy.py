"""How far triangulated points lie from the true surfaces, where a dataset has ground-truth depth."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping

import numpy as np
from jaxtyping import Float

from plift_nerfstudio.labels.frame_labels import read_label_png
from plift_nerfstudio.sparse_depth.points import SparseDepthPoints


def relative_depth_errors(
    points: SparseDepthPoints, camera_origins: Mapping[str, Float[np.ndarray, "3"]], true_depths: Mapping[str, np.ndarray]
) -> Float[np.ndarray, "M"]:
    """Per observation, |distance from the camera to its point - true distance| / true distance, the true distance
    being the nearest within the 3x3 pixels round the observation (so a point on an edge is not charged with the
    other side's depth); NaN where the frame has no true depth there."""
    errors = np.full(points.num_observations, np.nan)
    for row in range(points.num_observations):
        name = points.frame_names[points.observation_frame[row]]
        if name not in true_depths:
            continue
        depth = true_depths[name]
        u, v = points.observation_uv[row]
        x, y = int(u), int(v)
        window = depth[max(0, y - 1): y + 2, max(0, x - 1): x + 2].ravel()
        window = window[window > 0]
        if len(window) == 0:
            continue
        distance = np.linalg.norm(points.points_xyz[points.observation_point[row]] - camera_origins[name])
        errors[row] = np.min(np.abs(distance - window) / window)
    return errors


def summarise_errors(errors: Float[np.ndarray, "M"]) -> Dict[str, float]:
    known = errors[np.isfinite(errors)]
    if len(known) == 0:
        return {}
    return {"observations_scored": float(len(known)), "median_relative_error": float(np.median(known)),
            "within_5_percent": float((known < 0.05).mean()), "over_20_percent": float((known > 0.2).mean())}


def read_true_depths(data_dir: Path, frames: list) -> Dict[str, np.ndarray]:
    """The ground-truth depth along each ray (metres, from millimetre PNGs) of frames that have one."""
    return {frame["file_path"]: read_label_png(data_dir / frame["gt_depth_path"]).astype(np.float64) / 1000.0
            for frame in frames if "gt_depth_path" in frame}
