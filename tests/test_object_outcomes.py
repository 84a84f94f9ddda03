"""Where each true object goes, on hand-made maps: found, merged, split, wrong shape, painted as a neighbour."""

from __future__ import annotations

import torch

from plift_nerfstudio.evaluation.object_outcomes import object_classes, object_outcomes, per_view_outcomes

WALL, CHAIR = 1, 5  # stuff, thing
THINGS = (CHAIR,)


def room() -> tuple:
    """One 4x8 view: chair 1 in columns 0-1, chair 2 in columns 2-3, the wall (object 3) in columns 4-7."""
    objects = torch.zeros(1, 4, 8, dtype=torch.long)
    objects[..., 0:2], objects[..., 2:4], objects[..., 4:8] = 1, 2, 3
    gt = torch.full_like(objects, WALL)
    gt[..., 0:4] = CHAIR
    return objects, gt


def outcomes(sem, inst):
    objects, gt = room()
    return {r.object_id: r for r in object_outcomes(objects, object_classes(objects, gt), sem, inst, THINGS)}


def test_object_classes_come_from_the_ground_truth() -> None:
    objects, gt = room()
    assert object_classes(objects, gt) == {1: CHAIR, 2: CHAIR, 3: WALL}


def test_a_perfect_render_finds_every_object() -> None:
    objects, gt = room()
    result = outcomes(gt, torch.where(gt == CHAIR, objects, torch.zeros_like(objects)))
    assert {o: r.outcome for o, r in result.items()} == {1: "found", 2: "found", 3: "found"}
    assert result[1].iou == 1.0


def test_two_chairs_on_one_id_are_merged() -> None:
    objects, gt = room()
    result = outcomes(gt, torch.where(gt == CHAIR, torch.full_like(objects, 7), torch.zeros_like(objects)))
    assert result[1].outcome == result[2].outcome == "merged" and result[1].iou == 0.5  # PQ needs IoU > 0.5


def test_one_chair_on_two_ids_is_split() -> None:
    objects, gt = room()
    inst = torch.where(gt == CHAIR, objects, torch.zeros_like(objects))
    inst[..., 0] = 9  # chair 1: column 0 on id 9, column 1 on id 1
    result = outcomes(gt, inst)
    assert result[1].outcome == "split" and result[2].outcome == "found"


def test_a_chair_rendered_as_the_wall_is_painted_as_its_neighbour() -> None:
    objects, gt = room()
    sem = gt.clone()
    sem[..., 2:4] = WALL
    result = outcomes(sem, torch.where(sem == CHAIR, objects, torch.zeros_like(objects)))
    assert result[2].outcome == "painted" and result[2].painted_as == WALL and result[2].neighbour == 3
    assert result[2].covered == 0.0 and result[3].covered == 1.0
    assert result[1].outcome == "found" and result[3].outcome == "found"


def test_a_chair_bleeding_over_the_wall_has_the_wrong_shape() -> None:
    objects, gt = room()
    sem, inst = gt.clone(), torch.where(gt == CHAIR, objects, torch.zeros_like(objects))
    sem[..., 4:7], inst[..., 4:7] = CHAIR, 1  # chair 1's segment spreads over most of the wall
    result = outcomes(sem, inst)
    assert result[1].outcome == "shape" and result[1].iou == 8 / 20
    assert result[3].outcome == "painted" and result[3].painted_as == CHAIR and result[3].neighbour == 1
    # painted as a class no other object has: no neighbour
    sem = gt.clone()
    sem[..., 0:2] = 7
    assert outcomes(sem, torch.where(sem == CHAIR, objects, torch.zeros_like(objects)))[1].neighbour is None


def test_per_frame_ids_are_judged_one_view_at_a_time() -> None:
    objects, gt = room()
    objects, gt = objects.repeat(2, 1, 1), gt.repeat(2, 1, 1)
    inst = torch.where(gt == CHAIR, objects, torch.zeros_like(objects))
    inst[1][inst[1] == 1] = 4  # view 2 numbers its instances differently: still found there
    inst[1][inst[1] == 2] = 4  # ... but puts both chairs on one id
    counts = per_view_outcomes(objects, object_classes(objects, gt), gt, inst, THINGS)
    assert counts[1] == {"found": 1, "merged": 1} and counts[3] == {"found": 2}


def test_an_object_outside_the_views_is_missing() -> None:
    objects, gt = room()
    result = object_outcomes(objects, {**object_classes(objects, gt), 8: CHAIR}, gt, objects, THINGS)
    assert [r.outcome for r in result if r.object_id == 8] == ["missing"]


def test_diagnostics_rows_tables_and_the_loss_picture(tmp_path) -> None:
    import cv2

    from plift_nerfstudio.evaluation.diagnostics import Diagnostics, loss_picture, object_rows, per_object_markdown
    from plift_nerfstudio.labels.class_table import scannet21_class_table

    table = scannet21_class_table()
    chair = table.names.index("chair") + 1
    wall = table.names.index("wall") + 1
    objects, _ = room()
    objects = objects.repeat(2, 1, 1)
    gt = torch.where(objects < 3, torch.full_like(objects, chair), torch.full_like(objects, wall))
    ours_sem = gt.clone()
    ours_sem[1, :, 2:4] = wall  # view 2: chair 2 rendered as the wall; the majority has it right
    ours = (ours_sem, torch.where(ours_sem == chair, objects, torch.zeros_like(objects)))
    majority = (gt, torch.where(gt == chair, objects, torch.zeros_like(objects)))
    rows = object_rows(objects, gt, {"ours": ours, "labels": majority, "majority": majority}, table)
    by_object = {r["object"]: r for r in rows}
    assert by_object[1]["ours"] == "found" and by_object[3]["majority"] == "found"
    assert by_object[2]["labels"] == {"found": 2}
    lines = per_object_markdown(Diagnostics(0, 0, 0, 0, 0, per_object=rows), min_share=0.0)
    assert any(line.startswith("| chair 1 |") for line in lines)
    images = torch.rand(2, 4, 8, 3)
    assert loss_picture(tmp_path / "losses.png", images, gt, majority[0], ours_sem, table) == 1
    assert cv2.imread(str(tmp_path / "losses.png")) is not None
