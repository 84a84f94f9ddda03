"""Segmentation metrics against ground truth under two named protocols, ``panopticapi`` and ``paper``.

Common to both:
- Class 0 is void. Ground-truth void pixels are ignored; a void prediction (a ray that rendered nothing, or a pixel
  the 2D labels left unlabelled) on a labelled pixel is a miss.
- A segment is a (class, instance id) pair; stuff pixels carry instance 0, so each stuff class is one segment.
- Segments match when their IoU exceeds 0.5; the part of a predicted segment lying on ground-truth void is removed
  from the union (and a predicted segment more than half on ground-truth void is not a false positive). Predicted
  void pixels are not removed from anything: a ground-truth segment half predicted as void has IoU at most 0.5.
  This is panopticapi's ``pq_compute`` (Kirillov et al.); torchmetrics' PanopticQuality is more lenient (it removes
  predicted void from the target's area and forgives the miss of a segment more than half predicted void), which
  is why it is not used for PQ.
- Conventional PQ (``pq``, ``sq``, ``rq``; the paper's Table 4): segments are matched within each image, TP/FP/FN
  and the matched IoUs are summed per class over all test images, PQ per class = sum IoU / (TP + FP/2 + FN/2),
  SQ = sum IoU / TP, RQ = TP / (TP + FP/2 + FN/2), each averaged over the classes with TP + FP + FN > 0.
- Scene-level PQ (``scene_pq``, ``scene_sq``, ``scene_rq``; PQscene of the paper, Sec. 4): the same after tiling all
  test frames into one image, so a segment is a (class, id) pair over the whole scene and a stuff class is one
  scene-wide segment. Ids must agree across frames: for the 2D labels (per-frame ids) it is not defined.

The two protocols differ in which classes are averaged:
- ``panopticapi``: PQ over every class with TP + FP + FN > 0; mIoU over the classes present in the ground truth.
- ``paper`` (the authors' evaluation, ../shared/reference/official-implementation-facts.md): PQ only over classes
  that reach ``PAPER_MIN_CLASS_SHARE`` (0.5%) of the evaluated pixels in the ground truth or in the prediction
  (a class under 0.5% in both is dropped, so a few stray pixels of a rare class do not count as a whole class
  scored 0); mIoU over every class with a non-empty union (present in the ground truth or the prediction). The
  facts file says "classes under 0.5% share in prediction or GT are dropped"; we read it as "under 0.5% in both",
  since dropping a class under 0.5% in either would drop every class predicted where the ground truth has none
  and hide all its false positives. Shares are over the pixels the ground truth labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Literal, Optional

import numpy as np
import torch
from jaxtyping import Bool, Int
from torch import Tensor
from torchmetrics.functional.classification import multiclass_confusion_matrix

PROTOCOLS = ("panopticapi", "paper")
PAPER_MIN_CLASS_SHARE = 0.005
MATCH_IOU = 0.5
PROTOCOL_NOTES = {
    "panopticapi": "panopticapi's pq_compute: PQ averaged over classes with TP+FP+FN > 0; mIoU over the classes "
                   "present in the ground truth",
    "paper": "the authors' evaluation: PQ averaged over classes with at least 0.5% of the labelled pixels in the "
             "ground truth or the prediction; mIoU over classes present in the ground truth or the prediction",
}
METRIC_NOTES = {
    "pq": "conventional PQ (SQ, RQ): segments matched within each test image, counts accumulated over all test "
          "images (the paper's Table 4)",
    "scene_pq": "PQscene (SQscene, RQscene): segments matched after tiling all test images into one, so ids must "
                "agree across views (the paper's Table 1); not defined for the 2D labels",
    "miou": "mean IoU over classes (which classes: see the protocol); ground-truth void ignored, void predictions "
            "are misses",
}


@dataclass
class ClassCounts:
    """Per class id (index 0 = void, unused): summed IoU of matched segments, TP, FP and FN."""

    iou_sum: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    @classmethod
    def zeros(cls, num_classes: int) -> "ClassCounts":
        return cls(np.zeros(num_classes + 1), *(np.zeros(num_classes + 1, np.int64) for _ in range(3)))

    def __add__(self, other: "ClassCounts") -> "ClassCounts":
        return ClassCounts(self.iou_sum + other.iou_sum, self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


@dataclass
class PanopticScores:
    pq: float
    sq: float
    rq: float

    def as_dict(self, prefix: str) -> Dict[str, float]:
        return {f"{prefix}pq": self.pq, f"{prefix}sq": self.sq, f"{prefix}rq": self.rq}


def match_segments(
    pred_semantics: np.ndarray, pred_instances: np.ndarray, gt_semantics: np.ndarray, gt_instances: np.ndarray,
    num_classes: int,
) -> ClassCounts:
    """TP/FP/FN and matched IoUs per class of ONE image (arrays of any one shape), panopticapi's rules."""
    ps, pi, gs, gi = (np.asarray(a).reshape(-1).astype(np.int64) for a in
                      (pred_semantics, pred_instances, gt_semantics, gt_instances))
    span = int(max(pi.max(initial=0), gi.max(initial=0))) + 1
    pred_key = np.where(ps > 0, ps * span + pi, -1)
    gt_key = np.where(gs > 0, gs * span + gi, -1)
    pred_ids, pred_area = np.unique(pred_key[pred_key >= 0], return_counts=True)
    gt_ids, gt_area = np.unique(gt_key[gt_key >= 0], return_counts=True)
    pairs, inter = np.unique(np.stack([gt_key, pred_key], axis=1), axis=0, return_counts=True)
    on_gt_void = np.zeros(len(pred_ids))
    void_pairs = (pairs[:, 0] < 0) & (pairs[:, 1] >= 0)
    on_gt_void[np.searchsorted(pred_ids, pairs[void_pairs, 1])] = inter[void_pairs]

    counts = ClassCounts.zeros(num_classes)
    candidates = (pairs[:, 0] >= 0) & (pairs[:, 1] >= 0) & (pairs[:, 0] // span == pairs[:, 1] // span)
    g = np.searchsorted(gt_ids, pairs[candidates, 0])
    p = np.searchsorted(pred_ids, pairs[candidates, 1])
    overlap = inter[candidates]
    iou = overlap / (gt_area[g] + pred_area[p] - overlap - on_gt_void[p])
    matched = iou > MATCH_IOU  # at most one match per segment when IoU > 0.5
    gt_matched = np.zeros(len(gt_ids), bool)
    pred_matched = np.zeros(len(pred_ids), bool)
    gt_matched[g[matched]] = True
    pred_matched[p[matched]] = True
    matched_class = gt_ids[g[matched]] // span
    np.add.at(counts.tp, matched_class, 1)
    np.add.at(counts.iou_sum, matched_class, iou[matched])
    np.add.at(counts.fn, gt_ids[~gt_matched] // span, 1)
    false_positive = ~pred_matched & (on_gt_void / pred_area <= 0.5)
    np.add.at(counts.fp, pred_ids[false_positive] // span, 1)
    return counts


def scores_from_counts(counts: ClassCounts, keep: Optional[np.ndarray] = None) -> PanopticScores:
    """PQ/SQ/RQ (in %) averaged over the classes with TP + FP + FN > 0 (and ``keep``, when given)."""
    present = (counts.tp + counts.fp + counts.fn) > 0
    present[0] = False
    if keep is not None:
        present &= keep
    if not present.any():
        return PanopticScores(0.0, 0.0, 0.0)
    tp, fp, fn, iou = counts.tp[present], counts.fp[present], counts.fn[present], counts.iou_sum[present]
    denominator = tp + 0.5 * fp + 0.5 * fn
    sq = np.where(tp > 0, iou / np.maximum(tp, 1), 0.0)
    rq = tp / denominator
    return PanopticScores(100 * float((iou / denominator).mean()), 100 * float(sq.mean()), 100 * float(rq.mean()))


def frame_counts(pred_semantics: Int[Tensor, "N H W"], pred_instances: Int[Tensor, "N H W"],
                 gt_semantics: Int[Tensor, "N H W"], gt_instances: Int[Tensor, "N H W"], num_classes: int) -> ClassCounts:
    """Counts of conventional PQ: segments matched within each image, summed over the N images."""
    total = ClassCounts.zeros(num_classes)
    for views in zip(pred_semantics, pred_instances, gt_semantics, gt_instances):
        total = total + match_segments(*(v.cpu().numpy() for v in views), num_classes)
    return total


def scene_counts(pred_semantics: Int[Tensor, "N H W"], pred_instances: Int[Tensor, "N H W"],
                 gt_semantics: Int[Tensor, "N H W"], gt_instances: Int[Tensor, "N H W"], num_classes: int) -> ClassCounts:
    """Counts of PQscene: the N images matched as one tiled image."""
    return match_segments(*(v.cpu().numpy() for v in (pred_semantics, pred_instances, gt_semantics, gt_instances)),
                          num_classes)


def paper_classes(pred_semantics: Tensor, gt_semantics: Tensor, num_classes: int,
                  min_share: float = PAPER_MIN_CLASS_SHARE) -> Bool[np.ndarray, "C1"]:
    """Classes the paper's protocol averages: at least ``min_share`` of the labelled pixels in the ground truth or
    in the prediction (shares over the pixels the ground truth labels)."""
    labelled = gt_semantics > 0
    total = max(int(labelled.sum()), 1)
    gt_share = torch.bincount(gt_semantics[labelled].long().flatten(), minlength=num_classes + 1)[: num_classes + 1] / total
    pred_share = torch.bincount(pred_semantics[labelled].long().flatten(), minlength=num_classes + 1)[: num_classes + 1] / total
    keep = ((gt_share >= min_share) | (pred_share >= min_share)).cpu().numpy()
    keep[0] = False
    return keep


def mean_iou(pred_semantics: Int[Tensor, "N H W"], gt_semantics: Int[Tensor, "N H W"], num_classes: int,
             classes: Literal["ground_truth", "union"]) -> float:
    """Mean IoU (in %) from one confusion matrix over all pixels; ground-truth void ignored, a void prediction on
    a labelled pixel is a miss of its class. ``classes``: average over the classes present in the ground truth, or
    over every class with a non-empty union (in the ground truth or the prediction)."""
    confusion = multiclass_confusion_matrix(pred_semantics.long().flatten(), gt_semantics.long().flatten(),
                                            num_classes=num_classes + 1, ignore_index=0).double()  # [target, pred]
    true_positive = confusion.diag()
    in_gt, in_pred = confusion.sum(1), confusion.sum(0)
    union = in_gt + in_pred - true_positive
    chosen = in_gt > 0 if classes == "ground_truth" else union > 0
    chosen[0] = False
    if not bool(chosen.any()):
        return 0.0
    return 100 * float((true_positive[chosen] / union[chosen]).mean())


def protocol_scores(
    pred_semantics: Int[Tensor, "N H W"], pred_instances: Int[Tensor, "N H W"],
    gt_semantics: Int[Tensor, "N H W"], gt_instances: Int[Tensor, "N H W"], num_classes: int, scene_level: bool,
) -> Dict[str, Dict[str, Optional[float]]]:
    """Every metric under both protocols: ``{"panopticapi": {...}, "paper": {...}}`` with keys pq, sq, rq,
    scene_pq, scene_sq, scene_rq (None unless ``scene_level``) and miou."""
    views = (pred_semantics, pred_instances, gt_semantics, gt_instances)
    per_image = frame_counts(*views, num_classes)
    scene = scene_counts(*views, num_classes) if scene_level else None
    keep_of = {"panopticapi": None, "paper": paper_classes(pred_semantics, gt_semantics, num_classes)}
    miou_classes: Dict[str, Literal["ground_truth", "union"]] = {"panopticapi": "ground_truth", "paper": "union"}
    out: Dict[str, Dict[str, Optional[float]]] = {}
    for protocol in PROTOCOLS:
        keep = keep_of[protocol]
        scores: Dict[str, Optional[float]] = dict(scores_from_counts(per_image, keep).as_dict(""))
        if scene is not None:
            scores.update(scores_from_counts(scene, keep).as_dict("scene_"))
        else:
            scores.update({"scene_pq": None, "scene_sq": None, "scene_rq": None})
        scores["miou"] = mean_iou(pred_semantics, gt_semantics, num_classes, miou_classes[protocol])
        out[protocol] = scores
    return out


def psnr(prediction, target) -> Optional[float]:
    """Peak signal-to-noise ratio (dB) of colours in [0, 1] (``prediction`` clipped to it), numpy arrays or torch
    tensors alike; None when there are no pixels, inf when they are equal."""
    if isinstance(prediction, torch.Tensor):
        if prediction.numel() == 0:
            return None
        mse = float(torch.mean((prediction.clamp(0, 1) - target.to(prediction)) ** 2))
    else:
        prediction = np.asarray(prediction)
        if prediction.size == 0:
            return None
        mse = float(np.mean((np.clip(prediction, 0, 1) - np.asarray(target)) ** 2))
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)
