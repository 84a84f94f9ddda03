"""Segmentation metrics against ground truth under three named protocols: ``panopticapi``, ``min_share`` and
``authors``.

Common to all three:
- Class 0 is void. Ground-truth void pixels are ignored; a segment is a (class, instance id) pair; stuff pixels carry
  instance 0, so each stuff class is one segment.
- Segments match when their IoU exceeds 0.5; the part of a predicted segment lying on ground-truth void is removed
  from the union (and a predicted segment more than half on ground-truth void is not a false positive).
- Conventional PQ (``pq``, ``sq``, ``rq``; the paper's Table 4): segments are matched within each image, TP/FP/FN
  and the matched IoUs are summed per class over all test images, PQ per class = sum IoU / (TP + FP/2 + FN/2),
  SQ = sum IoU / TP, RQ = TP / (TP + FP/2 + FN/2), averaged over classes (which classes: see the protocol).
- Scene-level PQ (``scene_pq``, ``scene_sq``, ``scene_rq``; PQscene of the paper, Sec. 4): the same after tiling all
  test frames into one image, so a segment is a (class, id) pair over the whole scene and a stuff class is one
  scene-wide segment. Ids must agree across frames: for the 2D labels (per-frame ids) it is not defined.

The protocols:
- ``panopticapi``: panopticapi's ``pq_compute`` (Kirillov et al.). A void prediction on a labelled pixel is a miss:
  predicted void stays in the union, so a ground-truth segment half predicted as void has IoU at most 0.5. PQ over
  every class with TP + FP + FN > 0; mIoU over the classes present in the ground truth. (torchmetrics'
  PanopticQuality removes predicted void from the union and forgives such a segment, which is why it is not used.)
- ``min_share``: panopticapi's matching, but PQ averaged only over classes holding at least ``MIN_CLASS_SHARE``
  (0.5%) of the labelled pixels in the ground truth or in the prediction (a class under 0.5% in both is dropped, so
  a few stray pixels of a rare class do not count as a whole class scored 0); mIoU over every class with a
  non-empty union. Shares are over the pixels the ground truth labels.
- ``authors``: the evaluation of the authors' public code (``util/panoptic_quality.py`` of nihalsid/panoptic-lifting
  and its caller), rule by rule: ground-truth void pixels are removed first; among the classes present in the
  prediction or the ground truth, a class under 0.5% of the remaining pixels in the prediction OR in the ground
  truth is dropped (a class absent from one side is never flagged by that side), and the pixels of dropped classes
  become void on both sides; predicted void is removed from the union too, and a ground-truth segment more than
  half predicted void is not a false negative; PQ/SQ/RQ are averaged over every kept class, a kept class with
  nothing to count scoring 0. The authors report only PQscene; for conventional PQ the class choice is made once
  over all test pixels (as for PQscene) and segments are matched within each image. mIoU: one confusion matrix,
  classes absent from both sides skipped (as ``min_share``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Literal, Optional, Tuple

import numpy as np
import torch
from jaxtyping import Bool, Int
from torch import Tensor
from torchmetrics.functional.classification import multiclass_confusion_matrix

PROTOCOLS = ("panopticapi", "min_share", "authors")
MIN_CLASS_SHARE = 0.005
DROPPED = -1
"""Ground-truth class of a pixel whose class the authors' protocol dropped: void in the matching, but (unlike the
ground truth's own void, which that protocol removes first) still counted in the areas of predicted segments."""
MATCH_IOU = 0.5
PROTOCOL_NOTES = {
    "panopticapi": "panopticapi's pq_compute: PQ averaged over classes with TP+FP+FN > 0, a void prediction is a "
                   "miss; mIoU over the classes present in the ground truth",
    "min_share": "panopticapi's matching, PQ averaged over classes with at least 0.5% of the labelled pixels in the "
                 "ground truth or the prediction; mIoU over classes present in the ground truth or the prediction",
    "authors": "the authors' public evaluation code: classes under 0.5% in the prediction or the ground truth turned "
               "to void, predicted void removed from the union and a segment mostly predicted void forgiven, PQ "
               "averaged over the kept classes; mIoU over classes present in the ground truth or the prediction",
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
    num_classes: int, forgive_predicted_void: bool = False,
) -> ClassCounts:
    """TP/FP/FN and matched IoUs per class of ONE image (arrays of any one shape; class <= 0 is void), panopticapi's
    rules; with
    ``forgive_predicted_void`` (the authors' rules) predicted void is removed from the union as ground-truth void is,
    and a ground-truth segment more than half predicted void is not a false negative."""
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
    predicted_void = np.zeros(len(gt_ids))
    if forgive_predicted_void:
        void_pairs = (pairs[:, 0] >= 0) & (pairs[:, 1] < 0)
        predicted_void[np.searchsorted(gt_ids, pairs[void_pairs, 0])] = inter[void_pairs]

    counts = ClassCounts.zeros(num_classes)
    candidates = (pairs[:, 0] >= 0) & (pairs[:, 1] >= 0) & (pairs[:, 0] // span == pairs[:, 1] // span)
    g = np.searchsorted(gt_ids, pairs[candidates, 0])
    p = np.searchsorted(pred_ids, pairs[candidates, 1])
    overlap = inter[candidates]
    iou = overlap / (gt_area[g] - predicted_void[g] + pred_area[p] - on_gt_void[p] - overlap)
    matched = iou > MATCH_IOU  # at most one match per segment when IoU > 0.5
    gt_matched = np.zeros(len(gt_ids), bool)
    pred_matched = np.zeros(len(pred_ids), bool)
    gt_matched[g[matched]] = True
    pred_matched[p[matched]] = True
    matched_class = gt_ids[g[matched]] // span
    np.add.at(counts.tp, matched_class, 1)
    np.add.at(counts.iou_sum, matched_class, iou[matched])
    false_negative = ~gt_matched & (predicted_void / gt_area <= 0.5)
    np.add.at(counts.fn, gt_ids[false_negative] // span, 1)
    false_positive = ~pred_matched & (on_gt_void / pred_area <= 0.5)
    np.add.at(counts.fp, pred_ids[false_positive] // span, 1)
    return counts


def scores_from_counts(counts: ClassCounts, keep: Optional[np.ndarray] = None,
                       average_over_kept: bool = False) -> PanopticScores:
    """PQ/SQ/RQ (in %) averaged over the classes with TP + FP + FN > 0 (and ``keep``, when given); with
    ``average_over_kept`` (the authors' rule) over every class in ``keep``, one with nothing counted scoring 0."""
    present = (counts.tp + counts.fp + counts.fn) > 0
    if average_over_kept:
        if keep is None:
            raise ValueError("average_over_kept needs the kept classes")
        present = keep.copy()
    elif keep is not None:
        present &= keep
    present[0] = False
    if not present.any():
        return PanopticScores(0.0, 0.0, 0.0)
    tp, fp, fn, iou = counts.tp[present], counts.fp[present], counts.fn[present], counts.iou_sum[present]
    denominator = tp + 0.5 * fp + 0.5 * fn
    safe = np.maximum(denominator, 1e-12)
    pq = np.where(denominator > 0, iou / safe, 0.0)
    sq = np.where(tp > 0, iou / np.maximum(tp, 1), 0.0)
    rq = np.where(denominator > 0, tp / safe, 0.0)
    return PanopticScores(100 * float(pq.mean()), 100 * float(sq.mean()), 100 * float(rq.mean()))


def frame_counts(pred_semantics: Int[Tensor, "N H W"], pred_instances: Int[Tensor, "N H W"],
                 gt_semantics: Int[Tensor, "N H W"], gt_instances: Int[Tensor, "N H W"], num_classes: int,
                 authors_rules: bool = False) -> ClassCounts:
    """Counts of conventional PQ: segments matched within each image, summed over the N images; with
    ``authors_rules`` each image's ground-truth void pixels are removed first and predicted void is forgiven."""
    total = ClassCounts.zeros(num_classes)
    for views in zip(pred_semantics, pred_instances, gt_semantics, gt_instances):
        arrays = [v.cpu().numpy() for v in views]
        if authors_rules:
            labelled = arrays[2] != 0  # ground-truth void removed; DROPPED pixels stay (void in the matching)
            arrays = [a[labelled] for a in arrays]
        total = total + match_segments(*arrays, num_classes, forgive_predicted_void=authors_rules)
    return total


def scene_counts(pred_semantics: Int[Tensor, "N H W"], pred_instances: Int[Tensor, "N H W"],
                 gt_semantics: Int[Tensor, "N H W"], gt_instances: Int[Tensor, "N H W"], num_classes: int,
                 authors_rules: bool = False) -> ClassCounts:
    """Counts of PQscene: the N images matched as one tiled image (``authors_rules``: see frame_counts)."""
    arrays = [v.cpu().numpy() for v in (pred_semantics, pred_instances, gt_semantics, gt_instances)]
    if authors_rules:
        labelled = arrays[2] != 0
        arrays = [a[labelled] for a in arrays]
    return match_segments(*arrays, num_classes, forgive_predicted_void=authors_rules)


def class_shares(semantics: Tensor, labelled: Tensor, num_classes: int) -> Tensor:
    """Each class id's share (0..num_classes, void included) of the pixels the ground truth labels."""
    total = max(int(labelled.sum()), 1)
    return torch.bincount(semantics[labelled].long().flatten(), minlength=num_classes + 1)[: num_classes + 1] / total


def min_share_classes(pred_semantics: Tensor, gt_semantics: Tensor, num_classes: int,
                      min_share: float = MIN_CLASS_SHARE) -> Bool[np.ndarray, "C1"]:
    """Classes the ``min_share`` protocol averages: at least ``min_share`` of the labelled pixels in the ground
    truth or in the prediction."""
    labelled = gt_semantics > 0
    gt_share = class_shares(gt_semantics, labelled, num_classes)
    pred_share = class_shares(pred_semantics, labelled, num_classes)
    keep = ((gt_share >= min_share) | (pred_share >= min_share)).cpu().numpy()
    keep[0] = False
    return keep


def authors_classes(pred_semantics: Tensor, gt_semantics: Tensor, num_classes: int,
                    min_share: float = MIN_CLASS_SHARE) -> Bool[np.ndarray, "C1"]:
    """Classes the authors' evaluation keeps: present in the prediction or the ground truth (over the labelled
    pixels), and under ``min_share`` on neither side where present (absent on one side is not "under" there)."""
    labelled = gt_semantics > 0
    gt_share = class_shares(gt_semantics, labelled, num_classes)
    pred_share = class_shares(pred_semantics, labelled, num_classes)
    rare = ((gt_share > 0) & (gt_share < min_share)) | ((pred_share > 0) & (pred_share < min_share))
    keep = (((gt_share > 0) | (pred_share > 0)) & ~rare).cpu().numpy()
    keep[0] = False
    return keep


def void_outside(semantics: Int[Tensor, "N H W"], instances: Int[Tensor, "N H W"],
                 keep: Bool[np.ndarray, "C1"]) -> Tuple[Tensor, Tensor]:
    """Class and instance maps with every pixel of a class outside ``keep`` made void (class 0, instance 0)."""
    kept = torch.from_numpy(keep).to(semantics.device)[semantics.long().clamp(0, len(keep) - 1)]
    kept &= semantics < len(keep)
    return torch.where(kept, semantics, 0), torch.where(kept, instances, 0)


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
    """Every metric under every protocol: ``{"panopticapi": {...}, "min_share": {...}, "authors": {...}}`` with keys
    pq, sq, rq, scene_pq, scene_sq, scene_rq (None unless ``scene_level``) and miou."""
    views = (pred_semantics, pred_instances, gt_semantics, gt_instances)
    per_image = frame_counts(*views, num_classes)
    scene = scene_counts(*views, num_classes) if scene_level else None
    out: Dict[str, Dict[str, Optional[float]]] = {}
    for protocol in PROTOCOLS:
        scores: Dict[str, Optional[float]] = {}
        if protocol == "authors":
            keep = authors_classes(pred_semantics, gt_semantics, num_classes)
            pred_sem, pred_ins = void_outside(pred_semantics, pred_instances, keep)
            gt_sem, gt_ins = void_outside(gt_semantics, gt_instances, keep)
            # ground-truth void (0) is removed from the images; the pixels of dropped classes stay, as void
            gt_sem = torch.where(gt_semantics > 0, torch.where(gt_sem > 0, gt_sem, DROPPED), 0)
            kept_views = (pred_sem, pred_ins, gt_sem, gt_ins)
            counts = (frame_counts(*kept_views, num_classes, authors_rules=True),
                      scene_counts(*kept_views, num_classes, authors_rules=True) if scene_level else None)
            average_over_kept = True
        else:
            keep = None if protocol == "panopticapi" else min_share_classes(pred_semantics, gt_semantics, num_classes)
            counts, average_over_kept = (per_image, scene), False
        scores.update(scores_from_counts(counts[0], keep, average_over_kept).as_dict(""))
        if counts[1] is not None:
            scores.update(scores_from_counts(counts[1], keep, average_over_kept).as_dict("scene_"))
        else:
            scores.update({"scene_pq": None, "scene_sq": None, "scene_rq": None})
        scores["miou"] = mean_iou(pred_semantics, gt_semantics, num_classes,
                                  "ground_truth" if protocol == "panopticapi" else "union")
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
