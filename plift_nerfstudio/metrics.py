"""Segmentation metrics against ground truth, computed by torchmetrics.

Conventions (README, 'Metrics'):
- Class 0 is void. Ground-truth void pixels are ignored by every metric.
- A prediction of void (class 0) on a labelled pixel counts as a miss of the true class in mIoU; in PQ, void
  predictions are removed from the union (torchmetrics' standard handling).
- mIoU averages over classes present in the ground truth or the prediction of the evaluated pixels.
- Per-frame PQ: segments are matched within each frame (standard PQ, Kirillov et al.).
- Scene PQ (PQscene, paper Sec. 4): the frames are tiled into one image, so a segment is a (class, id) pair over
  the whole scene and each stuff class is one scene-wide segment. Ids must then be consistent across frames: for
  labels with per-frame ids (2D machine labels) PQscene is meaningless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import torch
from jaxtyping import Int
from torch import Tensor
from torchmetrics.detection import PanopticQuality
from torchmetrics.functional.classification import multiclass_jaccard_index

from plift_nerfstudio.labels.class_table import ClassTable


@dataclass
class PanopticScores:
    pq: float
    sq: float
    rq: float

    def as_dict(self, prefix: str) -> Dict[str, float]:
        return {f"{prefix}pq": self.pq, f"{prefix}sq": self.sq, f"{prefix}rq": self.rq}


def _panoptic(class_table: ClassTable, preds: Tensor, target: Tensor) -> PanopticScores:
    metric = PanopticQuality(
        things=set(class_table.thing_ids),
        stuffs={i + 1 for i, thing in enumerate(class_table.is_thing) if not thing},
        allow_unknown_preds_category=True,  # class 0 (void) predictions
        return_sq_and_rq=True,
    )
    pq, sq, rq = metric(preds, target).tolist()
    return PanopticScores(100 * pq, 100 * sq, 100 * rq)


def _pairs(semantics: Int[Tensor, "N H W"], instances: Int[Tensor, "N H W"]) -> Int[Tensor, "N H W 2"]:
    return torch.stack([semantics.long(), instances.long()], dim=-1)


def frame_panoptic_quality(
    pred_semantics: Int[Tensor, "N H W"],
    pred_instances: Int[Tensor, "N H W"],
    gt_semantics: Int[Tensor, "N H W"],
    gt_instances: Int[Tensor, "N H W"],
    class_table: ClassTable,
) -> PanopticScores:
    """Standard PQ/SQ/RQ (in %) over N frames, segments matched within each frame."""
    return _panoptic(class_table, _pairs(pred_semantics, pred_instances), _pairs(gt_semantics, gt_instances))


def scene_panoptic_quality(
    pred_semantics: Int[Tensor, "N H W"],
    pred_instances: Int[Tensor, "N H W"],
    gt_semantics: Int[Tensor, "N H W"],
    gt_instances: Int[Tensor, "N H W"],
    class_table: ClassTable,
) -> PanopticScores:
    """PQscene/SQscene/RQscene (in %): PQ after tiling all frames of the scene into one image."""

    def tile(x: Tensor) -> Tensor:
        return torch.cat(list(x), dim=1)[None]  # [1, H, N*W]

    return frame_panoptic_quality(
        tile(pred_semantics), tile(pred_instances), tile(gt_semantics), tile(gt_instances), class_table
    )


def mean_iou(pred_semantics: Int[Tensor, "N H W"], gt_semantics: Int[Tensor, "N H W"], num_classes: int) -> float:
    """Mean IoU (in %) over classes 1..C present in prediction or ground truth; GT void pixels are ignored."""
    value = multiclass_jaccard_index(
        pred_semantics.long().flatten(),
        gt_semantics.long().flatten(),
        num_classes=num_classes + 1,
        average="macro",
        ignore_index=0,
    )
    return 100 * float(value)
