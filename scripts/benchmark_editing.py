#!/usr/bin/env python
"""Editing benchmark: delete, duplicate and move thing objects of the demo scene and score the edited renders against
the true edited scene (plift-synth renders the same edit list applied to its own boxes).

Steps: train the CPU preset on the demo scene (or --load-config a run); match each true object to the instance id our
renders give it (majority over the test views); pick one object to delete, one to duplicate and one to move, with
poses on free floor that the test cameras see; write the two edit lists (our ids / the room's ids, the same
transforms and pivots); plift-edit writes the edited run; render the test views unedited and edited.

Reported, next to the unedited render scored against the unedited truth:
- PSNR, mIoU and PQ inside the edited regions (pixels where the truth or our render changed) and outside them;
- per edit: pixels the deleted id still covers; what the revealed surfaces look like (PSNR, class accuracy);
  where the copy lands (share of its pixels on the true copy, IoU with the true copy's pixels);
- the cost of an edited render relative to an unedited one.
Writes results.md, results.json, before_after.png and (unless --no-video) an ns-render video of the edited run.

  python scripts/benchmark_editing.py                    # demo scene, panoptic-lifting-lite, 3000 steps
  python scripts/benchmark_editing.py --quick            # CI: small scene, short training (numbers meaningless)
  python scripts/benchmark_editing.py --load-config outputs/.../config.yml   # a trained run of a plift-synth scene
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
import torch
import tyro
from rich.console import Console
from rich.table import Table

from plift_nerfstudio.cli.edit import EditOptions
from plift_nerfstudio.experiment import DemoRunOptions
from plift_nerfstudio.cli.edit import main as plift_edit
from plift_nerfstudio.editing.edit_list import load_edit_list
from plift_nerfstudio.export.boxes import box_corners
from plift_nerfstudio.labels.frame_labels import read_label_png
from plift_nerfstudio.metrics import mean_iou, protocol_scores
from plift_nerfstudio.runs import load_trained_pipeline
from plift_nerfstudio.synth.dataset import SynthOptions, write_dataset
from plift_nerfstudio.synth.edits import instance_boxes
from plift_nerfstudio.synth.render import Intrinsics, camera_path
from plift_nerfstudio.synth.scene import Room, make_room

CONSOLE = Console()
COST_TARGET = 1.5
OUTSIDE_PSNR_TARGET = 0.1  # dB


@dataclass
class EditingOptions(DemoRunOptions):
    """Options of the editing benchmark."""

    output_dir: Path = Path("benchmarks/editing")
    """Where the scene, the run, the edited run, the truth and the results go."""
    video: bool = True
    """Render an ns-render video of the edited run (interpolating the test cameras)."""


# ----------------------------------------------------------------------------------------------- scene and truth
def synth_options_of(data: Path) -> SynthOptions:
    meta = json.loads((data / "transforms.json").read_text())
    synth = meta.get("plift_synth")
    if synth is None:
        raise ValueError(f"{data}/transforms.json: not a plift-synth dataset (no 'plift_synth' section); the "
                         "benchmark needs the room's true geometry")
    return SynthOptions(output=data, seed=synth["seed"], num_frames=len(meta["frames"]), width=int(meta["w"]),
                        height=int(meta["h"]), scene=synth["scene"], test_every=synth["test_every"])


def read_truth(root: Path, frames: List[dict]) -> Dict[str, np.ndarray]:
    return {
        "rgb": np.stack([cv2.imread(str(root / f["file_path"]))[..., ::-1] / 255.0 for f in frames]),
        "semantics": np.stack([read_label_png(root / f["gt_semantics_path"]).astype(np.int64) for f in frames]),
        "instances": np.stack([read_label_png(root / f["gt_instances_path"]).astype(np.int64) for f in frames]),
        "depth": np.stack([cv2.imread(str(root / f["gt_depth_path"]), cv2.IMREAD_UNCHANGED) / 1000.0 for f in frames]),
    }


def footprint_after(boxes, matrix: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    corners = np.concatenate([box_corners(b.lo, b.hi) for b in boxes])
    moved = corners @ matrix[:3, :3].T + matrix[:3, 3]
    return moved.min(0), moved.max(0)


def rigid(translation, rotation_deg: float, pivot: np.ndarray) -> np.ndarray:
    angle = np.radians(rotation_deg)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = pivot + np.asarray(translation) - rot @ pivot
    return out


def free_placement(room: Room, object_id: int, others_removed: List[int], cameras: np.ndarray, test_poses: np.ndarray,
                   intr: Intrinsics, rotation_deg: float) -> Optional[List[float]]:
    """A translation (x, y, 0) putting the object, turned by ``rotation_deg``, on free floor: off every other box, inside
    the room, 0.5 m from every camera position, seen whole by as many test cameras as possible."""
    boxes = instance_boxes(room)[object_id]
    lo = np.min([b.lo for b in boxes], axis=0)
    hi = np.max([b.hi for b in boxes], axis=0)
    pivot = (lo + hi) / 2
    size = hi - lo
    blockers = [b for b in room.boxes if b.instance not in set(others_removed) | {object_id}]
    best, best_seen = None, 0
    steps = np.linspace(-2.5, 2.5, 21)
    for dx in steps:
        for dy in steps:
            translation = [float(dx), float(dy), 0.0]
            new_lo, new_hi = footprint_after(boxes, rigid(translation, rotation_deg, pivot))
            if np.any(new_lo[:2] < 0.05) or np.any(new_hi[:2] > room.size[:2] - 0.05):
                continue
            if any(np.all(new_lo[:2] < b.hi[:2] + 0.08) and np.all(new_hi[:2] > b.lo[:2] - 0.08) and b.lo[2] < new_hi[2]
                   for b in blockers):
                continue
            near = np.clip(cameras[:, :2], new_lo[:2], new_hi[:2])
            if np.min(np.linalg.norm(cameras[:, :2] - near, axis=-1)) < 0.5 + 0.5 * float(size[:2].max() > 1.5):
                continue
            seen = sum(corners_in_view(box_corners(new_lo, new_hi), c2w, intr) for c2w in test_poses)
            if seen > best_seen:
                best, best_seen = translation, seen
    return best


def corners_in_view(corners: np.ndarray, c2w: np.ndarray, intr: Intrinsics) -> bool:
    w2c = np.linalg.inv(c2w)
    local = corners @ w2c[:3, :3].T + w2c[:3, 3]
    if np.any(local[:, 2] > -0.1):
        return False
    u = intr.fx * local[:, 0] / -local[:, 2] + intr.cx
    v = -intr.fy * local[:, 1] / -local[:, 2] + intr.cy
    return bool(np.all((u >= 0) & (u < intr.width) & (v >= 0) & (v < intr.height)))


# ----------------------------------------------------------------------------------------------- our renders
def render_views(model, cameras) -> Tuple[Dict[str, np.ndarray], float]:
    keys = ("rgb", "depth", "accumulation", "semantic_id", "instance_id", "panoptic")
    out: Dict[str, List[np.ndarray]] = {k: [] for k in keys}
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(len(cameras)):
            rendered = model.get_outputs_for_camera(cameras[i : i + 1])
            for k in keys:
                out[k].append(rendered[k].cpu().numpy())
    seconds = time.perf_counter() - start
    views = {k: np.stack(v) for k, v in out.items()}
    views["semantic_id"] = views["semantic_id"][..., 0].astype(np.int64)
    views["instance_id"] = views["instance_id"][..., 0].astype(np.int64)
    views["depth"] = views["depth"][..., 0]
    return views, seconds


def match_objects(truth: Dict[str, np.ndarray], ours: Dict[str, np.ndarray], ids: List[int]) -> Dict[int, dict]:
    """For each true object, the (instance id, class id) our renders give most of its pixels (an instance of ours is
    the pair: two classes may share a surrogate id), with coverage and purity."""
    pair = ours["semantic_id"] * 100000 + ours["instance_id"]
    out = {}
    for g in ids:
        mask = truth["instances"] == g
        pred = pair[mask]
        pred = pred[(pred % 100000) > 0]
        if len(pred) == 0:
            out[g] = {"ours": None, "class_id": None, "coverage": 0.0, "purity": 0.0, "pixels": int(mask.sum())}
            continue
        values, counts = np.unique(pred, return_counts=True)
        best = int(values[counts.argmax()])
        hit = int(counts.max())
        out[g] = {"ours": best % 100000, "class_id": best // 100000, "coverage": hit / int(mask.sum()),
                  "purity": hit / int((pair == best).sum()), "pixels": int(mask.sum())}
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    if a.size == 0:
        return None
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def masked_scores(ours: Dict[str, np.ndarray], truth: Dict[str, np.ndarray], mask: np.ndarray, num_classes: int) -> dict:
    """PSNR, mIoU and PQ (panopticapi's rules) on the pixels of ``mask`` (the rest counts as void truth)."""
    if not mask.any():
        return {"psnr": None, "miou": None, "pq": None, "pixels": 0}
    gt_sem = torch.from_numpy(np.where(mask, truth["semantics"], 0))
    gt_ins = torch.from_numpy(np.where(mask, truth["instances"], 0))
    pred_sem = torch.from_numpy(np.where(mask, ours["semantic_id"], 0))
    pred_ins = torch.from_numpy(np.where(mask, ours["instance_id"], 0))
    scores = protocol_scores(pred_sem, pred_ins, gt_sem, gt_ins, num_classes, scene_level=False)["panopticapi"]
    return {"psnr": psnr(ours["rgb"][mask], truth["rgb"][mask]), "miou": mean_iou(pred_sem, gt_sem, num_classes, "ground_truth"),
            "pq": scores["pq"], "pixels": int(mask.sum())}


def points_of(depth: np.ndarray, cameras, index: int) -> np.ndarray:
    bundle = cameras[index : index + 1].generate_rays(camera_indices=0)
    origins, dirs = bundle.origins.cpu().numpy(), bundle.directions.cpu().numpy()
    return origins + dirs * depth[..., None]


# ----------------------------------------------------------------------------------------------- main
def main(opts: EditingOptions) -> dict:
    out = opts.output_dir
    out.mkdir(parents=True, exist_ok=True)
    if opts.load_config is None:
        from plift_nerfstudio.experiment import train_demo_run

        config_path = train_demo_run(out, opts.quick, opts.steps, "editing")
    else:
        config_path = opts.load_config
    config, pipeline, _, step = load_trained_pipeline(config_path)
    model = pipeline.model
    data = Path(config.pipeline.datamanager.data)
    synth = synth_options_of(data)
    room = make_room(synth.seed, synth.scene)
    poses = camera_path(room, synth.num_frames, np.random.default_rng(synth.seed + 7919))
    intr = Intrinsics.from_fov(synth.width, synth.height)
    meta = json.loads((data / "transforms.json").read_text())
    test_names = set(meta["test_filenames"])
    test_frames = [f for f in meta["frames"] if f["file_path"] in test_names]
    test_index = [i for i, f in enumerate(meta["frames"]) if f["file_path"] in test_names]
    eval_dataset = pipeline.datamanager.eval_dataset
    names = [Path(f).name for f in eval_dataset.image_filenames]
    order = [names.index(Path(f["file_path"]).name) for f in test_frames]
    cameras = eval_dataset.cameras[torch.tensor(order)].to(model.device)
    truth = read_truth(data, test_frames)

    # ------------------------------------------------ match true objects to our ids, choose the edits
    model.apply_edits(None)
    ours, plain_seconds = render_views(model, cameras)
    things = instance_boxes(room)
    matches = match_objects(truth, ours, sorted(things))
    usable = [g for g in sorted(things) if matches[g]["ours"] is not None]
    usable.sort(key=lambda g: -(matches[g]["coverage"] * matches[g]["purity"]))
    claimed = {}
    key = lambda g: (matches[g]["ours"], matches[g]["class_id"])  # noqa: E731
    for g in usable:  # one true object per instance of ours: the best matched keeps it
        claimed.setdefault(key(g), g)
    usable = [g for g in usable if claimed[key(g)] == g]
    if not usable:
        raise RuntimeError(f"no true object has an instance of its own in our renders: {matches}")
    # one object per operation; a run that separates fewer objects (--quick) gets fewer operations
    ops = ("delete", "duplicate", "move")[: len(usable)]
    if len(ops) < 3:
        CONSOLE.print(f"[yellow]only {len(usable)} true object(s) have an instance of their own in our renders: "
                      f"edits {list(ops)} only")
    prefer = {"delete": ("chair", "bag", "television"), "duplicate": ("refrigerator", "chair", "television", "bag"),
              "move": ("bag", "chair", "television", "refrigerator")}
    chosen: Dict[str, int] = {}
    for op in ops:
        left = [g for g in usable if g not in chosen.values()]
        ranked = sorted(left, key=lambda g: (things[g][0].class_name not in prefer[op],
                                             prefer[op].index(things[g][0].class_name) if things[g][0].class_name in prefer[op] else 0))
        chosen[op] = ranked[0]
    camera_positions = poses[:, :3, 3]
    test_poses = poses[test_index]
    placements = {}
    # the copy of an object standing against a wall keeps its seen front to the room (turned, the side that faced
    # the wall would show, which no camera saw); the moved object stands free and is turned round
    for op, rotation in (("duplicate", 0.0), ("move", 180.0)):
        if op not in chosen:
            continue
        removed = [chosen[o] for o in ("delete", "move") if o in chosen]
        translation = free_placement(room, chosen[op], removed, camera_positions, test_poses, intr, rotation)
        if translation is None:
            rotation = 0.0
            translation = free_placement(room, chosen[op], removed, camera_positions, test_poses, intr, rotation)
        if translation is None:  # a small room may have no free floor the test cameras see: leave the edit out
            CONSOLE.print(f"[yellow]no free floor for the {op} of object {chosen[op]} that the test cameras see: "
                          f"{op} left out")
            del chosen[op]
            continue
        boxes = things[chosen[op]]
        pivot = (np.min([b.lo for b in boxes], 0) + np.max([b.hi for b in boxes], 0)) / 2
        placements[op] = {"translation": translation, "rotation_deg": rotation, "scale": 1.0,
                          "pivot": [float(v) for v in pivot]}

    ops = tuple(op for op in ops if op in chosen)
    class_names = model.class_table.names

    def edit_list(ids: Dict[int, int], ours: bool) -> dict:
        def entry(op: str) -> dict:
            g = chosen[op]
            name = class_names[matches[g]["class_id"] - 1] if ours else things[g][0].class_name
            e = {"op": op, "instance_id": ids[g], "class": name}
            if op != "delete":
                e["transform"] = placements[op]
            return e
        return {"version": 1, "frame": "dataset", "up": [0.0, 0.0, 1.0], "edits": [entry(op) for op in ops]}

    ours_ids = {g: matches[g]["ours"] for g in chosen.values()}
    (out / "edits_ours.json").write_text(json.dumps(edit_list(ours_ids, ours=True), indent=2))
    (out / "edits_truth.json").write_text(json.dumps(edit_list({g: g for g in chosen.values()}, ours=False), indent=2))

    # ------------------------------------------------ the edited run (plift-edit) and the edited truth (plift-synth)
    edited_dir = out / "edited_run"
    edited_config = plift_edit(EditOptions(load_config=config_path, edits=out / "edits_ours.json",
                                           output_dir=edited_dir, overwrite=True))
    assert edited_config is not None
    truth_dir = out / "edited_truth"
    import dataclasses

    write_dataset(dataclasses.replace(synth, output=truth_dir, edits=out / "edits_truth.json", overwrite=True))
    edited_meta = json.loads((truth_dir / "edited_truth.json").read_text())
    truth_edited = read_truth(truth_dir, edited_meta["frames"])

    model.apply_edits(load_edit_list(edited_dir / "edits.json"), str(edited_dir / "edits.json"))
    edited, edited_seconds = render_views(model, cameras)
    model.apply_edits(None)
    _, plain_seconds_again = render_views(model, cameras)
    model.apply_edits(load_edit_list(edited_dir / "edits.json"), str(edited_dir / "edits.json"))
    _, edited_seconds_again = render_views(model, cameras)
    model.apply_edits(None)
    # each timed twice, alternating; the faster of each counts
    plain_seconds = min(plain_seconds, plain_seconds_again)
    edited_seconds = min(edited_seconds, edited_seconds_again)

    # ------------------------------------------------ scores
    num_classes = model.class_table.num_classes
    changed_truth = (truth_edited["instances"] != truth["instances"]) | (np.abs(truth_edited["depth"] - truth["depth"]) > 0.01)
    changed_ours = (edited["instance_id"] != ours["instance_id"]) | (np.abs(edited["depth"] - ours["depth"]) > 0.01)
    inside = changed_truth | changed_ours
    outside = ~inside
    rows = {
        "unedited render vs unedited truth": {"inside": masked_scores(ours, truth, inside, num_classes),
                                              "outside": masked_scores(ours, truth, outside, num_classes),
                                              "all": masked_scores(ours, truth, np.ones_like(inside), num_classes)},
        "edited render vs edited truth": {"inside": masked_scores(edited, truth_edited, inside, num_classes),
                                          "outside": masked_scores(edited, truth_edited, outside, num_classes),
                                          "all": masked_scores(edited, truth_edited, np.ones_like(inside), num_classes)},
    }
    # outside the edited regions the geometry is unchanged; the true edited scene is lit differently there (shadows of
    # the removed and added objects), which no radiance-field edit renders: the edited render is compared with the
    # unedited render and, against the unedited truth, with the unedited render's score
    outside_change = psnr(edited["rgb"][outside], ours["rgb"][outside])
    edited_vs_plain_truth = masked_scores(edited, truth, outside, num_classes)
    rows["edited render vs unedited truth"] = {"inside": None, "outside": edited_vs_plain_truth, "all": None}
    psnr_outside_delta = abs(edited_vs_plain_truth["psnr"] - rows["unedited render vs unedited truth"]["outside"]["psnr"])
    relit_outside = psnr(truth_edited["rgb"][outside], truth["rgb"][outside])

    resolved = {e.op: e for e in model_edits(model, edited_dir)}
    per_edit = {}
    g = chosen["delete"]
    deleted_id, deleted_class = ours_ids[g], matches[g]["class_id"]
    revealed = (truth["instances"] == g) & (truth_edited["instances"] != g)
    per_edit["delete"] = {
        "true_object": g, "class": things[g][0].class_name, "our_id": deleted_id,
        "pixels_left_with_the_id": int(((edited["instance_id"] == deleted_id) & (edited["semantic_id"] == deleted_class)).sum()),
        "pixels_before": int(((ours["instance_id"] == deleted_id) & (ours["semantic_id"] == deleted_class)).sum()),
        "left_pixels_at": [[int(v) for v in where] for where in np.argwhere(
            (edited["instance_id"] == deleted_id) & (edited["semantic_id"] == deleted_class))[:20]],
        "left_pixels_accumulation": [float(edited_accumulation) for edited_accumulation in edited["accumulation"][
            (edited["instance_id"] == deleted_id) & (edited["semantic_id"] == deleted_class)][:20].ravel()],
        "revealed_pixels": int(revealed.sum()),
        "revealed_psnr": psnr(edited["rgb"][revealed], truth_edited["rgb"][revealed]),
        "revealed_class_accuracy": float((edited["semantic_id"][revealed] == truth_edited["semantics"][revealed]).mean())
        if revealed.any() else None,
    }
    next_true_id = room.num_instances + 1
    for op in ("duplicate", "move"):
        if op not in chosen:
            continue
        g = chosen[op]
        copy_true = next_true_id if op == "duplicate" else g
        copy_ours = resolved[op].copy_id
        ours_mask = (edited["instance_id"] == copy_ours) & (edited["semantic_id"] == matches[g]["class_id"])
        if op == "move":
            true_mask = truth_edited["instances"] == g
        else:
            true_mask = truth_edited["instances"] == copy_true
        # our copy's pixels whose surface point lies within 5 cm of the true copy's boxes
        matrix = rigid(placements[op]["translation"], placements[op]["rotation_deg"], np.array(placements[op]["pivot"]))
        on_copy, total = 0, 0
        for view in range(len(test_frames)):
            mask = ours_mask[view]
            if not mask.any():
                continue
            points = points_of(edited["depth"][view], cameras, view)[mask]
            points = model.dataset_frame.points_to_dataset(points)
            back = (points - matrix[:3, 3]) @ np.linalg.inv(matrix[:3, :3]).T
            near = np.zeros(len(back), dtype=bool)
            for b in things[g]:
                near |= np.all((back >= b.lo - 0.05) & (back <= b.hi + 0.05), axis=-1)
            on_copy += int(near.sum())
            total += int(mask.sum())
        per_edit[op] = {
            "true_object": g, "class": things[g][0].class_name, "our_id": ours_ids[g], "copy_id": copy_ours,
            "transform": placements[op],
            "copy_pixels": int(ours_mask.sum()), "true_copy_pixels": int(true_mask.sum()),
            "share_on_true_copy": on_copy / total if total else None,
            "pixel_iou_with_true_copy": float((ours_mask & true_mask).sum() / max(1, (ours_mask | true_mask).sum())),
        }
    result = {
        "run": str(config_path), "step": step, "edited_run": str(edited_config), "matches": {str(k): v for k, v in matches.items()},
        "scores": rows, "outside_psnr_edited_vs_unedited_render": outside_change,
        "outside_psnr_difference_db": psnr_outside_delta, "true_relighting_outside_psnr": relit_outside,
        "per_edit": per_edit,
        "render_seconds": {"unedited": plain_seconds, "edited": edited_seconds, "ratio": edited_seconds / plain_seconds},
        "targets": {"cost_ratio": COST_TARGET, "outside_psnr_difference_db": OUTSIDE_PSNR_TARGET},
    }
    (out / "results.json").write_text(json.dumps(result, indent=2))
    write_markdown(result, out / "results.md")
    print_tables(result)
    before_after_png(ours, edited, truth, truth_edited, out / "before_after.png")
    if opts.video:
        video = out / "edited.mp4"
        import os

        bin_dir = Path(sys.executable).parent  # ns-render and the ffmpeg that scripts/setup.sh puts beside it
        env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        subprocess.run([str(bin_dir / "ns-render"), "interpolate", "--load-config", str(edited_config),
                        "--rendered-output-names", "rgb", "panoptic", "--interpolation-steps", "3",
                        "--frame-rate", "12", "--output-path", str(video)], check=True, env=env)
        result["video"] = str(video)
    return result


def model_edits(model, edited_dir: Path):
    model.apply_edits(load_edit_list(edited_dir / "edits.json"), str(edited_dir / "edits.json"))
    edits = list(model.edited.edits)
    model.apply_edits(None)
    return edits


def fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "inf" if v == float("inf") else f"{v:.2f}"
    return str(v)


def score_rows(result: dict) -> List[List[str]]:
    rows = []
    for name, parts in result["scores"].items():
        for part in ("inside", "outside", "all"):
            s = parts[part]
            if s is None:
                continue
            rows.append([name, part, fmt(s["psnr"]), fmt(s["miou"]), fmt(s["pq"]), str(s["pixels"])])
    return rows


def edit_rows(result: dict) -> List[List[str]]:
    d = result["per_edit"]["delete"]
    rows = [["delete", f"{d['class']} (true {d['true_object']}, ours {d['our_id']})",
             f"id left on {d['pixels_left_with_the_id']} px (was {d['pixels_before']}); revealed {d['revealed_pixels']} px: "
             f"PSNR {fmt(d['revealed_psnr'])}, class accuracy {fmt(d['revealed_class_accuracy'])}"]]
    for op in ("duplicate", "move"):
        if op not in result["per_edit"]:
            continue
        e = result["per_edit"][op]
        t = e["transform"]
        rows.append([op, f"{e['class']} (true {e['true_object']}, ours {e['our_id']} -> {e['copy_id']})",
                     f"translation {[round(v, 2) for v in t['translation']]}, rotation {t['rotation_deg']:.0f} deg: "
                     f"{e['copy_pixels']} px (truth {e['true_copy_pixels']}); on the true copy "
                     f"{fmt(e['share_on_true_copy'])}; pixel IoU {fmt(e['pixel_iou_with_true_copy'])}"])
    return rows


def write_markdown(result: dict, path: Path) -> None:
    lines = ["| render vs truth | pixels | PSNR | mIoU | PQ | count |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in score_rows(result)]
    lines += ["", "| edit | object | result |", "|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in edit_rows(result)]
    cost = result["render_seconds"]
    lines += ["", f"- Outside the edited regions the edited render against the unedited render: PSNR "
                  f"{fmt(result['outside_psnr_edited_vs_unedited_render'])} dB; against the unedited truth, the edited "
                  f"and the unedited render's PSNR differ by {fmt(result['outside_psnr_difference_db'])} dB (target < "
                  f"{OUTSIDE_PSNR_TARGET}). The true edited scene is relit there (shadows): edited truth against "
                  f"unedited truth {fmt(result['true_relighting_outside_psnr'])} dB.",
              f"- Rendering the test views: unedited {cost['unedited']:.2f} s, edited {cost['edited']:.2f} s, ratio "
              f"{cost['ratio']:.2f} (target <= {COST_TARGET})."]
    path.write_text("\n".join(lines) + "\n")


def print_tables(result: dict) -> None:
    table = Table(title="Edited renders against the edited truth (test views)")
    for c in ("render vs truth", "pixels", "PSNR", "mIoU", "PQ", "count"):
        table.add_column(c)
    for r in score_rows(result):
        table.add_row(*r)
    CONSOLE.print(table)
    table = Table(title="Per edit")
    for c in ("edit", "object", "result"):
        table.add_column(c)
    for r in edit_rows(result):
        table.add_row(*r)
    CONSOLE.print(table)
    CONSOLE.print(f"outside PSNR difference {fmt(result['outside_psnr_difference_db'])} dB; render cost ratio "
                  f"{result['render_seconds']['ratio']:.2f}")


def before_after_png(ours, edited, truth, truth_edited, path: Path, views: int = 3) -> None:
    """Rows: test views where the edits show most; columns: truth, our render, edited truth, our edited render,
    our edited panoptic render."""
    changed = (truth_edited["instances"] != truth["instances"]).reshape(len(truth["rgb"]), -1).sum(-1)
    picks = np.argsort(-changed)[:views]
    rows = []
    for i in sorted(picks):
        tiles = [truth["rgb"][i], ours["rgb"][i], truth_edited["rgb"][i], edited["rgb"][i], edited["panoptic"][i]]
        rows.append(np.concatenate([np.clip(t, 0, 1) for t in tiles], axis=1))
    picture = (np.concatenate(rows, axis=0) * 255 + 0.5).astype(np.uint8)
    scale = max(1, 640 // picture.shape[1] + 1)
    picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(path), picture[..., ::-1])


if __name__ == "__main__":
    main(tyro.cli(EditingOptions, description=__doc__))
