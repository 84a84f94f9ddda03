"""Export benchmark: export the demo scene's trained run (plift-export pointcloud and mesh) and score the exported
objects against the room's true geometry (plift-synth knows every box).

Reported per true thing object and on average, for our point cloud, our meshes and a naive baseline (the 2D machine
labels back-projected with our rendered depth and merged by majority: plift_nerfstudio/bench/label_baseline.py):
- precision: share of an exported instance's points (mesh vertices) within 5 cm of the true object it lies on;
- recall: share of true thing objects (seen by the training views) with an exported instance of the same class
  whose axis-aligned box has IoU >= 0.5 with the truth's, and with the box of the part the training views see
  (true depth back-projected); spurious instances and extra fragments. The boxes are the manifest's (the outer 0.5%
  of an instance's points left out at each end of each axis, for every method alike); recall with the boxes of all
  points is reported too;
- stuff: mean distance of stuff points (walls, floor, furniture classed as stuff) to the true surfaces of their class;
- export time (loading the run included).
Writes results.md, results.json and export_instances.png (the exported cloud, colour and instances, with boxes).

  python scripts/benchmark_export.py                      # demo scene, panoptic-lifting-cpu (with sparse depth), 3000 steps
  python scripts/benchmark_export.py --no-sparse-depth    # the same without COLMAP's points
  python scripts/benchmark_export.py --preset lite        # panoptic-lifting-lite + the sparse depth loss, 3000 steps
  python scripts/benchmark_export.py --quick              # CI: small scene, short training (numbers meaningless)
  python scripts/benchmark_export.py --load-config outputs/.../config.yml   # a trained run of a plift-synth scene
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np
from plyfile import PlyData
from rich.console import Console
from rich.table import Table

from plift_nerfstudio.cli.export import MeshOptions, PointCloudOptions
from plift_nerfstudio.cli.export import main as plift_export
from plift_nerfstudio.bench.export_accuracy import stuff_scores, thing_scores
from plift_nerfstudio.export.boxes import box_corners, robust_extent
from plift_nerfstudio.export.groups import GroupKey
from plift_nerfstudio.bench.label_baseline import merge_back_projected
from plift_nerfstudio.export.point_cloud_export import PointCloudSettings, cluster_radius, group_points, labelled_cloud
from plift_nerfstudio.labels.frame_labels import read_label_png
from plift_nerfstudio.panoptic import instance_palette
from plift_nerfstudio.core.runs import load_trained_pipeline
from plift_nerfstudio.bench.harness import DemoPreset, DemoRunOptions, train_demo_run
from plift_nerfstudio.scenes.procedural.geometry import TrueObject, distance_to_any_surface, distance_to_boxes, distance_to_class, true_objects
from plift_nerfstudio.scenes.procedural.scene import Room, make_room
from plift_nerfstudio.core.report import fmt
from plift_nerfstudio.evaluation.eval_views import dataset_frames

CONSOLE = Console()
TOLERANCE = 0.05  # metres
TARGETS = {"precision": 0.9, "recall": 0.8, "stuff_cm": 5.0, "seconds": 120.0}


@dataclass
class ExportBenchmarkOptions(DemoRunOptions):
    """Options of the export benchmark."""

    output_dir: Path = Path("benchmarks/export")
    """Where the scene, the run, the exports and the results go."""
    picture: Optional[Path] = None
    """Also copy the picture there (e.g. docs/export_instances.png)."""
    sparse_depth: bool = True
    """Train with COLMAP's points of the training images (plift-sparse-depth) and the sparse depth loss at
    panoptic-lifting-cpu's settings: an export is only as good as the field's surfaces (needs colmap on PATH)."""
    seed: int = 42
    """Training seed."""
    preset: DemoPreset = "cpu"
    """Preset trained: panoptic-lifting-cpu (the CPU preset for real rooms; its 2500-step schedule is rescaled to
    --steps), or panoptic-lifting-lite (smaller and twice as fast)."""


@dataclass
class Exported:
    """Exported groups in the dataset frame: positions per group key."""

    groups: Dict[GroupKey, np.ndarray]
    seconds: float


def read_groups(folder: Path, manifest: dict) -> Dict[GroupKey, np.ndarray]:
    """Positions of each exported group, read back from its file (PLY: points or mesh vertices)."""
    out = {}
    for entry in manifest["instances"] + manifest["stuff"]:
        ply = PlyData.read(str(folder / entry["files"]["ply"]))
        vertex = ply["vertex"]
        out[GroupKey(entry["class_id"], entry.get("instance_id", 0))] = np.stack([vertex[a] for a in "xyz"], 1).astype(np.float64)
    return out


def seen_objects(data: Path, meta: dict, objects: List[TrueObject], min_pixels: int) -> List[TrueObject]:
    """The true objects the training views show on at least ``min_pixels`` pixels."""
    train = set(meta["train_filenames"])
    counts: Dict[int, int] = {}
    for frame in meta["frames"]:
        if frame["file_path"] in train:
            ids, n = np.unique(read_label_png(data / frame["gt_instances_path"]), return_counts=True)
            for i, c in zip(ids.tolist(), n.tolist()):
                counts[i] = counts.get(i, 0) + c
    return [o for o in objects if counts.get(o.instance_id, 0) >= min_pixels]


def seen_boxes(data: Path, frames: List[dict], dataset, frame, objects: List[TrueObject], stride: int = 2) -> np.ndarray:
    """[T, 2, 3] box of what the training views see of each true object: the true depth of its pixels (ground-truth
    instance maps) back-projected, dataset frame. An object against a wall or taller than the cameras shows only part
    of its box; recall against these boxes tells the export's errors from what no view could show. ``frames``: the
    transforms.json frames of the dataset's images, in its order."""
    points: Dict[int, List[np.ndarray]] = {o.instance_id: [] for o in objects}
    for camera in range(len(dataset)):
        entry = frames[camera]
        instances = read_label_png(data / entry["gt_instances_path"])[::stride, ::stride]
        depth = cv2.imread(str(data / entry["gt_depth_path"]), cv2.IMREAD_UNCHANGED)[::stride, ::stride] / 1000.0
        bundle = dataset.cameras[camera : camera + 1].generate_rays(camera_indices=0)
        origins = bundle.origins.numpy()[::stride, ::stride]
        directions = bundle.directions.numpy()[::stride, ::stride]
        model_points = origins + directions * (depth * frame.scale)[..., None]
        for instance_id in points:
            mine = instances == instance_id
            if mine.any():
                points[instance_id].append(frame.points_to_dataset(model_points[mine]))
    boxes = []
    for o in objects:
        seen = np.concatenate(points[o.instance_id]) if points[o.instance_id] else np.stack(o.aabb)  # too few pixels
        boxes.append([seen.min(0), seen.max(0)])
    return np.array(boxes)


def score(groups: Dict[GroupKey, np.ndarray], objects: List[TrueObject], room: Room,
          seen: Optional[np.ndarray] = None) -> dict:
    things = [(k, p) for k, p in groups.items() if k.is_thing]
    stuff = [(k, p) for k, p in groups.items() if not k.is_thing]
    near = np.array([[float((distance_to_boxes(p, o.lo, o.hi) <= TOLERANCE).mean()) for o in objects] for _, p in things]
                    ).reshape(len(things), len(objects))
    classes, sizes = np.array([k.class_id for k, _ in things]), np.array([len(p) for _, p in things])
    boxes = np.array([robust_extent(p) for _, p in things]).reshape(-1, 2, 3)  # the manifest's boxes
    true_classes, true_boxes = np.array([o.class_id for o in objects]), np.array([list(o.aabb) for o in objects]).reshape(-1, 2, 3)
    result = thing_scores(classes, boxes, sizes, true_classes, true_boxes, near)
    for entry, (key, _) in zip(result["exported"], things):
        entry["key"] = [key.class_id, key.instance_id]
    all_point_boxes = np.array([robust_extent(p, trim=0.0) for _, p in things]).reshape(-1, 2, 3)
    result["recall_all_point_boxes"] = thing_scores(classes, all_point_boxes, sizes, true_classes, true_boxes, near)["recall"]
    if seen is not None:
        against_seen = thing_scores(classes, boxes, sizes, true_classes, seen, near)
        result["recall_seen"] = against_seen["recall"]
        result["objects_seen"] = against_seen["objects"]
    if stuff:
        points = np.concatenate([p for _, p in stuff])
        classes = np.concatenate([np.full(len(p), k.class_id) for k, p in stuff])
        same = np.concatenate([distance_to_class(p, room, k.class_id) for k, p in stuff])
        result["stuff"] = stuff_scores(same, distance_to_any_surface(points, room), classes, TOLERANCE)
    else:
        result["stuff"] = stuff_scores(np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64), TOLERANCE)
    result["instances"] = len(things)
    return result


def baseline_groups(model, cameras, data: Path, frames: List[dict]) -> Dict[GroupKey, np.ndarray]:
    """The 2D labels back-projected with our rendered depth, merged by majority, grouped as our export groups."""
    settings = PointCloudSettings()
    cloud = labelled_cloud(model, cameras, settings)
    points = cloud.points
    class_2d = np.zeros(len(points), dtype=np.int64)
    segment_2d = np.zeros(len(points), dtype=np.int64)
    is_thing = model.is_thing_lut.cpu().numpy()
    for camera in np.unique(points.camera_index):
        frame = frames[camera]
        semantics = read_label_png(data / frame["semantics_path"]).astype(np.int64)
        instances = read_label_png(data / frame["instances_path"]).astype(np.int64)
        mine = points.camera_index == camera
        rows, cols = points.pixel[mine, 0], points.pixel[mine, 1]
        class_2d[mine] = semantics[rows, cols]
        ids = instances[rows, cols]
        segment_2d[mine] = np.where(is_thing[class_2d[mine]] & (ids > 0), (camera + 1) * 100000 + ids, 0)
    voxel_model = float((model.field.aabb[1] - model.field.aabb[0]).max()) / model.field.grid_resolution
    scale = float(model.dataset_frame.scale)
    class_id, instance_id = merge_back_projected(points.positions, class_2d, segment_2d, voxel_model / scale, is_thing)
    groups, _, _ = group_points(points.positions, class_id, instance_id, cluster_radius(model, settings) / scale, settings)
    return {k: points.positions[v] for k, v in groups.items()}


def splat_picture(groups: Dict[GroupKey, np.ndarray], colours: Dict[GroupKey, np.ndarray], room: Room,
                  manifest: dict, path: Path, size=(640, 480)) -> None:
    """The exported cloud from above a corner of the room: left in its colours, right by instance (stuff grey),
    with the axis-aligned boxes of the manifest."""
    eye = np.array([room.size[0] * 1.15, -0.35 * room.size[1], room.size[2] * 2.2])
    target = np.array([room.size[0] * 0.45, room.size[1] * 0.55, 0.3])
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    w, h = size
    focal = 0.9 * w

    def project(p: np.ndarray):
        rel = p - eye
        z = rel @ forward
        return np.stack([w / 2 + focal * (rel @ right) / z, h / 2 - focal * (rel @ up) / z], 1), z

    palette = instance_palette(64).numpy()
    things = sorted(k for k in groups if k.is_thing)
    colour_of = {k: palette[1 + i % (len(palette) - 1)] for i, k in enumerate(things)}  # one colour per exported instance
    panels = []
    for by_instance in (False, True):
        image = np.full((h, w, 3), 1.0)
        depth = np.full((h, w), np.inf)
        for key, pts in groups.items():
            if by_instance:
                colour = np.tile(colour_of[key] if key.is_thing else [0.62, 0.62, 0.62], (len(pts), 1))
            else:
                colour = colours[key]
            uv, z = project(pts)
            for du in (0, 1):
                for dv in (0, 1):
                    u, v = uv[:, 0].astype(int) + du, uv[:, 1].astype(int) + dv
                    ok = (z > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
                    order = np.argsort(-z[ok])
                    uu, vv, zz, cc = u[ok][order], v[ok][order], z[ok][order], colour[ok][order]
                    nearer = zz < depth[vv, uu]
                    image[vv[nearer], uu[nearer]] = cc[nearer]
                    depth[vv[nearer], uu[nearer]] = np.minimum(depth[vv[nearer], uu[nearer]], zz[nearer])
        picture = (np.clip(image, 0, 1)[..., ::-1] * 255).astype(np.uint8).copy()
        if by_instance:
            edges = [(a, b) for a in range(8) for b in range(a + 1, 8) if (a ^ b) in (1, 2, 4)]  # box_corners' order
            for entry in manifest["instances"]:
                key = GroupKey(entry["class_id"], entry["instance_id"])
                uv, z = project(box_corners(np.array(entry["aabb"]["min"]), np.array(entry["aabb"]["max"])))
                if np.any(z <= 0) or key not in colour_of:
                    continue
                colour = tuple(int(255 * c) for c in colour_of[key][::-1])
                for a, b in edges:
                    cv2.line(picture, tuple(np.round(uv[a]).astype(int)), tuple(np.round(uv[b]).astype(int)), colour, 1,
                             cv2.LINE_AA)
                cv2.putText(picture, f"{entry['class']} {entry['instance_id']}", tuple(np.round(uv.min(0)).astype(int)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(picture)
    cv2.imwrite(str(path), np.concatenate(panels, axis=1))


def rows_of(result: dict) -> List[List[str]]:
    rows = []
    for name, r in result["methods"].items():
        stuff = r["stuff"]
        rows.append([name, str(r["instances"]), fmt(r["precision"]), fmt(r["precision_of_points"]), fmt(r["recall"]),
                     fmt(r.get("recall_seen")), fmt(r.get("recall_all_point_boxes")),
                     str(r["spurious"]), str(r["fragments"]),
                     fmt(None if stuff["mean_distance"] is None else 100 * stuff["mean_distance"], 1),
                     fmt(stuff["within"]), fmt(r.get("seconds"), 0)])
    return rows


COLUMNS = ("export", "instances", "precision", "precision (points)", "recall@0.5", "recall@0.5 (seen part)",
           "recall@0.5 (boxes of all points)",
           "spurious", "fragments", "stuff distance (cm)", "stuff within 5 cm", "seconds")


def object_rows(result: dict, objects: List[TrueObject], names) -> List[List[str]]:
    rows = []
    for t, obj in enumerate(objects):
        row = [f"{names[obj.class_id - 1]} {obj.instance_id}"]
        for r in result["methods"].values():
            o = r["objects"][t]
            if o["exported_as"] < 0:
                row.append("-")
                continue
            e = r["exported"][o["exported_as"]]
            o_seen = r["objects_seen"][t]
            row.append(f"IoU {o['best_iou']:.2f} (seen part {o_seen['best_iou']:.2f}), precision {e['precision']:.2f}"
                       + (" ✓" if o["recalled"] else "")
                       + (f", +{o['fragments']} fragments" if o["fragments"] else ""))
        rows.append(row)
    return rows


def main(opts: ExportBenchmarkOptions) -> dict:
    out = opts.output_dir
    out.mkdir(parents=True, exist_ok=True)
    config_path = opts.load_config or train_demo_run(out, opts.quick, opts.steps, "export", sparse_depth=opts.sparse_depth,
                                                              seed=opts.seed, preset=opts.preset)
    config, pipeline, _, step = load_trained_pipeline(config_path)
    model = pipeline.model
    data = Path(config.pipeline.datamanager.data)
    meta = json.loads((data / "transforms.json").read_text())
    synth = meta.get("plift_synth")
    if synth is None:
        raise ValueError(f"{data}/transforms.json: not a plift-synth dataset; the benchmark needs the true geometry")
    room = make_room(synth["seed"], synth["scene"])
    objects = seen_objects(data, meta, true_objects(room), min_pixels=20)
    names = model.class_table.names

    dataset = pipeline.datamanager.train_dataset
    frames = dataset_frames(pipeline, dataset.image_filenames)
    seen = seen_boxes(data, frames, dataset, model.dataset_frame, objects)
    methods = {}
    start = time.perf_counter()
    cloud_manifest = plift_export(PointCloudOptions(load_config=config_path, output_dir=out / "pointcloud", overwrite=True))
    cloud_seconds = time.perf_counter() - start
    cloud_groups = read_groups(out / "pointcloud", cloud_manifest)
    methods["ours: point cloud"] = {**score(cloud_groups, objects, room, seen), "seconds": cloud_seconds}
    start = time.perf_counter()
    mesh_manifest = plift_export(MeshOptions(load_config=config_path, output_dir=out / "mesh", overwrite=True))
    mesh_seconds = time.perf_counter() - start
    methods["ours: meshes (vertices)"] = {**score(read_groups(out / "mesh", mesh_manifest), objects, room, seen),
                                          "seconds": mesh_seconds}
    methods["2D labels back-projected (same grouping)"] = score(baseline_groups(model, dataset.cameras, data, frames),
                                                               objects, room, seen)
    result = {"run": str(config_path), "method": config.method_name, "step": step, "seed": config.machine.seed,
              "sparse_depth_loss_mult": float(config.pipeline.model.sparse_depth_loss_mult),  # type: ignore[attr-defined]
              "true_objects": [[o.instance_id, names[o.class_id - 1]] for o in objects],
              "methods": methods, "targets": TARGETS}
    (out / "results.json").write_text(json.dumps(result, indent=1))

    colours = {}
    for entry in cloud_manifest["instances"] + cloud_manifest["stuff"]:
        vertex = PlyData.read(str(out / "pointcloud" / entry["files"]["ply"]))["vertex"]
        colours[GroupKey(entry["class_id"], entry.get("instance_id", 0))] = np.stack([vertex[c] for c in ("red", "green", "blue")], 1) / 255.0
    picture = out / "export_instances.png"
    splat_picture(cloud_groups, colours, room, cloud_manifest, picture)
    if opts.picture is not None:
        opts.picture.parent.mkdir(parents=True, exist_ok=True)
        opts.picture.write_bytes(picture.read_bytes())

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows_of(result)]
    lines += ["", "| true object | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 1)]
    lines += ["| " + " | ".join(r) + " |" for r in object_rows(result, objects, names)]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    table = Table(title=f"Export against the true objects ({len(objects)} things; {config.method_name}, step {step})")
    for c in COLUMNS:
        table.add_column(c)
    for r in rows_of(result):
        table.add_row(*r)
    CONSOLE.print(table)
    table = Table(title="Per true object (best same-class export)")
    for c in ("true object", *methods):
        table.add_column(c)
    for r in object_rows(result, objects, names):
        table.add_row(*r)
    CONSOLE.print(table)
    CONSOLE.print(f"targets: precision >= {TARGETS['precision']}, recall >= {TARGETS['recall']}, stuff < "
                  f"{TARGETS['stuff_cm']} cm, export < {TARGETS['seconds']:.0f} s; results in {out}")
    return result
