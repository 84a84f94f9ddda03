"""Metric conventions on hand-made cases whose PQ, SQ, RQ and mIoU are worked out here, under the three protocols."""

from __future__ import annotations

import pytest
import torch

from plift_nerfstudio.evaluation.metrics import frame_counts, mean_iou, protocol_scores, scene_counts, scores_from_counts

WALL, CHAIR, FLOOR, LAMP = 1, 2, 3, 4  # a made-up table: chair is the only thing class
NUM_CLASSES = 4


def t(rows):
    return torch.tensor(rows, dtype=torch.long)


def frame_pq(pred_sem, pred_ins, gt_sem, gt_ins):
    return scores_from_counts(frame_counts(pred_sem, pred_ins, gt_sem, gt_ins, NUM_CLASSES))


def scene_pq(pred_sem, pred_ins, gt_sem, gt_ins):
    return scores_from_counts(scene_counts(pred_sem, pred_ins, gt_sem, gt_ins, NUM_CLASSES))


def test_miou_over_ground_truth_classes_or_over_every_non_empty_union() -> None:
    gt = t([[[1, 1, 2, 2, 0, 1]]])
    pred = t([[[1, 2, 2, 2, 3, 0]]])
    # wall: TP 1, missed twice (once as chair, once void) -> 1/3; chair: TP 2, FP 1 -> 2/3; floor is predicted only
    # on a ground-truth void pixel, which is ignored: its union is empty
    assert mean_iou(pred, gt, NUM_CLASSES, "ground_truth") == pytest.approx(100 * (1 / 3 + 2 / 3) / 2)
    pred_floor = t([[[1, 2, 2, 3, 3, 0]]])  # floor takes a chair pixel: floor IoU 0, chair 1/3 (TP 1 of union 3)
    assert mean_iou(pred_floor, gt, NUM_CLASSES, "ground_truth") == pytest.approx(100 * (1 / 3 + 1 / 3) / 2)
    assert mean_iou(pred_floor, gt, NUM_CLASSES, "union") == pytest.approx(100 * (1 / 3 + 1 / 3 + 0) / 3)


def test_conventional_pq_worked_example() -> None:
    # chair (thing) gt id 1 on 4 px, predicted with id 5 on 3 of them: IoU 3/4; wall 4 px, predicted on 5: IoU 4/5
    gt_sem, gt_ins = t([[[2, 2, 2, 2, 1, 1, 1, 1]]]), t([[[1, 1, 1, 1, 0, 0, 0, 0]]])
    pr_sem, pr_ins = t([[[2, 2, 2, 1, 1, 1, 1, 1]]]), t([[[5, 5, 5, 0, 0, 0, 0, 0]]])
    s = frame_pq(pr_sem, pr_ins, gt_sem, gt_ins)
    assert (s.pq, s.sq, s.rq) == pytest.approx((100 * (0.75 + 0.8) / 2, 100 * (0.75 + 0.8) / 2, 100.0))


def test_merged_instances_give_one_false_positive_and_two_misses() -> None:
    # two gt chairs (ids 1, 2); the prediction merges them: IoU 2/4 is not > 0.5 -> chair TP 0, FP 1, FN 2
    gt_sem, gt_ins = t([[[2, 2, 2, 2, 1, 1]]]), t([[[1, 1, 2, 2, 0, 0]]])
    pr_sem, pr_ins = t([[[2, 2, 2, 2, 1, 1]]]), t([[[3, 3, 3, 3, 0, 0]]])
    s = frame_pq(pr_sem, pr_ins, gt_sem, gt_ins)
    assert (s.pq, s.sq, s.rq) == pytest.approx((50.0, 50.0, 50.0))  # wall perfect, chair 0


def test_prediction_over_ground_truth_void_is_removed_from_the_union() -> None:
    gt_sem, gt_ins = t([[[2, 2, 0, 0]]]), t([[[1, 1, 0, 0]]])
    pr_sem, pr_ins = t([[[2, 2, 2, 2]]]), t([[[4, 4, 4, 4]]])
    assert frame_pq(pr_sem, pr_ins, gt_sem, gt_ins).pq == pytest.approx(100.0)
    # a predicted segment lying mostly on ground-truth void is no false positive
    gt_sem2, gt_ins2 = t([[[1, 1, 1, 0, 0, 0]]]), t([[[0] * 6]])
    pr_sem2, pr_ins2 = t([[[1, 1, 1, 2, 2, 2]]]), t([[[0, 0, 0, 7, 7, 7]]])
    assert frame_pq(pr_sem2, pr_ins2, gt_sem2, gt_ins2).pq == pytest.approx(100.0)


def test_half_void_segment_is_a_miss_except_under_the_authors_rules() -> None:
    """2D labels that mark half a chair and leave the rest void: torchmetrics' rules score this PQ 100."""
    gt_sem = t([[[2, 2, 1, 1], [2, 2, 1, 1], [2, 2, 1, 1], [2, 2, 1, 1]]])
    gt_ins = t([[[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]]])
    pr_sem = t([[[2, 2, 1, 1], [2, 2, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]]])
    pr_ins = t([[[3, 3, 0, 0], [3, 3, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]])
    # chair: 4 px of 8 predicted, the rest void: IoU 4 / (8 + 4 - 4) = 0.5, not > 0.5 -> FN 1 and FP 1, PQ 0;
    # wall: IoU 1 -> PQ 100. Both classes hold >= 0.5% of the pixels, so min_share agrees.
    scores = protocol_scores(pr_sem, pr_ins, gt_sem, gt_ins, NUM_CLASSES, scene_level=True)
    for protocol in ("panopticapi", "min_share"):
        s = scores[protocol]
        assert (s["pq"], s["sq"], s["rq"]) == pytest.approx((50.0, 50.0, 50.0)), protocol
        assert (s["scene_pq"], s["scene_sq"], s["scene_rq"]) == pytest.approx((50.0, 50.0, 50.0)), protocol
    # mIoU: wall 1, chair 4/8 (void predictions are misses)
    assert scores["panopticapi"]["miou"] == pytest.approx(75.0)
    # authors: predicted void leaves the union: chair IoU 4 / (4 + 8 - 4 - 4) = 1 -> PQ 100
    authors = scores["authors"]
    assert (authors["pq"], authors["scene_pq"]) == pytest.approx((100.0, 100.0))


def test_stray_pixel_of_a_rare_class_counts_only_under_panopticapi() -> None:
    gt_sem, gt_ins = torch.full((1, 20, 20), WALL), torch.zeros(1, 20, 20, dtype=torch.long)
    pr_sem = gt_sem.clone()
    pr_sem[0, 5, 5] = LAMP  # one pixel of 400: 0.25% < 0.5%
    scores = protocol_scores(pr_sem, gt_ins, gt_sem, gt_ins, NUM_CLASSES, scene_level=True)
    # panopticapi: wall IoU 399/400 (TP), lamp a false positive: PQ (99.75 + 0) / 2, SQ (99.75 + 0) / 2, RQ 50
    api = scores["panopticapi"]
    assert (api["pq"], api["sq"], api["rq"]) == pytest.approx((49.875, 49.875, 50.0))
    # min_share: lamp holds under 0.5% in ground truth and prediction, so only the wall is averaged
    share = scores["min_share"]
    assert (share["pq"], share["sq"], share["rq"]) == pytest.approx((99.75, 99.75, 100.0))
    assert share["scene_pq"] == pytest.approx(99.75)
    # authors: the lamp is dropped and its pixel made void, which leaves the wall's union: IoU 399 / 399
    authors = scores["authors"]
    assert (authors["pq"], authors["sq"], authors["rq"], authors["scene_pq"]) == pytest.approx((100.0,) * 4)
    # mIoU: over ground-truth classes only the wall (99.75); over non-empty unions the lamp too (0)
    assert api["miou"] == pytest.approx(99.75) and share["miou"] == pytest.approx(99.75 / 2)
    assert authors["miou"] == pytest.approx(99.75 / 2)


def test_stuff_class_split_across_frames_is_one_scene_segment() -> None:
    gt_sem = torch.full((2, 4, 4), WALL)
    gt_ins = torch.zeros(2, 4, 4, dtype=torch.long)
    pr_sem = gt_sem.clone()
    pr_sem[1] = FLOOR  # the wall is right in frame 0 and called floor in frame 1
    scores = protocol_scores(pr_sem, gt_ins, gt_sem, gt_ins, NUM_CLASSES, scene_level=True)
    for protocol in ("panopticapi", "min_share", "authors"):
        s = scores[protocol]
        # per image: frame 0 wall TP (IoU 1); frame 1 wall FN and floor FP. Summed per class: wall TP 1 FN 1 ->
        # PQ 1/1.5, SQ 1, RQ 1/1.5; floor FP 1 -> 0, 0, 0
        assert (s["pq"], s["sq"], s["rq"]) == pytest.approx((100 / 3, 50.0, 100 / 3)), protocol
        # scene: one wall segment of 32 px against a predicted wall of 16 px: IoU 1/2, no match -> wall FN 1, FP 1;
        # floor FP 1: PQ 0 (floor holds 50% of the predicted pixels, so min_share and authors keep it)
        assert (s["scene_pq"], s["scene_sq"], s["scene_rq"]) == pytest.approx((0.0, 0.0, 0.0)), protocol


def test_scene_pq_needs_ids_consistent_across_frames() -> None:
    gt_sem = t([[[2, 2, 1, 1]], [[2, 2, 1, 1]]])
    gt_ins = t([[[1, 1, 0, 0]], [[1, 1, 0, 0]]])  # the same chair in both frames
    per_frame_ids = t([[[5, 5, 0, 0]], [[7, 7, 0, 0]]])
    consistent_ids = t([[[5, 5, 0, 0]], [[5, 5, 0, 0]]])
    assert frame_pq(gt_sem, per_frame_ids, gt_sem, gt_ins).pq == pytest.approx(100.0)
    # tiled: two predicted chairs of 2 px each against one gt chair of 4 px -> IoU 0.5 each, no match
    s = scene_pq(gt_sem, per_frame_ids, gt_sem, gt_ins)
    assert (s.pq, s.sq, s.rq) == pytest.approx((50.0, 50.0, 50.0))
    assert scene_pq(gt_sem, consistent_ids, gt_sem, gt_ins).pq == pytest.approx(100.0)


def wall_with(chair_box=None, lamp_pixels=0, size=20):
    """A wall of size x size pixels with a chair (id 1) on ``chair_box`` rows/cols and lamp on the first pixels."""
    sem = torch.full((1, size, size), WALL)
    ins = torch.zeros(1, size, size, dtype=torch.long)
    if chair_box is not None:
        rows, cols = chair_box
        sem[0, rows, cols], ins[0, rows, cols] = CHAIR, 1
    sem.view(-1)[:lamp_pixels] = LAMP
    return sem, ins


def test_authors_drop_a_class_the_prediction_holds_under_half_a_percent_though_the_ground_truth_has_it() -> None:
    gt_sem, gt_ins = wall_with(chair_box=(slice(0, 4), slice(0, 5)))  # chair 20 px of 400 (5%)
    pr_sem, pr_ins = wall_with()
    pr_sem[0, 0, 0], pr_ins[0, 0, 0] = CHAIR, 3  # one chair pixel predicted (0.25%), the other 19 called wall
    scores = protocol_scores(pr_sem, pr_ins, gt_sem, gt_ins, NUM_CLASSES, scene_level=True)
    # panopticapi and min_share (the chair holds 5% of the ground truth): wall IoU 380/399 (TP); chair IoU 1/20,
    # a miss and a false positive -> PQ (95.24 + 0) / 2, RQ 50
    for protocol in ("panopticapi", "min_share"):
        s = scores[protocol]
        assert (s["pq"], s["sq"], s["rq"]) == pytest.approx((100 * 380 / 399 / 2, 100 * 380 / 399 / 2, 50.0)), protocol
    # authors: the chair is under 0.5% in the prediction -> dropped, its pixels void on both sides; the wall's 19
    # pixels over the chair lie on (now) ground-truth void: IoU 380/380
    authors = scores["authors"]
    assert (authors["pq"], authors["sq"], authors["rq"], authors["scene_pq"]) == pytest.approx((100.0,) * 4)


def test_authors_drop_a_class_rare_in_the_ground_truth_however_much_it_is_predicted() -> None:
    gt_sem, gt_ins = wall_with(lamp_pixels=1)  # one lamp pixel of 400 (0.25%)
    pr_sem, pr_ins = wall_with(lamp_pixels=40)  # the prediction paints lamp over 40 pixels (10%)
    scores = protocol_scores(pr_sem, pr_ins, gt_sem, gt_ins, NUM_CLASSES, scene_level=True)
    # panopticapi, min_share (the lamp holds 10% of the prediction, so it is kept): wall IoU 360/399 (TP); lamp
    # IoU 1/40: a miss and a false positive -> PQ (90.2 + 0) / 2
    for protocol in ("panopticapi", "min_share"):
        assert scores[protocol]["pq"] == pytest.approx(100 * 360 / 399 / 2), protocol
    # authors: the lamp is under 0.5% in the ground truth -> dropped; the 39 wall pixels predicted lamp become
    # predicted void and leave the union: wall IoU 360 / (360 + 399 - 39 - 360) = 1
    assert scores["authors"]["pq"] == pytest.approx(100.0)


def test_authors_keep_a_class_absent_from_the_ground_truth_and_count_its_false_positive() -> None:
    gt_sem, gt_ins = wall_with()
    pr_sem, pr_ins = wall_with(lamp_pixels=8)  # a lamp on 2% of the pixels, where the ground truth has none
    scores = protocol_scores(pr_sem, pr_ins, gt_sem, gt_ins, NUM_CLASSES, scene_level=True)
    # every protocol: wall IoU 392/400 (TP), lamp a false positive (a class absent from the ground truth is never
    # flagged rare by it) -> PQ (98 + 0) / 2
    for protocol in ("panopticapi", "min_share", "authors"):
        assert scores[protocol]["pq"] == pytest.approx(98.0 / 2), protocol


def test_authors_forgive_a_segment_mostly_predicted_void_but_still_average_its_class() -> None:
    gt_sem = t([[[2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]]])
    gt_ins = t([[[1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]]])
    pr_sem = t([[[0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]]])  # the chair: 5 px void, 3 px wall
    pr_ins = torch.zeros_like(pr_sem)
    scores = protocol_scores(pr_sem, pr_ins, gt_sem, gt_ins, NUM_CLASSES, scene_level=False)
    # panopticapi: wall IoU 8/11 (TP), chair FN -> PQ (72.7 + 0) / 2, RQ (1 + 0) / 2
    api = scores["panopticapi"]
    assert (api["pq"], api["rq"]) == pytest.approx((100 * 8 / 11 / 2, 50.0))
    # authors: the chair is 5/8 predicted void -> no false negative; nothing is counted for it, yet it is a kept
    # class, so it enters the average with 0: the same PQ, reached by the other rule (without it PQ would be 72.7)
    authors = scores["authors"]
    assert (authors["pq"], authors["sq"], authors["rq"]) == pytest.approx((100 * 8 / 11 / 2, 100 * 8 / 11 / 2, 50.0))
    # one more chair pixel predicted as chair: under the authors' rules the chair's non-void part matches (IoU 1)
    pr_sem2 = pr_sem.clone()
    pr_sem2[0, 0, 7] = CHAIR
    pr_ins2 = torch.where(pr_sem2 == CHAIR, 4, 0)
    authors2 = protocol_scores(pr_sem2, pr_ins2, gt_sem, gt_ins, NUM_CLASSES, scene_level=False)["authors"]
    # wall: pred 10 px (2 on the chair) -> IoU 8/10; chair: pred 1 px, gt 8 px of which 5 predicted void ->
    # IoU 1 / (1 + 8 - 5 - 1) = 1/3: no match; the chair segment is 5/8 void -> no FN; its predicted pixel is a FP
    assert authors2["pq"] == pytest.approx(100 * (0.8 + 0) / 2)
