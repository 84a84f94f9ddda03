"""Diagnostics that tell geometry failures from segmentation failures (benchmarks; needs ground-truth depth).

- train vs test PSNR: a gap means the field memorised the training views (too little geometry constraint);
- depth error against the ground truth (metres along the ray, after undoing the dataparser's scale);
- fog share: the share of each test ray's rendered weight that lies more than ``FOG_MARGIN`` in front of the true
  surface (density floating in free space; segmentation rendered there bleeds into everything behind it);
- per-class PQ and IoU of ours and of the 2D labels (which classes the lifting loses or wins);
- PQscene against training time comes from evaluating the checkpoints a run kept (scripts/benchmark_quality.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor
from torchmetrics.functional.classification import multiclass_confusion_matrix

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.labels.frame_labels import read_label_png
from plift_nerfstudio.metrics import ClassCounts, frame_counts

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
    """Class name -> ours_pq, labels_pq, ours_iou, labels_iou, gt_share (share of labelled test pixels)."""


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


def psnr(a: Tensor, b: Tensor) -> float:
    return float(-10 * torch.log10(torch.mean((a.clamp(0, 1) - b) ** 2)))


@torch.no_grad()
def _render(model, camera) -> Dict[str, Tensor]:
    return model.get_outputs_for_camera(camera=camera)


@torch.no_grad()
def _ray_weights(model, camera, chunk: int = 4096):
    """Weights and sample mid-distances of every ray of ``camera``, sampled as the model renders them."""
    bundle = camera.generate_rays(camera_indices=0, keep_shape=False)
    parts = [model.ray_weights(bundle[start:start + chunk]) for start in range(0, len(bundle), chunk)]
    return torch.cat([w for w, _ in parts]), torch.cat([t for _, t in parts])


def diagnose(pipeline, data_root: Path, table: ClassTable, max_train_views: int = 8) -> Diagnostics:
    """Render the test views (and some training views) of a trained pipeline and compute the diagnostics."""
    model = pipeline.model
    model.eval()
    dm = pipeline.datamanager
    scale = float(dm.train_dataparser_outputs.dataparser_scale)
    meta = json.loads((data_root / "transforms.json").read_text())
    by_name = {Path(f["file_path"]).name: f for f in meta["frames"]}

    # test views: PSNR, depth, fog, ids
    test_psnrs, abs_err, rel_err, fog = [], [], [], []
    pred_sem, pred_inst, gt_sem, gt_inst, lab_sem, lab_inst = [], [], [], [], [], []
    dataset = dm.eval_dataset
    for index in range(len(dataset)):
        camera = dataset.cameras[index : index + 1].to(model.device)
        image = dataset.get_image_float32(index)[..., :3]
        out = _render(model, camera)
        test_psnrs.append(psnr(out["rgb"].cpu(), image))
        frame = by_name[Path(dataset.image_filenames[index]).name]
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
        out = _render(model, camera)
        train_psnrs.append(psnr(out["rgb"].cpu(), train.get_image_float32(int(index))[..., :3]))

    n = table.num_classes
    ps, pi, gs, gi = (torch.stack(x) for x in (pred_sem, pred_inst, gt_sem, gt_inst))
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
    cat = (lambda xs: torch.cat(xs) if xs else torch.tensor([float("nan")]))  # noqa: E731
    return Diagnostics(
        train_psnr=float(np.mean(train_psnrs)),
        test_psnr=float(np.mean(test_psnrs)),
        depth_median_abs_error_m=float(cat(abs_err).median()),
        depth_abs_rel=float(cat(rel_err).mean()),
        fog_share=float(cat(fog).mean()),
        per_class=per_class,
    )


def per_class_markdown(diag: Diagnostics) -> List[str]:
    def f(v: Optional[float]) -> str:
        return "-" if v is None else f"{v:.1f}"

    lines = ["| class | share of test pixels % | labels PQ | ours PQ | labels IoU | ours IoU |", "|---|---|---|---|---|---|"]
    for name, d in sorted(diag.per_class.items(), key=lambda kv: -kv[1]["gt_share"]):
        lines.append(f"| {name} | {d['gt_share']:.1f} | {f(d['labels_pq'])} | {f(d['ours_pq'])} | {f(d['labels_iou'])} | {f(d['ours_iou'])} |")
    return lines
