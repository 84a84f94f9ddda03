"""Writing label files as a label set and recording them in ``transforms.json`` without losing anything.

A label set is a folder next to ``transforms.json`` holding one class table and the label files of some frames
(``<set>/classes.json``, ``<set>/semantics/<image stem>.png``, ``<set>/instances/...png``, ``<set>/probs/...npz``).
The first set is ``labels/``. Labelling more frames with the same class table adds them to the current set.
Relabelling (``--overwrite``) or labelling under another class table writes a new set (``labels-2/``, ...) in a
staging folder (``<set>.incomplete``) and switches ``transforms.json`` to it in one atomic rewrite once every file
is written: an interrupted relabelling leaves the old labels in force, and the label files of labelled frames are
never overwritten or deleted (only frames without complete labels get files written into the current set), so
``transforms.json.orig`` (the copy kept before the first change, never overwritten) still restores the dataset as
it was. Old sets stay on disk until the user deletes them.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
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
from plift_nerfstudio.core.errors import LabelFileError
from plift_nerfstudio.labels.frame_labels import CLASS_PROBS_KEY, INSTANCES_KEY, SEMANTICS_KEY, write_label_png
from plift_nerfstudio.core.staging import fresh_staging_folder, publish_staging_folder

FIRST_LABEL_SET = "labels"
CLASS_TABLE_NAME = "classes.json"
STAGING_SUFFIX = ".incomplete"
STAGING_MARKER = ".plift-label-set-incomplete"


@dataclass
class ImportReport:
    """What an importer did to a dataset's frames (file paths as in transforms.json)."""

    transforms: Path
    imported: List[str] = field(default_factory=list)
    skipped_labelled: List[str] = field(default_factory=list)
    frames_without_prediction: List[str] = field(default_factory=list)
    kept_without_prediction: List[str] = field(default_factory=list)
    """Frames without a prediction that keep the labels they had (a subset of frames_without_prediction)."""
    predictions_without_frame: List[str] = field(default_factory=list)
    label_set: Optional[str] = None
    """The label set (folder) the imported frames were written to."""


def label_files_in_set(image_file_path: str, with_probs: bool) -> Dict[str, str]:
    """Paths, inside a label set, of the label files of the frame whose image is ``image_file_path``."""
    stem = Path(image_file_path).stem
    paths = {SEMANTICS_KEY: f"semantics/{stem}.png", INSTANCES_KEY: f"instances/{stem}.png"}
    if with_probs:
        paths[CLASS_PROBS_KEY] = f"probs/{stem}.npz"
    return paths


@dataclass
class FrameLabelArrays:
    """One frame's labels about to be written (probabilities and confidences optional, together)."""

    semantics_hw: np.ndarray
    instances_hw: np.ndarray
    class_probs_hwc: Optional[np.ndarray] = None
    confidence_hw: Optional[np.ndarray] = None


def current_label_set(meta: dict) -> Optional[str]:
    """The folder (relative to the dataset) of the class table ``transforms.json`` points to, if any."""
    section = meta.get(LABELS_SECTION)
    if not isinstance(section, dict) or not isinstance(section.get("class_table"), str):
        return None
    return PurePosixPath(section["class_table"]).parent.as_posix()


def free_label_set_name(root: Path) -> str:
    """``labels``, else the first of ``labels-2``, ``labels-3``, ... that does not exist."""
    name, number = FIRST_LABEL_SET, 1
    while (root / name).exists():
        number += 1
        name = f"{FIRST_LABEL_SET}-{number}"
    return name


class LabelSetWriter:
    """Writes frames' label files into a label set of ``data`` and records them in its ``transforms.json``.

    Without ``relabel``, frames go into the dataset's current set when it has the same class table; otherwise
    (relabelling, another class table, or a dataset without labels) into a new set, staged until the first
    :meth:`commit` makes it the dataset's set in one atomic rewrite of ``transforms.json``.
    """

    def __init__(self, data: Path, class_table: ClassTable, relabel: bool) -> None:
        meta, self.transforms = read_transforms(data)
        self.data, self.root, self.class_table = data, self.transforms.parent, class_table
        current = current_label_set(meta)
        if (not relabel and current not in (None, ".") and (self.root / current).is_dir()
                and load_class_table_of_dataset(data) == class_table):
            self.name, self.staged = current, False
            self.class_table_file = meta[LABELS_SECTION]["class_table"]
            return
        self.name, self.staged = free_label_set_name(self.root), True
        self.class_table_file = f"{self.name}/{CLASS_TABLE_NAME}"
        class_table.save(fresh_staging_folder(self.folder, STAGING_MARKER, "a labelling command") / CLASS_TABLE_NAME)

    @property
    def folder(self) -> Path:
        """Where files are written now: the set, or its staging folder until the first commit."""
        return self.root / (self.name + STAGING_SUFFIX if self.staged else self.name)

    def write(self, image_file_path: str, labels: FrameLabelArrays) -> Dict[str, str]:
        """Write one frame's label files; returns the frame-entry keys to record (paths relative to the dataset)."""
        if (labels.class_probs_hwc is None) != (labels.confidence_hw is None):
            raise ValueError("class probabilities and confidences go together")
        paths = label_files_in_set(image_file_path, with_probs=labels.class_probs_hwc is not None)
        write_label_png(self.folder / paths[SEMANTICS_KEY], labels.semantics_hw)
        write_label_png(self.folder / paths[INSTANCES_KEY], labels.instances_hw)
        if labels.class_probs_hwc is not None:
            probs_path = self.folder / paths[CLASS_PROBS_KEY]
            probs_path.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(probs_path, class_probs=labels.class_probs_hwc.astype(np.float16),
                                confidence=np.clip(labels.confidence_hw, 0, 1).astype(np.float16))  # type: ignore[arg-type]
        return {key: f"{self.name}/{path}" for key, path in paths.items()}

    def commit(self, labels_by_file_path: Dict[str, Dict[str, str]]) -> Path:
        """Make the set (with the frames written so far) the dataset's labels; returns transforms.json's path."""
        if self.staged:
            publish_staging_folder(self.folder, STAGING_MARKER, self.root / self.name)
            self.staged = False
        return record_labels(self.data, labels_by_file_path, self.class_table_file)

    def discard(self) -> None:
        """Remove a staged set that was never committed (nothing was labelled)."""
        if self.staged and self.folder.exists():
            shutil.rmtree(self.folder)


def write_all_or_nothing(
    writer: LabelSetWriter, read_labels_of: Dict[str, Callable[[], FrameLabelArrays]], what: str
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
            written[file_path] = writer.write(file_path, read())
            progress.advance(task)
    return written


ReadFrameLabels = Callable[[Path], FrameLabelArrays]
"""Reads and validates the labels of one frame, given the path of the frame's image."""


def import_frames_by_stem(
    data: Path, readers_by_stem: Dict[str, ReadFrameLabels], class_table: ClassTable, overwrite: bool, what: str
) -> ImportReport:
    """Label the frames of ``data`` whose image stem has a reader; what every importer does with its predictions.

    Frames already labelled are skipped unless ``overwrite``; frames that keep their labels must share
    ``class_table`` (``refuse_mixed_class_tables``). Every frame is checked before any file is written
    (``write_all_or_nothing``); the labels are recorded in transforms.json in one rewrite.
    """
    meta, transforms = read_transforms(data)
    root = transforms.parent
    report = ImportReport(transforms)
    frames = meta.get("frames", [])
    report.predictions_without_frame = sorted(set(readers_by_stem) - {Path(f["file_path"]).stem for f in frames})
    labelled = [frame_is_labelled(root, f) for f in frames]
    predicted = [Path(f["file_path"]).stem in readers_by_stem for f in frames]
    keeping = [f["file_path"] for f, lab, pred in zip(frames, labelled, predicted) if lab and not (overwrite and pred)]
    refuse_mixed_class_tables(data, class_table, keeping, overwrite)
    read_labels_of: Dict[str, Callable[[], FrameLabelArrays]] = {}
    for frame, is_labelled, has_prediction in zip(frames, labelled, predicted):
        file_path = frame["file_path"]
        if not has_prediction:
            report.frames_without_prediction.append(file_path)
            if is_labelled:
                report.kept_without_prediction.append(file_path)
        elif is_labelled and not overwrite:
            report.skipped_labelled.append(file_path)
        else:
            read_labels_of[file_path] = partial(readers_by_stem[Path(file_path).stem], root / file_path)
            report.imported.append(file_path)
    if not read_labels_of:
        return report
    writer = LabelSetWriter(data, class_table, relabel=overwrite)
    try:
        updates = write_all_or_nothing(writer, read_labels_of, what)
    except BaseException:
        writer.discard()
        raise
    writer.commit(updates)
    report.label_set = writer.name
    return report


def frame_is_labelled(root: Path, frame: dict) -> bool:
    """Whether a frame entry already points at label files that exist."""
    return all(k in frame and (root / frame[k]).is_file() for k in (SEMANTICS_KEY, INSTANCES_KEY))


def refuse_mixed_class_tables(data: Path, class_table: ClassTable, keeping: List[str], overwrite: bool) -> None:
    """Frames that keep their labels (``keeping``) must share the class table about to be written; else
    LabelFileError, before anything is written."""
    if not keeping:
        return
    meta, path = read_transforms(data)
    if LABELS_SECTION not in meta:
        return
    current = load_class_table_of_dataset(data)
    if current == class_table:
        return
    tables = f"the dataset's table has {current.num_classes} classes, the new one {class_table.num_classes}"
    if overwrite:
        raise LabelFileError(path, f"--overwrite relabels the frames that have a prediction, but {len(keeping)} "
                                   f"labelled frames have none (e.g. {keeping[0]}) and would keep labels under "
                                   f"another class table ({tables}); give predictions for every labelled frame or "
                                   "use the dataset's class table. Nothing was written.")
    raise LabelFileError(path, f"{len(keeping)} frames are already labelled with another class table ({tables}); "
                               "relabel all of them (--overwrite). Nothing was written.")


def record_labels(data: Path, labels_by_file_path: Dict[str, Dict[str, str]], class_table_file: str) -> Path:
    """Point some frames at their label files and the dataset at ``class_table_file`` in ``transforms.json``, in
    one atomic rewrite; returns its path. Every other key of the file and of its frames is kept as it was."""
    meta, path = read_transforms(data)
    for frame in meta.get("frames", []):
        update = labels_by_file_path.get(frame.get("file_path"))
        if update is not None:
            if CLASS_PROBS_KEY not in update:
                frame.pop(CLASS_PROBS_KEY, None)  # a stale distribution must not outlive its labels
            frame.update(update)
    meta[LABELS_SECTION] = {"version": LABEL_CONTRACT_VERSION, "class_table": class_table_file}
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
