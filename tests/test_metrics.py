"""Metric conventions on hand-made cases whose PQ, SQ, RQ and mIoU are worked out here."""

from __future__ import annotations

import pytest
import torch

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.metrics import frame_panoptic_quality, mean_iou, scene_panoptic_quality

TABLE = ClassTable(names=("chair", "floor"), is_thing=(True, False), colors=((255, 0, 0), (0, 255, 0)))


def t(rows):
    return torch.tensor(rows, dtype=torch.long)


def test_miou_ignores_ground_truth_void_and_counts_void_predictions_as_misses() -> None:
    gt = t([[[1, 1, 2, 2, 0, 1]]])
    pred = t([[[1, 2, 2, 2, 1, 0]]])
    # class 1: TP 1, FN 2 (one predicted 2, one predicted void) -> 1/3; class 2: TP 2, FP 1 -> 2/3
    assert mean_iou(pred, gt, num_classes=2) == pytest.approx(100 * (1 / 3 + 2 / 3) / 2, rel=1e-5)


def test_frame_pq_worked_example() -> None:
    # chair (thing) gt id 1 on 4 px, predicted with id 5 on 3 of them: IoU 3/4; floor 4 px, predicted on 5: IoU 4/5
    gt_sem, gt_ins = t([[[1, 1, 1, 1, 2, 2, 2, 2]]]), t([[[1, 1, 1, 1, 0, 0, 0, 0]]])
    pr_sem, pr_ins = t([[[1, 1, 1, 2, 2, 2, 2, 2]]]), t([[[5, 5, 5, 0, 0, 0, 0, 0]]])
    s = frame_panoptic_quality(pr_sem, pr_ins, gt_sem, gt_ins, TABLE)
    assert s.pq == pytest.approx(100 * (0.75 + 0.8) / 2, rel=1e-5)
    assert s.sq == pytest.approx(100 * (0.75 + 0.8) / 2, rel=1e-5)
    assert s.rq == pytest.approx(100.0)


def test_frame_pq_counts_unmatched_segments() -> None:
    # two gt chairs (ids 1, 2); prediction merges them into one segment: IoU 2/4 is not > 0.5, so 1 FP and 2 FN
    gt_sem, gt_ins = t([[[1, 1, 1, 1, 2, 2]]]), t([[[1, 1, 2, 2, 0, 0]]])
    pr_sem, pr_ins = t([[[1, 1, 1, 1, 2, 2]]]), t([[[3, 3, 3, 3, 0, 0]]])
    s = frame_panoptic_quality(pr_sem, pr_ins, gt_sem, gt_ins, TABLE)
    # chair: PQ 0 (no TP); floor: perfect -> PQ 1, RQ for chair: 0
    assert s.pq == pytest.approx(50.0)
    assert s.rq == pytest.approx(50.0)


def test_void_ground_truth_is_removed_from_the_union() -> None:
    gt_sem, gt_ins = t([[[1, 1, 0, 0]]]), t([[[1, 1, 0, 0]]])
    pr_sem, pr_ins = t([[[1, 1, 1, 1]]]), t([[[4, 4, 4, 4]]])
    # the predicted chair spills over void pixels only: they do not count, IoU = 1
    assert frame_panoptic_quality(pr_sem, pr_ins, gt_sem, gt_ins, TABLE).pq == pytest.approx(100.0)


def test_scene_pq_needs_ids_consistent_across_frames() -> None:
    gt_sem = t([[[1, 1, 2, 2]], [[1, 1, 2, 2]]])
    gt_ins = t([[[1, 1, 0, 0]], [[1, 1, 0, 0]]])  # the same chair in both frames
    per_frame_ids = t([[[5, 5, 0, 0]], [[7, 7, 0, 0]]])
    consistent_ids = t([[[5, 5, 0, 0]], [[5, 5, 0, 0]]])
    assert frame_panoptic_quality(gt_sem, per_frame_ids, gt_sem, gt_ins, TABLE).pq == pytest.approx(100.0)
    # tiled: two predicted chairs of 2 px each against one gt chair of 4 px -> IoU 0.5 each, no match
    assert scene_panoptic_quality(gt_sem, per_frame_ids, gt_sem, gt_ins, TABLE).pq == pytest.approx(50.0)
    assert scene_panoptic_quality(gt_sem, consistent_ids, gt_sem, gt_ins, TABLE).pq == pytest.approx(100.0)
