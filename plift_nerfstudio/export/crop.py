"""A crop box in the dataset's frame (what the user's poses use) and its bounds on the field's model-frame box."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from plift_nerfstudio.editing.dataset_frame import DatasetFrame
from plift_nerfstudio.export.boxes import box_corners


@dataclass(frozen=True)
class CropBox:
    lo: np.ndarray  # [3] dataset frame
    hi: np.ndarray

    @classmethod
    def from_options(cls, crop_min: Optional[Sequence[float]], crop_max: Optional[Sequence[float]]) -> Optional["CropBox"]:
        """The box of ``--crop-min`` / ``--crop-max`` (None when neither is given); refuses half a box or an empty one."""
        if crop_min is None and crop_max is None:
            return None
        if crop_min is None or crop_max is None:
            raise ValueError("--crop-min and --crop-max go together (the box's two corners, dataset frame)")
        lo, hi = np.asarray(crop_min, dtype=np.float64), np.asarray(crop_max, dtype=np.float64)
        if lo.shape != (3,) or hi.shape != (3,):
            raise ValueError("--crop-min and --crop-max take three numbers each (x y z, dataset frame)")
        if np.any(hi <= lo):
            raise ValueError(f"empty crop box: --crop-max {hi.tolist()} must exceed --crop-min {lo.tolist()} on every axis")
        return cls(lo, hi)

    def contains(self, points: np.ndarray) -> np.ndarray:
        return np.all((points >= self.lo) & (points <= self.hi), axis=1)

    def as_dict(self) -> dict:
        return {"min": self.lo.tolist(), "max": self.hi.tolist()}


def model_bounds(field_aabb: np.ndarray, crop: Optional[CropBox], frame: DatasetFrame) -> Tuple[np.ndarray, np.ndarray]:
    """The part (lo, hi) of the field's model-frame box that the crop box can reach; refuses a crop box that misses
    the scene, giving the scene's extent in the dataset frame."""
    lo, hi = np.asarray(field_aabb[0], dtype=np.float64), np.asarray(field_aabb[1], dtype=np.float64)
    if crop is None:
        return lo, hi
    corners = frame.points_to_model(box_corners(crop.lo, crop.hi))
    new_lo, new_hi = np.maximum(lo, corners.min(0)), np.minimum(hi, corners.max(0))
    if np.any(new_hi <= new_lo):
        scene = frame.points_to_dataset(box_corners(lo, hi))
        raise ValueError(f"empty crop: the crop box {crop.lo.tolist()} .. {crop.hi.tolist()} misses the scene, which "
                         f"spans {np.round(scene.min(0), 3).tolist()} .. {np.round(scene.max(0), 3).tolist()} "
                         "(dataset frame)")
    return new_lo, new_hi
