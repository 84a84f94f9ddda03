"""Diagnostics that tell geometry failures from segmentation failures (benchmarks; needs ground-truth depth).

- train vs test PSNR: a gap means the field memorised the training views (too little geometry constraint);
- depth error against the ground truth (metres along the ray, after undoing the dataparser's scale);
- fog share: the share of each test ray's rendered weight that lies more than ``FOG_MARGIN`` in front of the true
  surface (density floating in free space; segmentation rendered there bleeds into everything behind it);
- per-class PQ and IoU of ours and of the 2D labels (which classes the lifting loses or wins);
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
    """Class name -> ours_pq, labels_pq, ours_iou, labels_iou, gt_share (share of labelled test pixels), and
    majority_pq, majority_iou where the scene has true object ids."""
    label_majority: Dict[str, Optional[float]] = field(default_factory=dict)
    """Test-view scores (panopticapi protocol: pq, scene_pq, miou) of the label-majority maps (every true object
    given the class the training views' labels vote for, weighted as the semantic loss weighs them); empty when the
    scene has no true object ids."""


def per_class_pq(counts: ClassCounts) -> np.ndarray:
    """[C+1] PQ per class in % (nan where the class has no TP, FP or FN)."""
    denom = counts.tp + 0.5 * counts.fp + 0.5 * counts.fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 100 * counts.iou_sum / np.maximum(denom, 1e-12), np.nan)


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
def diagnose(pipeline, data_root: Path, table: ClassTable, max_train_views: int = 8) -> Diagnostics:
    """Render the test views (and some training views) of a trained pipeline and compute the diagnostics."""
    model = pipeline.model
    model.eval()
    dm = pipeline.datamanager
    scale = float(dm.train_dataparser_outputs.dataparser_scale)
    test_frames = dataset_frames(pipeline, dm.eval_dataset.image_filenames)
    train_frames = dataset_frames(pipeline, dm.train_dataset.image_filenames)

    # test views: PSNR, depth, fog, ids
    test_psnrs, abs_err, rel_err, fog = [], [], [], []
    pred_sem, pred_inst, gt_sem, gt_inst, lab_sem, lab_inst = [], [], [], [], [], []
    dataset = dm.eval_dataset
    for index in range(len(dataset)):
        camera = dataset.cameras[index : index + 1].to(model.device)
        image = dataset.get_image_float32(index)[..., :3]
        out = model.get_outputs_for_camera(camera=camera)
        test_psnrs.append(psnr(out["rgb"].cpu(), image))
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
    majority = label_majority_maps(data_root, dm.labels, train_frames, test_frames, table)
    majority_pq = majority_iou = np.full(n + 1, np.nan)
    label_majority: Dict[str, Optional[float]] = {}
    if majority is not None:
        ms, mi = majority
        majority_pq, majority_iou = per_class_pq(frame_counts(ms, mi, gs, gi, n)), per_class_iou(ms, gs, n)
        scores = protocol_scores(ms, mi, gs, gi, n, scene_level=True)["panopticapi"]
        label_majority = {k: scores[k] for k in ("pq", "scene_pq", "miou")}
    ls, li = torch.stack(lab_sem), torch.stack(lab_inst)
    ours_pq, labels_pq = per_class_pq(frame_counts(ps, pi, gs, gi, n)), per_class_pq(frame_counts(ls, li, gs, gi, n))
    ours_iou, labels_iou = per_class_iou(ps, gs, n), per_class_iou(ls, gs, n)
    labelled = gs[gs > 0]
    share = torch.bincount(labelled, minlength=n + 1).double() / max(1, labelled.numel())

    def val(x: float) -> Optional[float]:
        return None if not np.isfinite(x) else float(x)

    per_class = {}
    for c in range(1, n + 1):
        if share[c] > 0 or np.isfinite(ours_pq[c]) or np.isfinite(labels_pq[c]):
            per_class[table.names[c - 1]] = {"gt_share": 100 * float(share[c]), "ours_pq": val(ours_pq[c]),
                                             "labels_pq": val(labels_pq[c]), "ours_iou": val(ours_iou[c]),
                                             "labels_iou": val(labels_iou[c])}
            if majority is not None:
                per_class[table.names[c - 1]].update(majority_pq=val(majority_pq[c]), majority_iou=val(majority_iou[c]))
    cat = (lambda xs: torch.cat(xs) if xs else torch.tensor([float("nan")]))  # noqa: E731
    return Diagnostics(
        train_psnr=float(np.mean(train_psnrs)),
        test_psnr=float(np.mean(test_psnrs)),
        depth_median_abs_error_m=float(cat(abs_err).median()),
        depth_abs_rel=float(cat(rel_err).mean()),
        fog_share=float(cat(fog).mean()),
        per_class=per_class,
        label_majority=label_majority,
    )


def per_class_markdown(diag: Diagnostics) -> List[str]:
    def f(v: Optional[float]) -> str:
        return "-" if v is None else f"{v:.1f}"

    majority = bool(diag.label_majority)
    head = "| class | share of test pixels % | labels PQ | ours PQ | labels IoU | ours IoU |"
    lines = [head + (" label majority PQ | label majority IoU |" if majority else ""), "|---|---|---|---|---|---|" + ("---|---|" if majority else "")]
    for name, d in sorted(diag.per_class.items(), key=lambda kv: -kv[1]["gt_share"]):
        row = f"| {name} | {d['gt_share']:.1f} | {f(d['labels_pq'])} | {f(d['ours_pq'])} | {f(d['labels_iou'])} | {f(d['ours_iou'])} |"
        lines.append(row + (f" {f(d.get('majority_pq'))} | {f(d.get('majority_iou'))} |" if majority else ""))
    return lines
