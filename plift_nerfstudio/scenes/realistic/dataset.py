"""Write a realistic (Blender-rendered) room as a labelled nerfstudio dataset, in plift-synth's dataset format.

Layout of the output folder (the same contract as ``plift-synth``'s, plus the object map):
- ``images/frame_XXXXX.png``: Cycles renders along the walk; ``images/offwalk_XXXXX.png``: views the walk never took,
  listed (with poses, labels and ground truth) in ``off_walk.json``, not in transforms.json: scored apart;
- ``labels/``: machine labels (semantics, instances with per-frame ids, class probabilities and confidences) made by
  ``label_noise`` and ``labels/classes.json``;
- ``coco_panoptic/predictions.json`` and ``coco_panoptic/predictions/*.png``: the same machine labels as most
  segmenters export them (COCO panoptic: one category and a score per segment, no distributions), for
  ``plift-import-labels``;
- ``gt/semantics``, ``gt/instances`` (scene-wide ids), ``gt/depth`` (millimetres along the ray), ``gt/objects``
  (layout object index + 1, for per-object diagnostics);
- ``transforms.json`` with exact poses and intrinsics, the label section, and the train/test split;
- ``layout.json``: the objects (name, class, instance) and room size; ``contact_sheet.png``;
- ``plift_synth_files.json``: every file with its checksum (``--overwrite`` replaces only an unchanged output).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Literal, Optional

import cv2
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from plift_nerfstudio.labels.class_table import scannet21_class_table
from plift_nerfstudio.labels.dataset_labels import LABEL_CONTRACT_VERSION, LABELS_SECTION
from plift_nerfstudio.labels.frame_labels import read_label_png, write_label_png
from plift_nerfstudio.scenes.realistic.camera_path import hand_held_path, off_walk_views
from plift_nerfstudio.scenes.realistic.label_noise import NOISE_LEVELS, ViewpointDecisions, corrupt_frame, object_traits
from plift_nerfstudio.scenes.realistic.layout import ROOM_KINDS, RoomKind, make_layout
from plift_nerfstudio.scenes.dataset_writer import (
    Rendered,
    coco_category_of_class,
    contact_row,
    save_coco_panoptic_frame,
    save_coco_panoptic_json,
    save_ground_truth,
    save_machine_labels,
    save_rgb,
)
from plift_nerfstudio.scenes.dataset_folder import check_replaceable, staged_output
from plift_nerfstudio.scenes.procedural.render import Intrinsics

SECTION = "plift_realistic"
OFF_WALK_FILE = "off_walk.json"
"""The views off the walk: frame entries as in transforms.json (image, pose, labels, ground truth), kept out of it so
that they take no part in how nerfstudio orients, centres and scales the scene."""


@dataclass
class RealisticSceneOptions:
    """Options of plift-realistic-scene."""

    output: Path
    """Dataset folder to write (refused if it exists and is not empty, unless --overwrite)."""
    kind: RoomKind = "bedroom-living"
    """Room kind: bedroom-living, kitchen-dining or studio."""
    seed: int = 0
    """Seed of the furniture layout, materials, camera walk and label noise (same seed, same scene)."""
    num_frames: int = 60
    """Frames along the hand-held walk."""
    width: int = 192
    """Image width in pixels."""
    height: int = 144
    """Image height in pixels."""
    fov_deg: float = 70.0
    """Horizontal field of view (a phone's main camera is about 65-75 degrees)."""
    test_every: int = 5
    """Every k-th frame is held out as a test frame."""
    off_walk_views: int = 9
    """Test views from viewpoints the walk never took (standing in a corner, sitting, phone held high looking down),
    listed in off_walk.json and scored apart from the interpolated test views."""
    noise: Literal["mask2former", "mask2former-v2"] = "mask2former-v2"
    """Noise model of the machine labels (see plift_nerfstudio/scenes/realistic/label_noise.py)."""
    samples: int = 24
    """Cycles samples per pixel (denoised)."""
    reuse_renders: Optional[Path] = None
    """Take images and ground truth from an earlier output of the same kind, seed and size instead of rendering
    (no Blender needed); only the machine labels are made anew."""
    overwrite: bool = False
    """Replace an existing output of this generator that nobody changed since (checked against its manifest)."""

    def validate(self) -> None:
        if self.kind not in ROOM_KINDS:
            raise ValueError(f"unknown --kind {self.kind!r}; choose one of {list(ROOM_KINDS)}")
        if self.seed < 0:
            raise ValueError(f"--seed must be a non-negative integer, got {self.seed}")
        if self.num_frames < self.test_every or self.test_every < 2:
            raise ValueError(f"--num-frames {self.num_frames} with --test-every {self.test_every} leaves no test frame")
        if not (16 <= self.width <= 4096 and 16 <= self.height <= 4096):
            raise ValueError(f"--width and --height must lie in 16..4096, got {self.width}x{self.height}")
        if self.noise not in NOISE_LEVELS:
            raise ValueError(f"unknown --noise {self.noise!r}; choose one of {sorted(NOISE_LEVELS)}")


def _frame_name(i: int) -> str:
    return f"frame_{i + 1:05d}"


def _off_walk_name(k: int) -> str:
    return f"offwalk_{k + 1:05d}"


def _check_reusable(opts: RealisticSceneOptions) -> Path:
    src = Path(opts.reuse_renders)  # type: ignore[arg-type]
    meta_path = src / "transforms.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"--reuse-renders {src}: no transforms.json there (not a plift-realistic-scene output)")
    info = json.loads(meta_path.read_text()).get(SECTION, {})
    want = {"kind": opts.kind, "seed": opts.seed, "num_frames": opts.num_frames, "width": opts.width,
            "height": opts.height, "fov_deg": opts.fov_deg}
    have = {k: info.get(k) for k in want}
    if have != want:
        raise ValueError(f"--reuse-renders {meta_path}: made with {have}, but this run asks for {want}")
    return src


def _reused_frame(src: Path, name: str):
    """The render and ground truth of frame ``name`` of an earlier output, or None when it has no such frame."""
    if not (src / "images" / f"{name}.png").is_file():
        return None
    bgr = cv2.imread(str(src / "images" / f"{name}.png"), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"--reuse-renders: cannot read {src / 'images' / (name + '.png')}")
    sem = read_label_png(src / "gt" / "semantics" / f"{name}.png")
    inst = read_label_png(src / "gt" / "instances" / f"{name}.png")
    depth = read_label_png(src / "gt" / "depth" / f"{name}.png").astype(np.float32) / 1000.0
    objects = read_label_png(src / "gt" / "objects" / f"{name}.png")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), sem, inst, depth, objects


def write_realistic_scene(opts: RealisticSceneOptions) -> Path:
    """Render (or reuse), label and write the room; returns the dataset folder."""
    opts.validate()
    if opts.reuse_renders is not None and Path(opts.reuse_renders).resolve() == Path(opts.output).resolve():
        raise ValueError("--reuse-renders must name another folder than --output (the output is replaced as a whole)")
    check_replaceable(opts.output, opts.overwrite)
    layout = make_layout(opts.kind, opts.seed)
    poses = hand_held_path(layout, opts.num_frames, np.random.default_rng([opts.seed, 31]))
    off_walk = off_walk_views(layout, poses, opts.off_walk_views, np.random.default_rng([opts.seed, 37]))
    views = [(_frame_name(i), c2w) for i, c2w in enumerate(poses)] + \
            [(_off_walk_name(k), c2w) for k, c2w in enumerate(off_walk)]
    intr = Intrinsics.from_fov(opts.width, opts.height, opts.fov_deg)
    src = _check_reusable(opts) if opts.reuse_renders is not None else None
    room = None

    def frames():
        """Each view's render and ground truth: from ``--reuse-renders`` where it has the view, else from Blender."""
        nonlocal room
        for name, c2w in views:
            reused = _reused_frame(src, name) if src is not None else None
            if reused is not None:
                yield reused
                continue
            if room is None:
                from plift_nerfstudio.scenes.realistic.blender_scene import BlenderRoom, RenderSettings

                room = BlenderRoom(layout, intr, RenderSettings(samples=opts.samples))
            gt = room.ground_truth(c2w)
            yield room.render_rgb(c2w), gt.semantics, gt.instances, gt.depth, gt.objects

    source = frames()
    noise = NOISE_LEVELS[opts.noise]
    traits = object_traits(layout, noise, opts.seed)
    viewpoint = ViewpointDecisions(opts.seed, noise)
    names = [o.name for o in layout.objects]
    table = scannet21_class_table()
    coco_categories = coco_category_of_class()
    coco_annotations: List[dict] = []
    with staged_output(opts.output, opts.overwrite) as root:
        frames: List[dict] = []
        sheet = []
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns) as progress:
            verb = "Rendering" if opts.reuse_renders is None else "Relabelling"
            task = progress.add_task(f"{verb} {opts.kind} (seed {opts.seed})", total=len(views))
            for i, ((name, c2w), (rgb, sem, inst, depth, objects)) in enumerate(zip(views, source)):
                labels = corrupt_frame(sem, inst, objects, traits, names, noise, np.random.default_rng([opts.seed, i, 7]),
                                       c2w=c2w, viewpoint=viewpoint)
                save_rgb(root / "images" / f"{name}.png", rgb)
                entry = {"file_path": f"images/{name}.png", "transform_matrix": c2w.tolist()}
                entry.update(save_machine_labels(root, "labels/", name, labels))
                coco_annotations.append(save_coco_panoptic_frame(root, name, labels, list(table.names), coco_categories))
                entry.update(save_ground_truth(root, "gt/", name, Rendered(rgb=rgb, depth=depth, semantics=sem, instances=inst)))
                write_label_png(root / "gt" / "objects" / f"{name}.png", objects.astype(np.uint16))
                entry["gt_objects_path"] = f"gt/objects/{name}.png"
                frames.append(entry)
                if i < opts.num_frames and i % max(1, opts.num_frames // 4) == 0 and len(sheet) < 4:
                    sheet.append(contact_row(Rendered(rgb=rgb, depth=depth, semantics=sem, instances=inst), labels, table.colors))
                progress.advance(task)
        frames, off_walk_frames = frames[: opts.num_frames], frames[opts.num_frames:]
        test = [f["file_path"] for i, f in enumerate(frames) if i % opts.test_every == opts.test_every - 1]
        train = [f["file_path"] for f in frames if f["file_path"] not in set(test)]
        if off_walk_frames:  # apart from transforms.json, whose poses nerfstudio orients and scales the scene by
            (root / OFF_WALK_FILE).write_text(json.dumps({"frames": off_walk_frames}, indent=1))
        table.save(root / "labels" / "classes.json")
        save_coco_panoptic_json(root, coco_annotations)
        info = {"kind": opts.kind, "seed": opts.seed, "num_frames": opts.num_frames, "width": opts.width,
                "height": opts.height, "fov_deg": opts.fov_deg, "noise": opts.noise, "test_every": opts.test_every,
                "samples": opts.samples, "noise_parameters": asdict(noise),
                **({"off_walk_views": opts.off_walk_views} if opts.off_walk_views else {})}
        meta = {
            "camera_model": "OPENCV",
            "fl_x": intr.fx, "fl_y": intr.fy, "cx": intr.cx, "cy": intr.cy, "w": intr.width, "h": intr.height,
            LABELS_SECTION: {"version": LABEL_CONTRACT_VERSION, "class_table": "labels/classes.json"},
            SECTION: info,
            "frames": frames,
            "train_filenames": train,
            "val_filenames": test,
            "test_filenames": test,
        }
        (root / "transforms.json").write_text(json.dumps(meta, indent=1))
        objects_meta = [{"index": k + 1, "name": o.name, "class": o.class_name, "instance": o.instance}
                        for k, o in enumerate(layout.objects)]
        (root / "layout.json").write_text(json.dumps({"kind": layout.kind, "seed": layout.seed, "size": layout.size,
                                                      "objects": objects_meta}, indent=1))
        save_rgb(root / "contact_sheet.png", np.concatenate(sheet, axis=0))
    return opts.output


def score_machine_labels(root: Path, frames: Optional[List[str]] = None) -> dict:
    """The machine labels of a written dataset against its ground truth (every protocol; conventional PQ, mIoU),
    over the walk's frames (training and test) or the listed ``file_path`` values."""
    import torch

    from plift_nerfstudio.evaluation.metrics import protocol_scores

    meta = json.loads((Path(root) / "transforms.json").read_text())
    if frames is None:  # the walk's frames (the views off the walk are scored apart)
        frames = [*meta.get("train_filenames", []), *meta.get("test_filenames", [])] or [f["file_path"] for f in meta["frames"]]
    chosen = [f for f in meta["frames"] if f["file_path"] in set(frames)]

    def stack(key: str):
        return torch.from_numpy(np.stack([read_label_png(Path(root) / f[key]).astype(np.int64) for f in chosen]))

    scores = protocol_scores(stack("semantics_path"), stack("instances_path"), stack("gt_semantics_path"),
                             stack("gt_instances_path"), len(scannet21_class_table().names), scene_level=False)
    return {p: {k: v for k, v in s.items() if v is not None} for p, s in scores.items()}
