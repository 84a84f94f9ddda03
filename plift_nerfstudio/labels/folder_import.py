"""Import label files already in this project's format from a folder, e.g. labels made before COLMAP ran.

A label folder holds ``classes.json`` (the class table), ``semantics/<image stem>.png``,
``instances/<image stem>.png`` and optionally ``probs/<image stem>.npz`` (see ``frame_labels`` for their format);
``plift-synth --images-only`` writes the demo capture's machine labels as one. Frames of the dataset are matched
by file stem; every file is validated against the class table and its image before it is written.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.core.errors import LabelFileError
from plift_nerfstudio.labels.frame_labels import FrameLabelFiles, load_frame_labels, read_image
from plift_nerfstudio.labels.writer import FrameLabelArrays, ImportReport, import_frames_by_stem

LABEL_FOLDER_CLASS_TABLE = "classes.json"


def is_label_folder(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / LABEL_FOLDER_CLASS_TABLE).is_file()


def _read_frame(labels_dir: Path, stem: str, class_table: ClassTable, image: Path) -> FrameLabelArrays:
    probs = labels_dir / "probs" / f"{stem}.npz"
    files = FrameLabelFiles(labels_dir / "semantics" / f"{stem}.png", labels_dir / "instances" / f"{stem}.png",
                            probs if probs.is_file() else None)
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
    stems = sorted(p.stem for p in (labels_dir / "semantics").glob("*.png"))
    if not stems:
        raise LabelFileError(labels_dir / "semantics", "holds no label PNGs")
    readers_by_stem = {stem: partial(_read_frame, labels_dir, stem, class_table) for stem in stems}
    return import_frames_by_stem(data, readers_by_stem, class_table, overwrite, "label files")
