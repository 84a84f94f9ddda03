"""Write a realistic (Blender-rendered) room as a labelled nerfstudio dataset, in plift-synth's dataset format.

Layout of the output folder (the same contract as ``plift-synth``'s, plus the object map):
- ``images/frame_XXXXX.png``: Cycles renders;
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
from plift_nerfstudio.scenes.realistic.camera_path import hand_held_path
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


def _reused_frames(opts: RealisticSceneOptions, n: int):
    src = Path(opts.reuse_renders)
    meta_path = src / "transforms.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"--reuse-renders {src}: no transforms.json there (not a plift-realistic-scene output)")
    meta = json.loads(meta_path.read_text())
    info = meta.get(SECTION, {})
    want = {"kind": opts.kind, "seed": opts.seed, "num_frames": opts.num_frames, "width": opts.width,
            "height": opts.height, "fov_deg": opts.fov_deg}
    have = {k: info.get(k) for k in want}
    if have != want:
        raise ValueError(f"--reuse-renders {meta_path}: made with {have}, but this run asks for {want}")
    for i in range(n):
        name = _frame_name(i)
        bgr = cv2.imread(str(src / "images" / f"{name}.png"), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"--reuse-renders: cannot read {src / 'images' / (name + '.png')}")
        sem = read_label_png(src / "gt" / "semantics" / f"{name}.png")
        inst = read_label_png(src / "gt" / "instances" / f"{name}.png")
        depth = read_label_png(src / "gt" / "depth" / f"{name}.png").astype(np.float32) / 1000.0
        objects = read_label_png(src / "gt" / "objects" / f"{name}.png")
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), sem, inst, depth, objects


def write_realistic_scene(opts: RealisticSceneOptions) -> Path:
    """Render (or reuse), label and write the room; returns the dataset folder."""
    opts.validate()
    if opts.reuse_renders is not None and Path(opts.reuse_renders).resolve() == Path(opts.output).resolve():
        raise ValueError("--reuse-renders must name another folder than --output (the output is replaced as a whole)")
    check_replaceable(opts.output, opts.overwrite)
    layout = make_layout(opts.kind, opts.seed)
    poses = hand_held_path(layout, opts.num_frames, np.random.default_rng([opts.seed, 31]))
    intr = Intrinsics.from_fov(opts.width, opts.height, opts.fov_deg)
    if opts.reuse_renders is None:
        from plift_nerfstudio.scenes.realistic.blender_scene import BlenderRoom, RenderSettings

        room = BlenderRoom(layout, intr, RenderSettings(samples=opts.samples))

        def frames():
            for c2w in poses:
                gt = room.ground_truth(c2w)
                yield room.render_rgb(c2w), gt.semantics, gt.instances, gt.depth, gt.objects

        source = frames()
    else:
        source = _reused_frames(opts, opts.num_frames)
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
            task = progress.add_task(f"{verb} {opts.kind} (seed {opts.seed})", total=opts.num_frames)
            for i, (rgb, sem, inst, depth, objects) in enumerate(source):
                name = _frame_name(i)
                labels = corrupt_frame(sem, inst, objects, traits, names, noise, np.random.default_rng([opts.seed, i, 7]),
                                       c2w=poses[i], viewpoint=viewpoint)
                save_rgb(root / "images" / f"{name}.png", rgb)
                entry = {"file_path": f"images/{name}.png", "transform_matrix": poses[i].tolist()}
                entry.update(save_machine_labels(root, "labels/", name, labels))
                coco_annotations.append(save_coco_panoptic_frame(root, name, labels, list(table.names), coco_categories))
                entry.update(save_ground_truth(root, "gt/", name, Rendered(rgb=rgb, depth=depth, semantics=sem, instances=inst)))
                write_label_png(root / "gt" / "objects" / f"{name}.png", objects.astype(np.uint16))
                entry["gt_objects_path"] = f"gt/objects/{name}.png"
                frames.append(entry)
                if i % max(1, opts.num_frames // 4) == 0 and len(sheet) < 4:
                    sheet.append(contact_row(Rendered(rgb=rgb, depth=depth, semantics=sem, instances=inst), labels, table.colors))
                progress.advance(task)
        test = [f["file_path"] for i, f in enumerate(frames) if i % opts.test_every == opts.test_every - 1]
        train = [f["file_path"] for f in frames if f["file_path"] not in set(test)]
        table.save(root / "labels" / "classes.json")
        save_coco_panoptic_json(root, coco_annotations)
        info = {"kind": opts.kind, "seed": opts.seed, "num_frames": opts.num_frames, "width": opts.width,
                "height": opts.height, "fov_deg": opts.fov_deg, "noise": opts.noise, "test_every": opts.test_every,
                "samples": opts.samples, "noise_parameters": asdict(noise)}
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
    over all frames or the listed ``file_path`` values."""
    import torch

    from plift_nerfstudio.evaluation.metrics import protocol_scores

    meta = json.loads((Path(root) / "transforms.json").read_text())
    chosen = [f for f in meta["frames"] if frames is None or f["file_path"] in set(frames)]

    def stack(key: str):
        return torch.from_numpy(np.stack([read_label_png(Path(root) / f[key]).astype(np.int64) for f in chosen]))

    scores = protocol_scores(stack("semantics_path"), stack("instances_path"), stack("gt_semantics_path"),
                             stack("gt_instances_path"), len(scannet21_class_table().names), scene_level=False)
    return {p: {k: v for k, v in s.items() if v is not None} for p, s in scores.items()}
