"""Write a procedural scene as a labelled nerfstudio dataset (or as bare images for the capture workflow)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Literal, Optional, Tuple

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from plift_nerfstudio.labels.class_mapping import load_class_mapping
from plift_nerfstudio.labels.class_table import ClassTable, scannet21_class_table
from plift_nerfstudio.labels.dataset_labels import LABEL_CONTRACT_VERSION, LABELS_SECTION
from plift_nerfstudio.labels.ground_truth import GROUND_TRUTH_VERSION
from plift_nerfstudio.scenes.dataset_folder import check_replaceable, staged_output
from plift_nerfstudio.scenes.dataset_writer import (
    MachineLabels,
    contact_row,
    save_ground_truth,
    save_machine_labels,
    save_rgb,
)
from plift_nerfstudio.scenes.procedural.noise import NOISE_PRESETS, corrupt
from plift_nerfstudio.scenes.procedural.render import Intrinsics, camera_path, render
from plift_nerfstudio.scenes.procedural.scene import ScenePreset, make_room


@dataclass
class SynthOptions:
    """Options of plift-synth."""

    output: Path
    """Dataset folder to write (refused if it exists and is not empty, unless --overwrite)."""
    seed: int = 0
    """Seed of the room layout, camera path and label noise (same seed, same bytes)."""
    num_frames: int = 100
    """Number of frames along the camera path."""
    width: int = 160
    """Image width in pixels."""
    height: int = 120
    """Image height in pixels."""
    scene: ScenePreset = "room"
    """Scene preset: 'room' (about 5 x 4.7 m) or 'small-room' (about 4 x 3.8 m)."""
    noise: Literal["clean", "moderate", "hard"] = "moderate"
    """Noise preset of the machine labels (see plift_nerfstudio/scenes/procedural/noise.py)."""
    classes: Literal["scannet21", "scannet31"] = "scannet21"
    """Class table of the labels and the ground truth: 'scannet21' (the demo scenes' table) or 'scannet31' (the
    table captures use, supplementary Table 7 right): the same room and objects, written with the 31-class ids and
    31-class probability files."""
    test_every: int = 8
    """Every k-th frame is held out as a test frame."""
    images_only: bool = False
    """Write a capture instead of a dataset: images/ for ns-process-data, no poses and no transforms.json; the
    machine labels go to machine_labels/ (a label folder for plift-import-labels) and the ground truth to
    ground_truth/ (frames.json for plift-attach-ground-truth), both keyed by image file name."""
    overwrite: bool = False
    """Replace an existing plift-synth output folder: only one that plift-synth wrote and nobody changed since
    (its plift_synth_files.json lists every file with a checksum); anything else is refused and left untouched."""
    contact_sheet_frames: int = 4
    """Frames shown in contact_sheet.png."""
    edits: Optional[Path] = None
    """Write, instead of the dataset, the ground truth of the room edited by this edit list (docs/editing.md;
    instance ids are the room's true ids) from the test cameras: images/, gt/ and edited_truth.json. Give the
    options the dataset was made with (seed, frames, size, scene, test-every)."""

    def validate(self) -> None:
        if self.seed < 0:
            raise ValueError(f"--seed must be a non-negative integer, got {self.seed}")
        if self.num_frames < 2:
            raise ValueError(f"--num-frames must be at least 2, got {self.num_frames}")
        if not (16 <= self.width <= 4096 and 16 <= self.height <= 4096):
            raise ValueError(f"--width and --height must lie in 16..4096, got {self.width}x{self.height}")
        if self.test_every < 2:
            raise ValueError(f"--test-every must be at least 2 (every k-th frame is held out), got {self.test_every}")
        if self.num_frames < self.test_every:
            raise ValueError(f"--num-frames {self.num_frames} with --test-every {self.test_every} leaves no test frame "
                             f"(every {self.test_every}th frame is held out); give at least {self.test_every} frames "
                             "or a smaller --test-every")
        if self.contact_sheet_frames < 1:
            raise ValueError(f"--contact-sheet-frames must be at least 1, got {self.contact_sheet_frames}")
        if self.classes not in ("scannet21", "scannet31"):
            raise ValueError(f"unknown --classes {self.classes!r}; choose scannet21 or scannet31")
        if self.noise not in NOISE_PRESETS:
            raise ValueError(f"unknown --noise {self.noise!r}; choose one of {sorted(NOISE_PRESETS)}")


def class_table_and_lut(classes: str) -> Tuple[ClassTable, np.ndarray]:
    """The class table to write and the lookup table from the scene's 21-class ids (0 = void) into it."""
    scene_table = scannet21_class_table()
    if classes == "scannet21":
        return scene_table, np.arange(scene_table.num_classes + 1)
    table = load_class_mapping("scannet31").target
    lut = np.zeros(scene_table.num_classes + 1, np.int64)
    for i, name in enumerate(scene_table.names):
        lut[i + 1] = table.names.index(name) + 1  # every 21-class name is in the 31-class table
    return table, lut


def relabel_machine(labels: MachineLabels, lut: np.ndarray, num_classes: int) -> MachineLabels:
    """Machine labels with class ids and probability columns moved through ``lut`` into a ``num_classes`` table."""
    if len(lut) == num_classes + 1 and np.array_equal(lut, np.arange(num_classes + 1)):
        return labels
    probs = np.zeros((*labels.class_probs.shape[:2], num_classes), labels.class_probs.dtype)
    probs[..., lut[1:] - 1] = labels.class_probs
    return dataclasses.replace(labels, semantics=lut[labels.semantics].astype(labels.semantics.dtype), class_probs=probs)


def write_dataset(opts: SynthOptions) -> Path:
    """Render, label and write the scene; returns the dataset folder.

    The scene is written to a staging folder beside ``opts.output`` and moved into place when complete, so an
    interrupted run leaves any earlier output as it was. ``--overwrite`` replaces only an output plift-synth wrote
    and nobody changed (see ``synth/output_folder.py``).
    """
    opts.validate()
    edit_list = None
    if opts.edits is not None:
        from plift_nerfstudio.editing.edit_list import load_edit_list

        edit_list = load_edit_list(opts.edits)
    check_replaceable(opts.output, opts.overwrite)  # before minutes of rendering
    with staged_output(opts.output, opts.overwrite) as root:
        if edit_list is None:
            _write_scene(opts, root)
        else:
            _write_edited_truth(opts, edit_list, root)
    return opts.output


def _write_edited_truth(opts: SynthOptions, edit_list, root: Path) -> None:
    """Test frames of the room with ``edit_list`` applied: colour, class, instance and depth."""
    from plift_nerfstudio.scenes.procedural.edits import edit_room

    room = make_room(opts.seed, opts.scene)
    edited = edit_room(room, edit_list, str(opts.edits))
    rng = np.random.default_rng(opts.seed + 7919)
    poses = camera_path(room, opts.num_frames, rng)
    intr = Intrinsics.from_fov(opts.width, opts.height)
    _, lut = class_table_and_lut(opts.classes)
    frames = []
    tests = [i for i in range(opts.num_frames) if i % opts.test_every == opts.test_every - 1]
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns) as progress:
        task = progress.add_task(f"Rendering the edited {opts.scene} (seed {opts.seed})", total=len(tests))
        for i in tests:
            name = f"frame_{i + 1:05d}"
            frame = render(edited, poses[i], intr)
            save_rgb(root / "images" / f"{name}.png", frame.rgb)
            frames.append({"file_path": f"images/{name}.png", "transform_matrix": poses[i].tolist(),
                           **save_ground_truth(root, "gt/", name, frame, lut)})
            progress.advance(task)
    meta = {"plift_synth": {"seed": opts.seed, "scene": opts.scene, "test_every": opts.test_every},
            "edits": edit_list.to_json_dict(), "frames": frames}
    (root / "edited_truth.json").write_text(json.dumps(meta, indent=1))


def _write_scene(opts: SynthOptions, root: Path) -> None:
    room = make_room(opts.seed, opts.scene)
    rng = np.random.default_rng(opts.seed + 7919)
    poses = camera_path(room, opts.num_frames, rng)
    intr = Intrinsics.from_fov(opts.width, opts.height)
    noise = NOISE_PRESETS[opts.noise]
    class_table, lut = class_table_and_lut(opts.classes)

    frames: List[dict] = []
    sheet: List[np.ndarray] = []
    sheet_every = max(1, opts.num_frames // max(1, opts.contact_sheet_frames))
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns) as progress:
        task = progress.add_task(f"Rendering {opts.scene} (seed {opts.seed})", total=opts.num_frames)
        for i, c2w in enumerate(poses):
            name = f"frame_{i + 1:05d}"
            frame = render(room, c2w, intr)
            labels = corrupt(frame.semantics, frame.instances, noise, np.random.default_rng([opts.seed, i]))
            labels = relabel_machine(labels, lut, class_table.num_classes)
            save_rgb(root / "images" / f"{name}.png", frame.rgb)
            entry = {"file_path": f"images/{name}.png", "transform_matrix": c2w.tolist()}
            if opts.images_only:
                # labels and ground truth live apart from the images, where nerfstudio reads nothing; ground-truth
                # paths are relative to ground_truth/, where frames.json goes
                save_machine_labels(root, "machine_labels/", name, labels)
                entry.update(save_ground_truth(root / "ground_truth", "", name, frame, lut))
            else:
                entry.update(save_machine_labels(root, "labels/", name, labels))
                entry.update(save_ground_truth(root, "gt/", name, frame, lut))
            frames.append(entry)
            if i % sheet_every == 0 and len(sheet) < opts.contact_sheet_frames:
                sheet.append(contact_row(frame, labels, class_table.colors, lut))
            progress.advance(task)

    test_names = [f["file_path"] for i, f in enumerate(frames) if i % opts.test_every == opts.test_every - 1]
    train_names = [f["file_path"] for f in frames if f["file_path"] not in set(test_names)]
    class_table.save(_ensure_dir(root / ("machine_labels" if opts.images_only else "labels")) / "classes.json")
    if opts.images_only:
        # ground truth and machine labels keyed by image file name (ns-process-data renames the images)
        class_table.save(root / "ground_truth" / "classes.json")
        meta = {
            "version": GROUND_TRUTH_VERSION,
            "generator": "plift-synth",
            "seed": opts.seed,
            "scene": opts.scene,
            "noise": opts.noise,
            "intrinsics": intr.__dict__,
            "images_dir": "../images",
            "class_table": "classes.json",
            "test_images": [Path(n).name for n in test_names],
            "frames": {Path(f["file_path"]).name: {k: v for k, v in f.items() if k != "file_path"} for f in frames},
        }
        (root / "ground_truth" / "frames.json").write_text(json.dumps(meta, indent=1))
    else:
        meta = {
            "camera_model": "OPENCV",
            "fl_x": intr.fx, "fl_y": intr.fy, "cx": intr.cx, "cy": intr.cy, "w": intr.width, "h": intr.height,
            LABELS_SECTION: {"version": LABEL_CONTRACT_VERSION, "class_table": "labels/classes.json"},
            "plift_synth": {"seed": opts.seed, "scene": opts.scene, "noise": opts.noise, "test_every": opts.test_every},
            "frames": frames,
            "train_filenames": train_names,
            "val_filenames": test_names,
            "test_filenames": test_names,
        }
        (root / "transforms.json").write_text(json.dumps(meta, indent=1))
    save_rgb(root / "contact_sheet.png", np.concatenate(sheet, axis=0))


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
