"""Writing a frame's label files and recording them in ``transforms.json`` without losing anything in it.

Label files go under ``labels/`` next to ``transforms.json`` (``labels/semantics/<image stem>.png``,
``labels/instances/...png``, ``labels/probs/...npz``, ``labels/classes.json``). ``transforms.json`` is rewritten
atomically with only the label keys of the frames added or replaced; before its first change a copy is kept as
``transforms.json.orig`` (never overwritten afterwards).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
from rich.progress import Progress

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.labels.dataset_labels import (
    LABEL_CONTRACT_VERSION,
    LABELS_SECTION,
    load_class_table_of_dataset,
    read_transforms,
)
from plift_nerfstudio.labels.errors import LabelFileError
from plift_nerfstudio.labels.frame_labels import CLASS_PROBS_KEY, INSTANCES_KEY, SEMANTICS_KEY, write_label_png

LABELS_DIR = "labels"
CLASS_TABLE_FILE = f"{LABELS_DIR}/classes.json"


@dataclass
class ImportReport:
    """What an importer did to a dataset's frames (file paths as in transforms.json)."""

    transforms: Path
    imported: List[str] = field(default_factory=list)
    skipped_labelled: List[str] = field(default_factory=list)
    frames_without_prediction: List[str] = field(default_factory=list)
    predictions_without_frame: List[str] = field(default_factory=list)


def label_paths_for(image_file_path: str, with_probs: bool) -> Dict[str, str]:
    """Paths (relative to the dataset) of the label files of the frame whose image is ``image_file_path``."""
    stem = Path(image_file_path).stem
    paths = {SEMANTICS_KEY: f"{LABELS_DIR}/semantics/{stem}.png", INSTANCES_KEY: f"{LABELS_DIR}/instances/{stem}.png"}
    if with_probs:
        paths[CLASS_PROBS_KEY] = f"{LABELS_DIR}/probs/{stem}.npz"
    return paths


def write_frame_labels(
    root: Path,
    image_file_path: str,
    semantics_hw: np.ndarray,
    instances_hw: np.ndarray,
    class_probs_hwc: Optional[np.ndarray] = None,
    confidence_hw: Optional[np.ndarray] = None,
) -> Dict[str, str]:
    """Write one frame's label files under ``root``; returns the frame-entry keys to record."""
    if (class_probs_hwc is None) != (confidence_hw is None):
        raise ValueError("class probabilities and confidences go together")
    paths = label_paths_for(image_file_path, with_probs=class_probs_hwc is not None)
    write_label_png(root / paths[SEMANTICS_KEY], semantics_hw)
    write_label_png(root / paths[INSTANCES_KEY], instances_hw)
    if class_probs_hwc is not None:
        probs_path = root / paths[CLASS_PROBS_KEY]
        probs_path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(probs_path, class_probs=class_probs_hwc.astype(np.float16),
                            confidence=np.clip(confidence_hw, 0, 1).astype(np.float16))  # type: ignore[arg-type]
    return paths


@dataclass
class FrameLabelArrays:
    """One frame's labels about to be written (probabilities and confidences optional, together)."""

    semantics_hw: np.ndarray
    instances_hw: np.ndarray
    class_probs_hwc: Optional[np.ndarray] = None
    confidence_hw: Optional[np.ndarray] = None


def write_all_or_nothing(
    root: Path, read_labels_of: Dict[str, Callable[[], FrameLabelArrays]], what: str
) -> Dict[str, Dict[str, str]]:
    """Read every frame's labels once to check them, then again to write them; returns the keys to record.

    ``read_labels_of`` maps a frame's ``file_path`` to a function that reads (and validates) its labels. A bad
    file anywhere raises before any label file is written, so labels already in the dataset stay consistent.
    """
    with Progress(transient=True) as progress:
        task = progress.add_task(f"Checking {what}", total=len(read_labels_of))
        for read in read_labels_of.values():
            read()
            progress.advance(task)
        task = progress.add_task(f"Writing {what}", total=len(read_labels_of))
        written = {}
        for file_path, read in read_labels_of.items():
            labels = read()
            written[file_path] = write_frame_labels(root, file_path, labels.semantics_hw, labels.instances_hw,
                                                    labels.class_probs_hwc, labels.confidence_hw)
            progress.advance(task)
    return written


ReadFrameLabels = Callable[[Path], FrameLabelArrays]
"""Reads and validates the labels of one frame, given the path of the frame's image."""


def import_frames_by_stem(
    data: Path, readers_by_stem: Dict[str, ReadFrameLabels], class_table: ClassTable, overwrite: bool, what: str
) -> ImportReport:
    """Label the frames of ``data`` whose image stem has a reader; what every importer does with its predictions.

    Frames already labelled are skipped unless ``overwrite`` (and must then share ``class_table``); every frame is
    checked before any file is written (``write_all_or_nothing``); the labels are recorded in transforms.json.
    """
    meta, transforms = read_transforms(data)
    root = transforms.parent
    report = ImportReport(transforms)
    frames = meta.get("frames", [])
    report.predictions_without_frame = sorted(set(readers_by_stem) - {Path(f["file_path"]).stem for f in frames})
    keep = [not overwrite and frame_is_labelled(root, f) for f in frames]
    refuse_mixed_class_tables(data, class_table, sum(keep))
    read_labels_of: Dict[str, Callable[[], FrameLabelArrays]] = {}
    for frame, kept in zip(frames, keep):
        file_path = frame["file_path"]
        reader = readers_by_stem.get(Path(file_path).stem)
        if reader is None:
            report.frames_without_prediction.append(file_path)
        elif kept:
            report.skipped_labelled.append(file_path)
        else:
            read_labels_of[file_path] = partial(reader, root / file_path)
            report.imported.append(file_path)
    updates = write_all_or_nothing(root, read_labels_of, what)
    if updates or not report.skipped_labelled:
        record_labels(data, updates, class_table)
    return report


def frame_is_labelled(root: Path, frame: dict) -> bool:
    """Whether a frame entry already points at label files that exist."""
    return all(k in frame and (root / frame[k]).is_file() for k in (SEMANTICS_KEY, INSTANCES_KEY))


def refuse_mixed_class_tables(data: Path, class_table: ClassTable, frames_kept: int) -> None:
    """Frames that keep their labels must share the class table about to be written; else LabelFileError."""
    if frames_kept == 0:
        return
    meta, path = read_transforms(data)
    if LABELS_SECTION in meta and load_class_table_of_dataset(data) != class_table:
        raise LabelFileError(path, f"{frames_kept} frames are already labelled with another class table than this "
                                   "mapping's; relabel all of them (--overwrite)")


def record_labels(data: Path, labels_by_file_path: Dict[str, Dict[str, str]], class_table: ClassTable) -> Path:
    """Add the label keys of some frames and the class table to ``transforms.json``; returns its path.

    Every other key of the file and of its frames is kept as it was.
    """
    meta, path = read_transforms(data)
    root = path.parent
    (root / LABELS_DIR).mkdir(parents=True, exist_ok=True)
    class_table.save(root / CLASS_TABLE_FILE)
    for frame in meta.get("frames", []):
        update = labels_by_file_path.get(frame.get("file_path"))
        if update is not None:
            if CLASS_PROBS_KEY not in update:
                frame.pop(CLASS_PROBS_KEY, None)  # a stale distribution must not outlive its labels
            frame.update(update)
    meta[LABELS_SECTION] = {"version": LABEL_CONTRACT_VERSION, "class_table": CLASS_TABLE_FILE}
    return rewrite_transforms(path, meta)


def rewrite_transforms(path: Path, meta: dict) -> Path:
    """Replace ``transforms.json`` atomically by ``meta``; before its first change a copy is kept as ``.orig``."""
    backup = path.with_name(path.name + ".orig")
    if not backup.exists():
        shutil.copy2(path, backup)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, path)
    return path
