"""Reading and validating the machine labels of one frame (label contract version 1).

Per frame, keys of the frame's entry in ``transforms.json`` (paths relative to the dataset folder):

- ``semantics_path``: PNG (8- or 16-bit, one channel), machine class id per pixel, 0 = void.
- ``instances_path``: PNG (8- or 16-bit, one channel), machine instance id per pixel, 0 = stuff or void.
  Ids are unique within the frame and mean nothing across frames. Only thing pixels may carry one.
- ``class_probs_path`` (optional): ``.npz`` with ``class_probs`` float [h, w, C] (distribution over
  classes 1..C) and ``confidence`` float [h, w] in [0, 1]. May be smaller than the image (same aspect
  ratio); it is resized on load. Frames without it count as one-hot with confidence 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.core.errors import LabelFileError

SEMANTICS_KEY = "semantics_path"
INSTANCES_KEY = "instances_path"
CLASS_PROBS_KEY = "class_probs_path"


@dataclass
class FrameLabelFiles:
    semantics: Path
    instances: Path
    class_probs: Optional[Path] = None


@dataclass
class FrameLabels:
    """Validated labels of one frame at the image resolution (probabilities at their own resolution)."""

    semantics: np.ndarray  # [H, W] int16, 0 = void
    instances: np.ndarray  # [H, W] int32, 0 = stuff/void
    class_probs: Optional[np.ndarray] = None  # [h, w, C] float16, rows sum to 1 (0 where unknown)
    confidence: Optional[np.ndarray] = None  # [h, w] float16 in [0, 1]


def read_image(path: Path, what: str, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Read an image with OpenCV (``flags``); a missing or unreadable file raises LabelFileError naming it."""
    if not path.is_file():
        raise LabelFileError(path, f"{what} does not exist")
    image = cv2.imread(str(path), flags)
    if image is None:
        raise LabelFileError(path, "not a readable image")
    return image


def read_label_png(path: Path) -> np.ndarray:
    """Read a one-channel 8/16-bit integer PNG; errors name the file."""
    image = read_image(path, "label file")
    if image.ndim != 2:
        raise LabelFileError(path, f"label image must have one channel, found shape {tuple(image.shape)}")
    if image.dtype not in (np.uint8, np.uint16):
        raise LabelFileError(path, f"label image must be 8- or 16-bit integer, found {image.dtype}")
    return image


def write_label_png(path: Path, labels: np.ndarray) -> None:
    """Write integer labels as a 16-bit PNG (lossless)."""
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 65535:
        raise ValueError(f"{path}: labels must lie in 0..65535")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), labels.astype(np.uint16)):
        raise OSError(f"{path}: could not write label PNG")


def fit_label_map(labels: np.ndarray, path: Path, image_hw: Tuple[int, int], original_hw: Tuple[int, int]) -> np.ndarray:
    """Accept a label map at the image size, or at the original frame size when images are downscaled."""
    if labels.shape == tuple(image_hw):
        return labels
    if labels.shape == tuple(original_hw):
        return cv2.resize(labels, (image_hw[1], image_hw[0]), interpolation=cv2.INTER_NEAREST)
    raise LabelFileError(
        path, f"size {labels.shape[1]}x{labels.shape[0]} does not match its image ({image_hw[1]}x{image_hw[0]})"
    )


def read_class_probs(path: Path, num_classes: int, image_hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise LabelFileError(path, "class-probability file does not exist")
    try:
        with np.load(path) as data:
            if "class_probs" not in data or "confidence" not in data:
                raise LabelFileError(path, "must hold the arrays 'class_probs' and 'confidence'")
            probs = np.asarray(data["class_probs"], dtype=np.float32)
            confidence = np.asarray(data["confidence"], dtype=np.float32)
    except LabelFileError:
        raise
    except Exception as err:  # numpy raises several types for corrupt archives
        raise LabelFileError(path, f"not a readable .npz archive ({err})") from None
    if probs.ndim != 3 or probs.shape[2] != num_classes:
        raise LabelFileError(
            path, f"'class_probs' must have shape [h, w, {num_classes}] (classes of the table), found {probs.shape}"
        )
    if confidence.shape != probs.shape[:2]:
        raise LabelFileError(path, f"'confidence' shape {confidence.shape} differs from class_probs {probs.shape[:2]}")
    h, w = probs.shape[:2]
    H, W = image_hw
    if abs(h / w - H / W) > max(1.0 / h, 1.0 / w) + 1e-6:
        raise LabelFileError(path, f"size {w}x{h} has another aspect ratio than its image ({W}x{H})")
    for name, array in (("class_probs", probs), ("confidence", confidence)):
        if not np.isfinite(array).all():
            raise LabelFileError(path, f"'{name}' holds {int((~np.isfinite(array)).sum())} NaN or infinite values")
        if array.min() < 0:
            raise LabelFileError(path, f"'{name}' holds {int((array < 0).sum())} negative values (lowest "
                                       f"{float(array.min()):.3g}); it must be >= 0")
    if confidence.max() > 1.0 + 1e-3:
        raise LabelFileError(path, f"'confidence' holds {int((confidence > 1.0 + 1e-3).sum())} values above 1 (highest "
                                   f"{float(confidence.max()):.3g}); confidences lie in [0, 1]")
    sums = probs.sum(-1, keepdims=True)
    if (sums > 1.0 + 1e-2).any():
        raise LabelFileError(path, f"'class_probs' sums to more than 1 at {int((sums > 1.0 + 1e-2).sum())} pixels "
                                   f"(up to {float(sums.max()):.3g}); each pixel's distribution sums to at most 1")
    probs = np.where(sums > 0, probs / np.maximum(sums, 1e-12), 0.0)
    return probs.astype(np.float16), np.clip(confidence, 0.0, 1.0).astype(np.float16)


def check_class_ids(semantics_hw: np.ndarray, path: Path, class_table: ClassTable) -> None:
    """Refuse class ids outside the table (0 = void, 1..C); the error names ``path``."""
    bad = np.unique(semantics_hw[semantics_hw > class_table.num_classes])
    if bad.size:
        raise LabelFileError(
            path, f"class ids {bad.tolist()[:10]} are outside the class table (ids 1..{class_table.num_classes}, 0 = void)"
        )


def check_panoptic_maps(
    semantics_hw: np.ndarray, instances_hw: np.ndarray, semantics_path: Path, instances_path: Path, class_table: ClassTable
) -> None:
    """Class ids within the table and instance ids on thing pixels only (machine labels and ground truth alike);
    else LabelFileError naming the offending file."""
    check_class_ids(semantics_hw, semantics_path, class_table)
    is_thing_lut = np.array([False] + list(class_table.is_thing))
    on_stuff = (instances_hw > 0) & ~is_thing_lut[semantics_hw]
    if on_stuff.any():
        ys, xs = np.nonzero(on_stuff)
        cls = int(semantics_hw[ys[0], xs[0]])
        what = "void" if cls == 0 else f"stuff class {cls} ({class_table.names[cls - 1]})"
        raise LabelFileError(
            instances_path,
            f"{int(on_stuff.sum())} pixels carry an instance id on {what} or other non-thing pixels "
            f"(first at x={xs[0]}, y={ys[0]}); instance ids belong on thing pixels only",
        )


def load_frame_labels(
    files: FrameLabelFiles,
    class_table: ClassTable,
    image_hw: Tuple[int, int],
    original_hw: Tuple[int, int],
) -> FrameLabels:
    """Read and validate one frame's label files against the class table and the image size."""
    semantics = fit_label_map(read_label_png(files.semantics), files.semantics, image_hw, original_hw)
    instances = fit_label_map(read_label_png(files.instances), files.instances, image_hw, original_hw)
    check_panoptic_maps(semantics, instances, files.semantics, files.instances, class_table)
    labels = FrameLabels(semantics=semantics.astype(np.int16), instances=instances.astype(np.int32))
    if files.class_probs is not None:
        labels.class_probs, labels.confidence = read_class_probs(files.class_probs, class_table.num_classes, image_hw)
    return labels
