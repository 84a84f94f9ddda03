"""A realistic room as a user's capture: its walk's images without poses, beside its machine labels and ground truth.

Users get poses from COLMAP, not from the renderer. ``export_capture`` writes what a phone capture plus a segmenter
would give, so that a room can go the capture way (``scripts/capture_realistic_room.sh``)::

    <output>/images/frame_00001.png ...           the walk's images (training and test views; no poses anywhere)
    <output>/ground_truth/frames.json             plift-attach-ground-truth's file: class table, test images, maps,
                                                  and the renderer's poses (only to report how far COLMAP's are)
    <output>/ground_truth/{classes.json,semantics/,instances/}

The machine labels stay where the room keeps them (``coco_panoptic/predictions.json`` or ``labels/``), both
importable with ``plift-import-labels``; frames are matched by file stem, and the views off the walk (which have no
place in a capture's frame numbering) are left out.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import tyro

from plift_nerfstudio.core import owned_folder
from plift_nerfstudio.core.errors import LabelFileError, read_json_file
from plift_nerfstudio.labels.ground_truth import GROUND_TRUTH_VERSION

CAPTURE_EXPORT = owned_folder.FolderOwner(
    generator="plift-capture-export",
    manifest_file="plift_capture_files.json",
    staging_marker=".plift-capture-incomplete",
    option="--output",
    not_ours="your own files, a capture",
)
"""Only an export this module wrote, unchanged since, is replaced with ``overwrite`` (the project's owned-folder rule)."""


@dataclass
class CaptureExport:
    output: Path
    images: List[str] = field(default_factory=list)
    test_images: List[str] = field(default_factory=list)


def _room_frames(room: Path) -> tuple:
    transforms = room / "transforms.json"
    meta = read_json_file(transforms, "room transforms")
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not frames:
        raise LabelFileError(transforms, "has no frames: not a room made by plift-realistic-scene")
    for frame in frames:
        missing = [k for k in ("file_path", "gt_semantics_path", "gt_instances_path", "transform_matrix") if k not in frame]
        if missing:
            raise LabelFileError(transforms, f"frame {frame.get('file_path')!r} lacks {missing}: a room without ground "
                                             "truth cannot be scored after the capture way")
    test = meta.get("test_filenames")
    if not test:
        raise LabelFileError(transforms, "has no test_filenames: nothing to hold out")
    table = meta.get("panoptic_labels", {}).get("class_table")
    if not table:
        raise LabelFileError(transforms, "has no panoptic_labels.class_table")
    return frames, [Path(t).name for t in test], room / table


def export_capture(room: Path, output: Path, overwrite: bool = False) -> CaptureExport:
    """Write the room's walk as a capture (images, ground truth; see the module docstring) under ``output``.

    An existing ``output`` is refused unless ``overwrite`` and it is an unchanged earlier export (its manifest)."""
    room, output = Path(room), Path(output)
    frames, test_images, class_table = _room_frames(room)
    report = CaptureExport(output, test_images=test_images)
    with owned_folder.staged_output(output, CAPTURE_EXPORT, overwrite) as staging:
        gt_dir = staging / "ground_truth"
        for sub in ("images", "ground_truth/semantics", "ground_truth/instances"):
            (staging / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy2(class_table, gt_dir / "classes.json")
        entries = {}
        for frame in frames:
            name = Path(frame["file_path"]).name
            shutil.copy2(room / frame["file_path"], staging / "images" / name)
            stem = Path(name).stem
            for key, sub in (("gt_semantics_path", "semantics"), ("gt_instances_path", "instances")):
                shutil.copy2(room / frame[key], gt_dir / sub / f"{stem}.png")
            entries[name] = {"gt_semantics_path": f"semantics/{stem}.png", "gt_instances_path": f"instances/{stem}.png",
                             "transform_matrix": frame["transform_matrix"]}
            report.images.append(name)
        gt = {"version": GROUND_TRUTH_VERSION, "class_table": "classes.json", "images_dir": "../images",
              "test_images": test_images, "frames": entries}
        (gt_dir / "frames.json").write_text(json.dumps(gt, indent=1))
    return report


@dataclass
class CaptureOptions:
    """Write a realistic room's walk as a capture: images without poses, ground truth for plift-attach-ground-truth."""

    room: Path
    """The room (a folder plift-realistic-scene made, e.g. data/realistic-v2/bedroom-living-0)."""
    output: Path
    """Where images/ and ground_truth/ go."""
    overwrite: bool = False
    """Replace an earlier export in output (only a folder this command wrote)."""


def entrypoint() -> None:
    opts = tyro.cli(CaptureOptions)
    report = export_capture(opts.room, opts.output, opts.overwrite)
    print(f"{len(report.images)} images ({len(report.test_images)} test) and ground truth written to {report.output}")


if __name__ == "__main__":
    entrypoint()
