"""Finding a nerfstudio dataset's label files through its ``transforms.json`` and loading them all.

``transforms.json`` carries, besides what nerfstudio reads::

    "panoptic_labels": {"version": 1, "class_table": "labels/classes.json"},
    "frames": [{"file_path": "images/frame_00001.png", ...,
                "semantics_path": "labels/semantics/frame_00001.png",
                "instances_path": "labels/instances/frame_00001.png",
                "class_probs_path": "labels/probs/frame_00001.npz"}, ...]
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from rich.progress import Progress

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.core.errors import LabelFileError, read_json_file
from plift_nerfstudio.labels.frame_labels import (
    CLASS_PROBS_KEY,
    INSTANCES_KEY,
    SEMANTICS_KEY,
    FrameLabelFiles,
    load_frame_labels,
)
from plift_nerfstudio.labels.store import PanopticLabelStore

LABEL_CONTRACT_VERSION = 1
LABELS_SECTION = "panoptic_labels"


def transforms_path_of(data: Path) -> Path:
    data = Path(data)
    return data if data.suffix == ".json" else data / "transforms.json"


def read_transforms(data: Path) -> Tuple[dict, Path]:
    path = transforms_path_of(data)
    return read_json_file(path, "transforms file"), path


def check_transforms(data: Path) -> dict:
    """``transforms.json`` parsed, with the frame list nerfstudio needs; else LabelFileError naming the file."""
    meta, path = read_transforms(data)
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list) or not meta["frames"]:
        raise LabelFileError(path, "must be an object with a non-empty list 'frames' (as ns-process-data writes it)")
    for index, frame in enumerate(meta["frames"]):
        if not isinstance(frame, dict) or "file_path" not in frame or "transform_matrix" not in frame:
            raise LabelFileError(path, f"frame {index} ({str(frame)[:60]}) lacks 'file_path' or 'transform_matrix'")
    return meta


def load_class_table_of_dataset(data: Path) -> ClassTable:
    """The class table a dataset's ``transforms.json`` points to."""
    meta, path = read_transforms(data)
    section = meta.get(LABELS_SECTION)
    if not isinstance(section, dict):
        raise LabelFileError(
            path,
            f"has no '{LABELS_SECTION}' section: label the frames first (see docs/labels.md)",
        )
    if section.get("version") != LABEL_CONTRACT_VERSION:
        raise LabelFileError(
            path, f"'{LABELS_SECTION}.version' is {section.get('version')!r}; this plugin reads version {LABEL_CONTRACT_VERSION}"
        )
    if "class_table" not in section:
        raise LabelFileError(path, f"'{LABELS_SECTION}' lacks 'class_table'")
    return ClassTable.load(path.parent / section["class_table"])


def frames_for_images(
    data: Path, image_filenames: Sequence[Path], image_path_of_frame: Callable[[Path], Path]
) -> Tuple[List[dict], Path]:
    """Each image's frame entry of ``transforms.json`` (in image order) and the path of that file.

    ``image_path_of_frame`` maps a frame's ``file_path`` to the image path the dataparser uses (it may point
    into a downscaled ``images_N`` folder).
    """
    meta, path = read_transforms(data)
    by_image: Dict[Path, dict] = {}
    for frame in meta.get("frames", []):
        by_image[Path(image_path_of_frame(Path(frame["file_path"])))] = frame
    frames = []
    for image in image_filenames:
        frame = by_image.get(Path(image))
        if frame is None:
            raise LabelFileError(path, f"no frame entry for image {image}")
        frames.append(frame)
    return frames, path


def frame_label_files(
    data: Path, image_filenames: Sequence[Path], image_path_of_frame: Callable[[Path], Path]
) -> List[FrameLabelFiles]:
    """Label files of each image, matched through the frame entries of ``transforms.json``."""
    frames, path = frames_for_images(data, image_filenames, image_path_of_frame)
    root = path.parent
    files = []
    for frame in frames:
        missing = [k for k in (SEMANTICS_KEY, INSTANCES_KEY) if k not in frame]
        if missing:
            raise LabelFileError(path, f"frame {frame['file_path']} lacks {', '.join(missing)}")
        probs: Optional[Path] = root / frame[CLASS_PROBS_KEY] if frame.get(CLASS_PROBS_KEY) else None
        files.append(FrameLabelFiles(root / frame[SEMANTICS_KEY], root / frame[INSTANCES_KEY], probs))
    return files


def load_label_store(
    files: Sequence[FrameLabelFiles],
    class_table: ClassTable,
    image_hw: Sequence[Tuple[int, int]],
    original_hw: Sequence[Tuple[int, int]],
) -> PanopticLabelStore:
    """Load and validate every frame's labels (with a progress bar) into one compact store, a frame at a time;
    the first bad file stops with its error."""
    if not files:
        raise ValueError("no frames to load labels for")
    sizes = sorted(set(map(tuple, image_hw)))
    if len(sizes) > 1:
        raise LabelFileError(files[0].semantics.parent, f"frames have different sizes {sizes}; one size is supported")
    store = PanopticLabelStore(len(files), tuple(image_hw[0]), class_table)  # type: ignore[arg-type]
    with Progress(transient=True) as progress:
        task = progress.add_task("Loading panoptic labels", total=len(files))
        for i, (f, hw, ohw) in enumerate(zip(files, image_hw, original_hw)):
            store.add_frame(i, load_frame_labels(f, class_table, hw, ohw))
            progress.advance(task)
    return store
