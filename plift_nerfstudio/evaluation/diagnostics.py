"""Diagnostics that tell geometry failures from segmentation failures (benchmarks; needs ground-truth depth).

- train vs test PSNR: a gap means the field memorised the training views (too little geometry constraint);
- depth error against the ground truth (metres along the ray, after undoing the dataparser's scale);
- fog share: the share of each test ray's rendered weight that lies more than ``FOG_MARGIN`` in front of the true
  surface (density floating in free space; segmentation rendered there bleeds into everything behind it);
- per-class PQ (split into SQ and RQ) and IoU of ours, of the 2D labels and of the label majority (which classes
  the lifting loses or wins, and whether by shape or by recognition);
- per true object (scenes with true object ids): found, merged with another object, split, wrong shape, or painted
  as another class, for ours (over all test views: our ids are 3D), the label majority, and the labels (per view:
  their ids are per frame); see ``evaluation.object_outcomes``;
- one picture per room (``picture_path``): the test view where ours loses most pixels that the label majority gets
  right, as ground truth, majority, ours and those pixels;
- the label majority (``label_majority``; scenes with true object ids): every true object given the class the
  training views' labels vote for as the semantic loss weighs them (confidence times class distribution), scored on
  the test views. Lifting fits the training labels, so a class that the majority gets wrong is one the labels'
  consensus gets wrong, not one the lifting lost;
- PQscene against training time comes from evaluating the checkpoints a run kept (scripts/benchmark_quality.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor
from torchmetrics.functional.classification import multiclass_confusion_matrix

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.evaluation.label_majority import majority_of_votes, majority_panoptic_maps, object_class_votes
from plift_nerfstudio.labels.frame_labels import read_label_png
from plift_nerfstudio.labels.store import PanopticLabelStore
from plift_nerfstudio.evaluation.eval_views import dataset_frames
from plift_nerfstudio.evaluation.metrics import ClassCounts, frame_counts, protocol_scores, psnr
from plift_nerfstudio.evaluation.object_outcomes import object_classes, object_outcomes, per_view_outcomes

FOG_MARGIN_M = 0.10
"""Rendered weight more than this far (metres) in front of the ground-truth surface counts as fog."""


@dataclass
class Diagnostics:
    train_psnr: float
    test_psnr: float
    depth_median_abs_error_m: float
    depth_abs_rel: float
    """Mean |depth - true depth| / true depth over test pixels."""
    fog_share: float
    """Mean over test rays of the rendered weight lying more than FOG_MARGIN_M in front of the true surface."""
    per_class: Dict[str, Dict[str, Optional[float]]] = field(default_factory=dict)
    """Class name -> gt_share (share of labelled test pixels) and ``<who>_pq``, ``_sq``, ``_rq``, ``_iou`` for who in
    ours, labels and (where the scene has true object ids) majority."""
    label_majority: Dict[str, Optional[float]] = field(default_factory=dict)
    """Test-view scores (panopticapi protocol: pq, scene_pq, miou) of the label-majority maps (every true object
    given the class the training views' labels vote for, weighted as the semantic loss weighs them); empty when the
    scene has no true object ids."""
    per_object: List[Dict[str, object]] = field(default_factory=list)
    """Per true object of the test views (scenes with true object ids): object, class, share of the test pixels, and
    for ours and the label majority the outcome (found, merged, split, shape, painted as <class>) with the IoU of
    its best same-class segment; for the labels the outcomes counted over the views it is in."""


def per_class_pq(counts: ClassCounts) -> np.ndarray:
    """[C+1] PQ per class in % (nan where the class has no TP, FP or FN)."""
    denom = counts.tp + 0.5 * counts.fp + 0.5 * counts.fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 100 * counts.iou_sum / np.maximum(denom, 1e-12), np.nan)


def per_class_sq_rq(counts: ClassCounts) -> tuple:
    """([C+1] SQ, [C+1] RQ) per class in %: PQ = SQ x RQ (nan where undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.where(counts.tp > 0, 100 * counts.iou_sum / np.maximum(counts.tp, 1), np.nan)
        denom = counts.tp + 0.5 * counts.fp + 0.5 * counts.fn
        rq = np.where(denom > 0, 100 * counts.tp / np.maximum(denom, 1e-12), np.nan)
    return sq, rq


def per_class_iou(pred: Int[Tensor, "N H W"], gt: Int[Tensor, "N H W"], num_classes: int) -> np.ndarray:
    """[C+1] IoU per class in % (ground-truth void ignored; nan where the union is empty)."""
    confusion = multiclass_confusion_matrix(pred.long().flatten(), gt.long().flatten(), num_classes=num_classes + 1,
                                            ignore_index=0).double()
    tp = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - tp
    iou = torch.where(union > 0, 100 * tp / union.clamp_min(1e-12), torch.full_like(tp, float("nan")))
    return iou.numpy()


def fog_share_of_rays(weights: Float[Tensor, "R S"], t_mid: Float[Tensor, "R S"], surface_t: Float[Tensor, "R"],
                      margin: float) -> Float[Tensor, "R"]:
    """Per ray: the rendered weight of samples more than ``margin`` in front of the surface at ``surface_t``."""
    in_front = t_mid < (surface_t[:, None] - margin)
    return (weights * in_front).sum(-1)


def read_frame_maps(data_root: Path, frames: List[dict], key: str) -> Tensor:
    """[N, H, W] int64 stack of the label PNGs ``frame[key]`` of ``frames``."""
    return torch.stack([torch.from_numpy(read_label_png(data_root / f[key]).astype(np.int64)) for f in frames])


def label_majority_maps(data_root: Path, labels: PanopticLabelStore, train_frames: List[dict], test_frames: List[dict],
                        table: ClassTable):
    """The test views' label-majority class and instance maps (see ``plift_nerfstudio.evaluation.label_majority``), voted by
    the training frames' machine labels read as the semantic loss reads them (``labels``, the training label store:
    frame i is ``train_frames[i]``); None when the frames have no true object ids (``gt_objects_path``)."""
    if not all("gt_objects_path" in f for f in (*train_frames, *test_frames)):
        return None
    test_objects = read_frame_maps(data_root, test_frames, "gt_objects_path")
    votes = training_votes(data_root, labels, train_frames, table, int(test_objects.max()))
    return majority_panoptic_maps(test_objects, majority_of_votes(votes), table.thing_ids)


def training_votes(data_root: Path, labels: PanopticLabelStore, train_frames: List[dict], table: ClassTable,
                   min_objects: int = 0) -> Tensor:
    """``[object id 0..O, class id 0..C]``: the training frames' votes for each true object's class (see
    ``label_majority.object_class_votes``), for at least ``min_objects`` objects."""
    train_objects = read_frame_maps(data_root, train_frames, "gt_objects_path")
    num_objects = max(int(train_objects.max()), min_objects)
    h, w = train_objects.shape[1:]
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    votes = torch.zeros(num_objects + 1, table.num_classes + 1, dtype=torch.float64)
    for index, objects in enumerate(train_objects):
        pixels = torch.stack([torch.full_like(rows, index), rows, cols], dim=-1).view(-1, 3)
        seen = labels.gather(pixels)
        votes += object_class_votes(objects, seen["semantics"].view(h, w).cpu(), num_objects, table.num_classes,
                                    seen["class_probs"].view(h, w, -1).cpu(), seen["confidence"].view(h, w).cpu())
    return votes


@torch.no_grad()
def _ray_weights(model, camera, chunk: int = 4096):
    """Weights and sample mid-distances of every ray of ``camera``, sampled as the model renders them."""
    bundle = camera.generate_rays(camera_indices=0, keep_shape=False)
    parts = [model.ray_weights(bundle[start:start + chunk]) for start in range(0, len(bundle), chunk)]
    return torch.cat([w for w, _ in parts]), torch.cat([t for _, t in parts])


@torch.no_grad()
def diagnose(pipeline, data_root: Path, table: ClassTable, max_train_views: int = 8,
             picture_path: Optional[Path] = None) -> Diagnostics:
    """Render the test views (and some training views) of a trained pipeline and compute the diagnostics; with
    ``picture_path`` (and true object ids) also write where ours loses to the label majority."""
    model = pipeline.model
    model.eval()
    dm = pipeline.datamanager
    scale = float(dm.train_dataparser_outputs.dataparser_scale)
    test_frames = dataset_frames(pipeline, dm.eval_dataset.image_filenames)
    train_frames = dataset_frames(pipeline, dm.train_dataset.image_filenames)

    # test views: PSNR, depth, fog, ids
    test_psnrs, abs_err, rel_err, fog = [], [], [], []
    pred_sem, pred_inst, gt_sem, gt_inst, lab_sem, lab_inst, images = [], [], [], [], [], [], []
    dataset = dm.eval_dataset
    for index in range(len(dataset)):
        camera = dataset.cameras[index : index + 1].to(model.device)
        image = dataset.get_image_float32(index)[..., :3]
        out = model.get_outputs_for_camera(camera=camera)
        test_psnrs.append(psnr(out["rgb"].cpu(), image))
        images.append(image)
        frame = test_frames[index]
        if "gt_depth_path" in frame:
            true_depth = torch.from_numpy(read_label_png(data_root / frame["gt_depth_path"]).astype(np.float32) / 1000.0)
            valid = true_depth > 0
            depth = out["depth"][..., 0].cpu() / scale
            abs_err.append((depth - true_depth)[valid].abs())
            rel_err.append(((depth - true_depth).abs() / true_depth.clamp_min(1e-3))[valid])
            weights, t_mid = _ray_weights(model, camera)
            surface = (true_depth.flatten() * scale).to(weights.device)
            fog.append(fog_share_of_rays(weights, t_mid, surface, FOG_MARGIN_M * scale)[valid.flatten().to(weights.device)].cpu())
        pred_sem.append(out["semantic_id"][..., 0].long().cpu())
        pred_inst.append(out["instance_id"][..., 0].long().cpu())
        gt_sem.append(torch.from_numpy(read_label_png(data_root / frame["gt_semantics_path"]).astype(np.int64)))
        gt_inst.append(torch.from_numpy(read_label_png(data_root / frame["gt_instances_path"]).astype(np.int64)))
        lab_sem.append(torch.from_numpy(read_label_png(data_root / frame["semantics_path"]).astype(np.int64)))
        lab_inst.append(torch.from_numpy(read_label_png(data_root / frame["instances_path"]).astype(np.int64)))

    # a few training views: PSNR only
    train = dm.train_dataset
    picks = np.linspace(0, len(train) - 1, min(max_train_views, len(train))).round().astype(int)
    train_psnrs = []
    for index in picks:
        camera = train.cameras[int(index) : int(index) + 1].to(model.device)
        out = model.get_outputs_for_camera(camera=camera)
        train_psnrs.append(psnr(out["rgb"].cpu(), train.get_image_float32(int(index))[..., :3]))

    n = table.num_classes
    ps, pi, gs, gi = (torch.stack(x) for x in (pred_sem, pred_inst, gt_sem, gt_inst))
    ls, li = torch.stack(lab_sem), torch.stack(lab_inst)
    majority = label_majority_maps(data_root, dm.labels, train_frames, test_frames, table)
    maps = {"ours": (ps, pi), "labels": (ls, li), **({"majority": majority} if majority is not None else {})}
    label_majority: Dict[str, Optional[float]] = {}
    if majority is not None:
        scores = protocol_scores(*majority, gs, gi, n, scene_level=True)["panopticapi"]
        label_majority = {k: scores[k] for k in ("pq", "scene_pq", "miou")}
    labelled = gs[gs > 0]
    share = torch.bincount(labelled, minlength=n + 1).double() / max(1, labelled.numel())

    def val(x: float) -> Optional[float]:
        return None if not np.isfinite(x) else float(x)

    scores_of = {}
    for who, (sem, inst) in maps.items():
        counts = frame_counts(sem, inst, gs, gi, n)
        scores_of[who] = (per_class_pq(counts), *per_class_sq_rq(counts), per_class_iou(sem, gs, n))
    per_class = {}
    for c in range(1, n + 1):
        if share[c] > 0 or np.isfinite(scores_of["ours"][0][c]) or np.isfinite(scores_of["labels"][0][c]):
            row: Dict[str, Optional[float]] = {"gt_share": 100 * float(share[c])}
            for who, (pq, sq, rq, iou) in scores_of.items():
                row.update({f"{who}_pq": val(pq[c]), f"{who}_sq": val(sq[c]), f"{who}_rq": val(rq[c]),
                            f"{who}_iou": val(iou[c])})
            per_class[table.names[c - 1]] = row
    per_object: List[Dict[str, object]] = []
    if all("gt_objects_path" in f for f in test_frames):
        objects = read_frame_maps(data_root, test_frames, "gt_objects_path")
        per_object = object_rows(objects, gs, maps, table)
        if picture_path is not None and majority is not None:
            loss_picture(picture_path, torch.stack(images), gs, majority[0], ps, table)
    cat = (lambda xs: torch.cat(xs) if xs else torch.tensor([float("nan")]))  # noqa: E731
    return Diagnostics(
        train_psnr=float(np.mean(train_psnrs)),
        test_psnr=float(np.mean(test_psnrs)),
        depth_median_abs_error_m=float(cat(abs_err).median()),
        depth_abs_rel=float(cat(rel_err).mean()),
        fog_share=float(cat(fog).mean()),
        per_class=per_class,
        label_majority=label_majority,
        per_object=per_object,
    )


def object_rows(objects: Int[Tensor, "N H W"], gt_semantics: Int[Tensor, "N H W"], maps: Dict[str, tuple],
                table: ClassTable) -> List[Dict[str, object]]:
    """``Diagnostics.per_object``: each true object's outcome in ours and the majority (all views together) and its
    outcomes counted per view in the labels (``maps``: who -> (class maps, instance maps))."""
    classes = object_classes(objects, gt_semantics)
    total = max(1, int((objects > 0).sum()))
    sizes = torch.bincount(objects.flatten(), minlength=max(classes, default=0) + 1)

    def name(c: Optional[int]) -> str:
        return "void" if not c else table.names[c - 1]

    rows = {o: {"object": o, "class": name(c), "thing": c in table.thing_ids, "share": 100 * float(sizes[o]) / total}
            for o, c in classes.items()}
    for who in ("ours", "majority"):
        if who not in maps:
            continue
        for r in object_outcomes(objects, classes, *maps[who], table.thing_ids):
            rows[r.object_id][who] = f"painted as {name(r.painted_as)}" if r.outcome == "painted" else r.outcome
            rows[r.object_id][f"{who}_iou"] = 100 * r.iou
            rows[r.object_id][f"{who}_covered"] = 100 * r.covered
            if r.neighbour is not None:
                rows[r.object_id][f"{who}_neighbour"] = r.neighbour
    for o, counts in per_view_outcomes(objects, classes, *maps["labels"], table.thing_ids).items():
        rows[o]["labels"] = dict(counts)
    return sorted(rows.values(), key=lambda r: -float(r["share"]))  # type: ignore[arg-type]


def loss_picture(path: Path, images: Float[Tensor, "N H W 3"], gt: Int[Tensor, "N H W"], majority: Int[Tensor, "N H W"],
                 ours: Int[Tensor, "N H W"], table: ClassTable) -> int:
    """Write, for the test view where ours loses most pixels the label majority gets right, its image, ground truth,
    majority and ours in class colours, and those pixels in red; returns that view's index."""
    import cv2

    from plift_nerfstudio.panoptic import class_palette

    lost = (majority == gt) & (ours != gt) & (gt > 0)
    view = int(lost.flatten(1).sum(dim=1).argmax())
    palette = class_palette(table).cpu()
    image = images[view].clamp(0, 1)
    red = torch.tensor([1.0, 0.0, 0.0])
    shown = torch.where(lost[view][..., None], red, 0.35 * image)
    panels = [image, palette[gt[view]], palette[majority[view]], palette[ours[view]], shown]
    row = torch.cat([torch.nn.functional.pad(p.permute(2, 0, 1), (2, 2, 2, 2), value=1.0) for p in panels], dim=2)
    picture = (row.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    scale = max(1, 720 // picture.shape[1] + 1)
    picture = cv2.resize(picture, (picture.shape[1] * scale, picture.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    panel_width = picture.shape[1] // len(panels)
    caption = np.full((28, picture.shape[1], 3), 255, np.uint8)
    for k, text in enumerate(("image", "ground truth", "label majority", "ours", "lost to the majority")):
        cv2.putText(caption, text, (k * panel_width + 6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    picture = np.concatenate([caption, picture], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    return view


def per_class_markdown(diag: Diagnostics) -> List[str]:
    """Per class: PQ, SQ, RQ and IoU of the labels, the label majority (where known) and ours."""
    def f(v: Optional[float]) -> str:
        return "-" if v is None else f"{v:.0f}"

    who = ["labels", "majority", "ours"] if diag.label_majority else ["labels", "ours"]
    names = " / ".join(who)
    lines = [f"| class | share of test pixels % | PQ ({names}) | SQ | RQ | IoU |", "|---|---|---|---|---|---|"]
    for name, d in sorted(diag.per_class.items(), key=lambda kv: -kv[1]["gt_share"]):
        cells = [" / ".join(f(d.get(f"{w}_{metric}")) for w in who) for metric in ("pq", "sq", "rq", "iou")]
        lines.append(f"| {name} | {d['gt_share']:.1f} | " + " | ".join(cells) + " |")
    return lines


def per_object_markdown(diag: Diagnostics, min_share: float = 0.1) -> List[str]:
    """Per true object with at least ``min_share`` % of the test pixels: its outcome in ours and the label majority
    (things: IoU of the best same-class segment; stuff: share of its pixels in its class), and in the labels counted
    over the test views it is in; the smaller objects summed in one line."""
    if not diag.per_object:
        return []
    lines = ["| object | share of test pixels % | labels (views) | label majority | ours |", "|---|---|---|---|---|"]

    def outcome(row: Dict[str, object], who: str) -> str:
        if who not in row:
            return "-"
        neighbour = f" (object {row[f'{who}_neighbour']})" if f"{who}_neighbour" in row else ""
        if row.get("thing", True) and not str(row[who]).startswith("painted"):
            return f"{row[who]}{neighbour}, IoU {float(row[f'{who}_iou']):.0f}"  # type: ignore[arg-type]
        return f"{row[who]}{neighbour}, {float(row.get(f'{who}_covered', 0.0)):.0f}% in its class"  # type: ignore[arg-type]

    small: Dict[str, Dict[str, int]] = {"labels": {}, "majority": {}, "ours": {}}
    num_small = 0
    for row in diag.per_object:
        if float(row["share"]) < min_share:  # type: ignore[arg-type]
            num_small += 1
            for who in ("majority", "ours"):
                if who in row:
                    key = "painted" if str(row[who]).startswith("painted") else str(row[who])
                    small[who][key] = small[who].get(key, 0) + 1
            for key, n in dict(row.get("labels", {})).items():  # type: ignore[arg-type]
                small["labels"][key] = small["labels"].get(key, 0) + n
            continue
        labels = ", ".join(f"{k} {v}" for k, v in sorted(dict(row.get("labels", {})).items(), key=lambda kv: -kv[1]))  # type: ignore[arg-type]
        lines.append(f"| {row['class']} {row['object']} | {float(row['share']):.1f} | {labels or '-'} | "  # type: ignore[arg-type]
                     f"{outcome(row, 'majority')} | {outcome(row, 'ours')} |")
    if num_small:
        summary = {who: ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: -kv[1])) or "-"
                   for who, c in small.items()}
        lines.append(f"| {num_small} smaller objects | < {min_share} each | {summary['labels']} (views) | "
                     f"{summary['majority']} | {summary['ours']} |")
    return lines


def outcome_counts(diag: Diagnostics, who: str = "ours") -> Dict[str, int]:
    """How many true objects ended found, merged, split, with the wrong shape or painted (any class)."""
    counts: Dict[str, int] = {}
    for row in diag.per_object:
        if who in row:
            key = "painted" if str(row[who]).startswith("painted") else str(row[who])
            counts[key] = counts.get(key, 0) + 1
    return counts
