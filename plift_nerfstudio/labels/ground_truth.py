"""Attaching a capture's ground-truth panoptic maps and test split to its nerfstudio dataset, for evaluation.

A ground-truth file (``frames.json``, version 1; paths relative to its folder)::

    {"version": 1,
     "class_table": "classes.json",
     "images_dir": "../images",                 # optional: the images the maps belong to (checked, see below)
     "test_images": ["frame_00008.png", ...],   # frames held out of training
     "frames": {"frame_00001.png": {"gt_semantics_path": "semantics/frame_00001.png",
                                    "gt_instances_path": "instances/frame_00001.png",
                                    "transform_matrix": [...]}, ...}}   # optional: the true camera-to-world pose

``plift-synth --images-only`` writes one. Frames of the dataset are matched to its entries by file stem
(``ns-process-data images`` keeps the stems of images already named ``frame_00001`` ...); with ``images_dir``
each matched dataset image must show the same pixels as the original, so a renumbering is caught rather than
evaluated. The maps are copied to ``ground_truth/`` in the dataset, their frames get ``gt_semantics_path`` and
``gt_instances_path``, and ``train_filenames``/``val_filenames``/``test_filenames`` are set from ``test_images``
restricted to the frames the dataset has (COLMAP may not register all of them). With true poses, the report
says how far the dataset's camera centres are from them after similarity alignment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.labels.dataset_labels import LABELS_SECTION, load_class_table_of_dataset, read_transforms
from plift_nerfstudio.core.errors import LabelFileError, read_json_file
from plift_nerfstudio.labels.frame_labels import check_panoptic_maps, read_image, read_label_png, write_label_png
from plift_nerfstudio.labels.writer import rewrite_transforms
from plift_nerfstudio.labels.pose_alignment import similarity_aligned_errors

GROUND_TRUTH_VERSION = 1
GT_SEMANTICS_KEY = "gt_semantics_path"
GT_INSTANCES_KEY = "gt_instances_path"
GT_DIR = "ground_truth"
SPLIT_KEYS = ("train_filenames", "val_filenames", "test_filenames")
SAME_IMAGE_MAX_MEAN_ABS_DIFF = 2.0
"""Mean absolute 8-bit difference up to which a dataset image counts as the original (allows re-encoding)."""


@dataclass
class AttachReport:
    transforms: Path
    with_ground_truth: List[str] = field(default_factory=list)
    test_frames: List[str] = field(default_factory=list)
    train_frames: List[str] = field(default_factory=list)
    test_images_missing: List[str] = field(default_factory=list)
    """Test images of the ground truth that the dataset lacks (e.g. not registered by COLMAP)."""
    frames_without_ground_truth: List[str] = field(default_factory=list)
    camera_centre_errors: Optional[np.ndarray] = None
    """With true poses in the ground truth: each matched frame's camera-centre distance to the truth after
    similarity alignment, in the ground truth's units (how well COLMAP did)."""


def _read_ground_truth_file(gt_json: Path) -> dict:
    gt = read_json_file(gt_json, "ground-truth file")
    if not isinstance(gt, dict) or gt.get("version") != GROUND_TRUTH_VERSION:
        raise LabelFileError(gt_json, f"expected an object with \"version\": {GROUND_TRUTH_VERSION} "
                                      "(a ground-truth file as plift-synth --images-only writes it)")
    for key, kind in (("class_table", str), ("test_images", list), ("frames", dict)):
        if not isinstance(gt.get(key), kind):
            raise LabelFileError(gt_json, f"'{key}' is missing or not a {kind.__name__}")
    for name, entry in gt["frames"].items():
        if not isinstance(entry, dict) or not {GT_SEMANTICS_KEY, GT_INSTANCES_KEY} <= set(entry):
            raise LabelFileError(gt_json, f"frame {name!r} lacks '{GT_SEMANTICS_KEY}' or '{GT_INSTANCES_KEY}'")
    unknown = [n for n in gt["test_images"] if n not in gt["frames"]]
    if unknown:
        raise LabelFileError(gt_json, f"test images without a frame entry: {unknown[:5]}")
    return gt


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute 8-bit difference of two images of one shape (inf when the shapes differ)."""
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def check_same_image(dataset_pixels: np.ndarray, dataset_image: Path, original_image: Path,
                     other_originals: Sequence[Path] = ()) -> None:
    """Refuse a dataset image (its colour pixels, read from ``dataset_image``) that does not show the original's
    pixels, saying by how much it differs and, if it shows one of ``other_originals``, which (a renumbering)."""
    original = read_image(original_image, "original image", cv2.IMREAD_COLOR)
    difference = mean_abs_difference(dataset_pixels, original)
    if difference <= SAME_IMAGE_MAX_MEAN_ABS_DIFF:
        return
    for other in other_originals:
        other_pixels = read_image(other, "original image", cv2.IMREAD_COLOR) if other != original_image else None
        if other_pixels is not None and mean_abs_difference(dataset_pixels, other_pixels) <= SAME_IMAGE_MAX_MEAN_ABS_DIFF:
            raise LabelFileError(dataset_image, f"shows the pixels of {other.name}, not of {original_image}: the frames "
                                                "were renumbered (frames are matched to ground truth by file stem)")
    if dataset_pixels.shape != original.shape:
        found = (f"its size {dataset_pixels.shape[1]}x{dataset_pixels.shape[0]} differs from "
                 f"{original.shape[1]}x{original.shape[0]}")
    else:
        found = (f"the mean absolute difference is {difference:.1f} per 8-bit channel, more than the "
                 f"{SAME_IMAGE_MAX_MEAN_ABS_DIFF:.1f} a lossy re-encoding may add")
    raise LabelFileError(dataset_image, f"is not the image {original_image} its ground truth belongs to ({found}); "
                                        "were the frames renumbered, resized or edited?")


def read_ground_truth_maps(
    semantics_png: Path, instances_png: Path, image_hw: tuple, class_table: ClassTable
) -> tuple:
    """Ground-truth class and instance maps of one frame, checked against its image size and the class table."""
    maps = []
    for png in (semantics_png, instances_png):
        m = read_label_png(png)
        if m.shape != tuple(image_hw):
            raise LabelFileError(png, f"size {m.shape[1]}x{m.shape[0]} differs from its image ({image_hw[1]}x{image_hw[0]})")
        maps.append(m)
    check_panoptic_maps(maps[0], maps[1], semantics_png, instances_png, class_table)
    return maps[0], maps[1]


def _camera_centre_errors(frames: List[dict], gt: dict, gt_name_of_stem: Dict[str, str]) -> Optional[np.ndarray]:
    pairs = []
    for frame in frames:
        name = gt_name_of_stem.get(Path(frame["file_path"]).stem)
        true = gt["frames"].get(name, {}).get("transform_matrix") if name else None
        if true is not None and "transform_matrix" in frame:
            pairs.append((np.asarray(frame["transform_matrix"])[:3, 3], np.asarray(true)[:3, 3]))
    if len(pairs) < 3:
        return None
    return similarity_aligned_errors(np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))


def attach_ground_truth(data: Path, gt_json: Path, overwrite: bool = False) -> AttachReport:
    """Copy ground-truth maps into the dataset ``data`` and set its test split; see the module docstring.

    Nothing is written unless every matched frame's maps are valid; ground truth or a split already in
    ``transforms.json`` is refused unless ``overwrite``.
    """
    gt_json = Path(gt_json)
    gt = _read_ground_truth_file(gt_json)
    gt_dir = gt_json.parent
    meta, transforms = read_transforms(data)
    root = transforms.parent
    if LABELS_SECTION not in meta:
        raise LabelFileError(transforms, "has no machine labels yet: label the frames first (plift-segment or "
                                         "plift-import-labels); the ground truth is checked against their class table")
    class_table = load_class_table_of_dataset(data)
    gt_table = ClassTable.load(gt_dir / gt["class_table"])
    if gt_table != class_table:
        raise LabelFileError(gt_dir / gt["class_table"], f"differs from the dataset's class table ({transforms}); "
                                                         "evaluation compares class ids, so both must be the same")
    frames = meta.get("frames", [])
    if not overwrite:
        present = [k for k in SPLIT_KEYS if k in meta]
        if present:
            raise LabelFileError(transforms, f"already has a split ({', '.join(present)}); --overwrite replaces it")
        with_gt = [f["file_path"] for f in frames if GT_SEMANTICS_KEY in f or GT_INSTANCES_KEY in f]
        if with_gt:
            raise LabelFileError(transforms, f"{len(with_gt)} frames already have ground truth (e.g. {with_gt[0]}); "
                                             "--overwrite replaces it")
    by_stem: Dict[str, str] = {Path(name).stem: name for name in gt["frames"]}
    images_dir: Optional[Path] = gt_dir / gt["images_dir"] if gt.get("images_dir") else None
    report = AttachReport(transforms)
    maps_of: Dict[str, tuple] = {}
    for frame in frames:
        file_path = frame["file_path"]
        name = by_stem.get(Path(file_path).stem)
        if name is None:
            report.frames_without_ground_truth.append(file_path)
            continue
        image_path = root / file_path
        pixels = read_image(image_path, "image", cv2.IMREAD_COLOR)
        if images_dir is not None:
            check_same_image(pixels, image_path, images_dir / name, [images_dir / n for n in gt["frames"]])
        image_hw = pixels.shape[:2]
        entry = gt["frames"][name]
        maps_of[file_path] = read_ground_truth_maps(
            gt_dir / entry[GT_SEMANTICS_KEY], gt_dir / entry[GT_INSTANCES_KEY], image_hw, class_table
        )
    test_stems = {Path(n).stem for n in gt["test_images"]}
    dataset_stems = {Path(f["file_path"]).stem for f in frames}
    report.test_images_missing = sorted(n for n in gt["test_images"] if Path(n).stem not in dataset_stems)
    report.test_frames = [f["file_path"] for f in frames if Path(f["file_path"]).stem in test_stems]
    report.train_frames = [f["file_path"] for f in frames if Path(f["file_path"]).stem not in test_stems]
    if not report.test_frames:
        raise LabelFileError(gt_json, f"none of its {len(gt['test_images'])} test images is a frame of {transforms}")
    if not report.train_frames:
        raise LabelFileError(gt_json, f"every frame of {transforms} is a test image; nothing would be left to train on")
    for frame in frames:
        maps = maps_of.get(frame["file_path"])
        if maps is None:
            continue
        stem = Path(frame["file_path"]).stem
        frame[GT_SEMANTICS_KEY] = f"{GT_DIR}/semantics/{stem}.png"
        frame[GT_INSTANCES_KEY] = f"{GT_DIR}/instances/{stem}.png"
        write_label_png(root / frame[GT_SEMANTICS_KEY], maps[0])
        write_label_png(root / frame[GT_INSTANCES_KEY], maps[1])
        report.with_ground_truth.append(frame["file_path"])
    report.camera_centre_errors = _camera_centre_errors(frames, gt, by_stem)
    meta["train_filenames"] = report.train_frames
    meta["val_filenames"] = report.test_frames
    meta["test_filenames"] = report.test_frames
    rewrite_transforms(transforms, meta)
    return report
