"""Import label files already in this project's format from a folder, e.g. labels made before COLMAP ran.

A label folder holds ``classes.json`` (the class table), ``semantics/<image stem>.png``,
``instances/<image stem>.png`` and optionally ``probs/<image stem>.npz`` (see ``frame_labels`` for their format);
``plift-synth --images-only`` writes the demo capture's machine labels as one. Frames of the dataset are matched
by file stem; every file is validated against the class table and its image before it is written.
"""

from __future__ import annotations

from pathlib import Path
from functools import partial
from typing import Callable, Dict

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.labels.dataset_labels import read_transforms
from plift_nerfstudio.labels.errors import LabelFileError
from plift_nerfstudio.labels.frame_labels import FrameLabelFiles, load_frame_labels, read_image
from plift_nerfstudio.labels.writer import (
    FrameLabelArrays,
    ImportReport,
    frame_is_labelled,
    record_labels,
    refuse_mixed_class_tables,
    write_all_or_nothing,
)

LABEL_FOLDER_CLASS_TABLE = "classes.json"


def is_label_folder(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / LABEL_FOLDER_CLASS_TABLE).is_file()


def _read_frame(files: FrameLabelFiles, image: Path, class_table: ClassTable) -> FrameLabelArrays:
    image_hw = read_image(image, "image").shape[:2]
    labels = load_frame_labels(files, class_table, image_hw, image_hw)
    return FrameLabelArrays(labels.semantics, labels.instances, labels.class_probs, labels.confidence)


def import_label_folder(data: Path, labels_dir: Path, overwrite: bool = False) -> ImportReport:
    """Copy the label files of every frame of ``data`` found in ``labels_dir``; record them in transforms.json."""
    labels_dir = Path(labels_dir)
    if not is_label_folder(labels_dir):
        raise LabelFileError(labels_dir, f"is not a label folder (it needs {LABEL_FOLDER_CLASS_TABLE}, semantics/ and "
                                         "instances/)")
    class_table = ClassTable.load(labels_dir / LABEL_FOLDER_CLASS_TABLE)
    meta, transforms = read_transforms(data)
    root = transforms.parent
    report = ImportReport(transforms)
    semantics_of: Dict[str, Path] = {p.stem: p for p in sorted((labels_dir / "semantics").glob("*.png"))}
    if not semantics_of:
        raise LabelFileError(labels_dir / "semantics", "holds no label PNGs")
    frames = meta.get("frames", [])
    report.predictions_without_frame = sorted(set(semantics_of) - {Path(f["file_path"]).stem for f in frames})
    keep = [not overwrite and frame_is_labelled(root, f) for f in frames]
    refuse_mixed_class_tables(data, class_table, sum(keep))
    read_labels_of: Dict[str, Callable[[], FrameLabelArrays]] = {}
    for frame, kept in zip(frames, keep):
        file_path = frame["file_path"]
        stem = Path(file_path).stem
        if stem not in semantics_of:
            report.frames_without_prediction.append(file_path)
        elif kept:
            report.skipped_labelled.append(file_path)
        else:
            probs = labels_dir / "probs" / f"{stem}.npz"
            files = FrameLabelFiles(semantics_of[stem], labels_dir / "instances" / f"{stem}.png",
                                    probs if probs.is_file() else None)
            read_labels_of[file_path] = partial(_read_frame, files, root / file_path, class_table)
            report.imported.append(file_path)
    updates = write_all_or_nothing(root, read_labels_of, "label files")
    if updates or not report.skipped_labelled:
        record_labels(data, updates, class_table)
    return report
