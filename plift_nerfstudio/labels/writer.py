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
from pathlib import Path
from typing import Dict, Optional

import numpy as np

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
    backup = path.with_name(path.name + ".orig")
    if not backup.exists():
        shutil.copy2(path, backup)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, path)
    return path
