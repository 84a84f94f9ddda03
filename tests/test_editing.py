"""Scene editing on a hand-made field whose geometry is known exactly: a floor, a back wall, a chair and a sofa.

Deleting, duplicating and moving instances is checked in the renders a user sees (``instance_id``, ``rgb``, depth),
and the edit list's errors name the file and the problem.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from boxes_scene import (
    CHAIR,
    CHAIR_INSTANCE,
    FLOOR,
    K,
    SOFA,
    SOFA_INSTANCE,
    SOLIDS,
    TABLE,
    WALL,
    BoxesField,
    edits,
    inside,
    make_model,
    render,
)
from plift_nerfstudio.editing.dataset_frame import DatasetFrame
from plift_nerfstudio.editing.edit_list import EditListError, load_edit_list, parse_edit_list
from plift_nerfstudio.editing.regions import find_instance_regions

def test_regions_of_the_dense_query_fit_the_true_objects() -> None:
    model = make_model()
    regions = find_instance_regions(model.field, model.is_thing_lut, resolution=64)
    assert set(regions) == {(CHAIR_INSTANCE, CHAIR), (SOFA_INSTANCE, SOFA)}  # stuff has no instance
    for (lo, hi, class_id, instance_id, _) in SOLIDS[2:]:
        region = regions[(instance_id, class_id)]
        assert region.class_id == class_id
        np.testing.assert_allclose(region.lo, lo, atol=2.5 * 2 / 64)
        np.testing.assert_allclose(region.hi, hi, atol=2.5 * 2 / 64)


def test_regions_from_surface_points_leave_out_specks_and_stuff() -> None:
    from plift_nerfstudio.editing.regions import regions_from_points

    rng = np.random.default_rng(0)
    chair = rng.uniform([-0.4, -0.1, -0.7], [-0.2, 0.2, -0.35], size=(400, 3))
    speck = np.array([[0.9, 0.9, 0.9]] * 3)  # a few stray rays given the chair's id far away
    wall = rng.uniform([-1, 0.7, -0.7], [1, 0.75, 1], size=(300, 3))
    points = np.concatenate([chair, speck, wall])
    classes = np.array([CHAIR] * 403 + [WALL] * 300)
    ids = np.array([CHAIR_INSTANCE] * 403 + [0] * 300)
    regions = regions_from_points(points, classes, ids, np.array([[-1.0] * 3, [1.0] * 3]), resolution=64)
    assert list(regions) == [(CHAIR_INSTANCE, CHAIR)]
    region = regions[(CHAIR_INSTANCE, CHAIR)]
    size = np.array([0.2, 0.3, 0.35])  # padded by 15% of the size and two voxels on each side
    np.testing.assert_allclose(region.lo, np.array([-0.4, -0.1, -0.7]) - 0.15 * size - 2 / 32, atol=0.04)
    np.testing.assert_allclose(region.hi, np.array([-0.2, 0.2, -0.35]) + 0.15 * size + 2 / 32, atol=0.04)


def test_a_surrogate_id_shared_by_two_classes_is_two_instances() -> None:
    from plift_nerfstudio.editing.regions import regions_from_points

    rng = np.random.default_rng(0)
    points = np.concatenate([rng.uniform(-0.6, -0.4, (20, 3)), rng.uniform(0.4, 0.6, (20, 3))])
    classes = np.array([CHAIR] * 20 + [SOFA] * 20)
    regions = regions_from_points(points, classes, np.full(40, 3), np.array([[-1.0] * 3, [1.0] * 3]), resolution=16)
    assert set(regions) == {(3, CHAIR), (3, SOFA)}


def test_deleted_instance_covers_no_pixel_and_reveals_what_is_behind() -> None:
    model = make_model()
    before, _ = render(model)
    chair_pixels = before["instance_id"][..., 0] == CHAIR_INSTANCE
    assert chair_pixels.sum() > 30
    model.apply_edits(parse_edit_list(edits({"op": "delete", "instance_id": CHAIR_INSTANCE, "class": "chair"})))
    after, points = render(model)
    assert not (after["instance_id"] == CHAIR_INSTANCE).any()
    # behind the chair: floor or wall, in their colours
    revealed = after["semantic_id"][..., 0][chair_pixels]
    assert set(revealed.unique().tolist()) <= {FLOOR, WALL}
    assert (after["accumulation"][chair_pixels] > 0.99).all()
    # everywhere else the render is unchanged, bit for bit
    rest = ~chair_pixels
    for key in ("rgb", "depth", "semantic_id", "instance_id"):
        assert torch.equal(after[key][rest], before[key][rest]), key


def test_a_speck_of_a_deleted_instance_outside_its_region_is_deleted_too() -> None:
    # a floater the field gives to the chair, far from it, that the region search missed
    speck = ((0.55, 0.6, -0.2), (0.6, 0.65, -0.15), CHAIR, CHAIR_INSTANCE, (0.9, 0.1, 0.1))
    model = make_model(solids=SOLIDS + [speck])
    before, points = render(model)
    seen = (before["instance_id"][..., 0] == CHAIR_INSTANCE).sum()
    regions = find_instance_regions(BoxesField(), model.is_thing_lut, resolution=64)  # the chair alone, no cells
    model.apply_edits(parse_edit_list(edits({"op": "delete", "instance_id": CHAIR_INSTANCE, "class": "chair"})),
                      regions=regions)
    after, _ = render(model)
    assert seen > 30 and not (after["instance_id"] == CHAIR_INSTANCE).any()
    where = (before["instance_id"][..., 0] == CHAIR_INSTANCE) & inside(points, speck[0], speck[1])  # the speck's pixels
    assert where.any() and (after["semantic_id"][..., 0][where] == WALL).all()  # the wall behind it


@pytest.mark.parametrize("marching_chunks", [4, 16])
def test_a_speck_a_whole_unit_in_front_of_the_wall_leaves_the_wall_not_a_hole(marching_chunks: int) -> None:
    """The ray stopped at the speck in an earlier chunk of samples and never queried the wall: removing the speck
    must query what lies behind it."""
    speck = ((0.1, -0.34, -0.02), (0.22, -0.22, 0.1), CHAIR, CHAIR_INSTANCE, (0.9, 0.1, 0.1))
    model = make_model(solids=SOLIDS + [speck], marching_chunks=marching_chunks)
    before, points = render(model)
    where = (before["instance_id"][..., 0] == CHAIR_INSTANCE) & inside(points, speck[0], speck[1])
    assert where.sum() >= 4
    regions = find_instance_regions(BoxesField(), model.is_thing_lut, resolution=64)  # the chair alone, no cells
    model.apply_edits(parse_edit_list(edits({"op": "delete", "instance_id": CHAIR_INSTANCE, "class": "chair"})),
                      regions=regions)
    after, after_points = render(model)
    assert not (after["instance_id"] == CHAIR_INSTANCE).any()
    assert (after["accumulation"][..., 0][where] > 0.99).all()  # no hole
    assert (after["semantic_id"][..., 0][where] == WALL).all()
    assert (after_points[where][:, 1] > 0.69).all()  # the wall's depth, a unit behind the speck
    torch.testing.assert_close(after["rgb"][where], torch.full((int(where.sum()), 3), 0.8), atol=0.02, rtol=0)


def test_exports_of_an_edited_run_leave_out_the_specks_the_renders_remove() -> None:
    speck = ((0.55, 0.6, -0.2), (0.6, 0.65, -0.15), CHAIR, CHAIR_INSTANCE, (0.9, 0.1, 0.1))
    model = make_model(solids=SOLIDS + [speck])
    regions = find_instance_regions(BoxesField(), model.is_thing_lut, resolution=64)  # the chair alone, no cells
    model.apply_edits(parse_edit_list(edits({"op": "delete", "instance_id": CHAIR_INSTANCE, "class": "chair"})),
                      regions=regions)
    grid = torch.stack(torch.meshgrid(*[torch.linspace(-0.99, 0.99, 100)] * 3, indexing="ij"), dim=-1).view(-1, 3)
    density = model.density_at_points(grid)  # what the mesh export queries
    in_speck, in_chair = inside(grid, speck[0], speck[1], pad=0.0), inside(grid, *SOLIDS[2][:2], pad=0.0)
    in_wall = inside(grid, *SOLIDS[1][:2], pad=0.0) & ~in_speck
    assert in_speck.sum() > 5 and (density[in_speck] == 0).all()
    assert (density[in_chair] == 0).all() and (density[in_wall] == 200.0).all()


def test_a_move_puts_back_all_it_removes() -> None:
    """The instance's region is its box and its attached cells, for the deletion and the copy alike: here the box
    holds the sofa's front half and the cells its back half."""
    import dataclasses

    model = make_model()
    regions = model.instance_regions()
    full = regions[(SOFA_INSTANCE, SOFA)]
    centres = full.lattice[0] + (np.argwhere(np.ones((64,) * 3)) + 0.5) / 64 * (full.lattice[1] - full.lattice[0])
    sofa_lo, sofa_hi = np.array(SOLIDS[3][0]), np.array(SOLIDS[3][1])
    back = np.all((centres >= sofa_lo) & (centres <= sofa_hi), axis=-1) & (centres[:, 1] > 0.15)
    regions[(SOFA_INSTANCE, SOFA)] = dataclasses.replace(
        full, lo=np.array([0.05, -0.05, -0.75]), hi=np.array([0.55, 0.15, -0.4]),
        cells=np.argwhere(back.reshape((64,) * 3)).astype(np.int32))
    grid = torch.stack(torch.meshgrid(*[(torch.arange(64) + 0.5) / 32 - 1] * 3, indexing="ij"), dim=-1).view(-1, 3)
    mass_before = model.density_at_points(grid).sum()
    move = {"op": "move", "instance_id": SOFA_INSTANCE, "class": "sofa", "transform": {"translation": [-0.5, -0.5, 0.0]}}
    model.apply_edits(parse_edit_list(edits(move)), regions=regions)
    density = model.density_at_points(grid)
    moved_lo, moved_hi = sofa_lo + (-0.5, -0.5, 0), sofa_hi + (-0.5, -0.5, 0)
    assert (density[inside(grid, sofa_lo, sofa_hi, pad=0.0)] == 0).all()  # nothing of it left behind
    assert (density[inside(grid, moved_lo, moved_hi, pad=0.0)] == 200.0).all()  # all of it arrived
    torch.testing.assert_close(density.sum(), mass_before)


def test_the_default_pivot_is_the_centre_of_the_footprint_on_the_floor() -> None:
    from plift_nerfstudio.editing.edited_run import explicit_edit_list

    model = make_model()
    regions = model.instance_regions()
    entry = {"op": "duplicate", "instance_id": CHAIR_INSTANCE, "class": "chair", "transform": {"rotation_deg": 90}}
    explicit = explicit_edit_list(parse_edit_list(edits(entry)), regions, TABLE, model.dataset_frame)
    # the chair stands on the floor (z = -0.7) over x -0.45..-0.2, y -0.05..0.2; the views see its front and top (up
    # to a pixel's footprint and a lattice cell: 64 x 48 pixels, cells of 1/32)
    np.testing.assert_allclose(explicit.edits[0].transform.pivot, (-0.325, 0.075, -0.7), atol=0.04)
    model.apply_edits(explicit)  # turned in place: the copy stands where the chair stands
    out, points = render(model)
    copy = out["instance_id"][..., 0] == K + 1
    assert copy.sum() > 30 and inside(points[copy], *SOLIDS[2][:2], pad=0.06).all()


def test_a_footprint_centre_is_the_middle_of_the_area_not_of_the_points() -> None:
    import dataclasses

    from plift_nerfstudio.editing.regions import InstanceRegion
    from plift_nerfstudio.editing.resolve import default_pivot, footprint_centre

    rng = np.random.default_rng(0)
    # a 2 x 1 table top seen mostly on its left half, and its legs down to the floor at z = 0
    top = np.concatenate([rng.uniform([0, 0, 0.7], [1, 1, 0.75], (2000, 3)), rng.uniform([1, 0, 0.7], [2, 1, 0.75], (50, 3))])
    legs = np.array([[0.05, 0.05, 0.0], [1.95, 0.95, 0.0]])
    np.testing.assert_allclose(footprint_centre(np.concatenate([top, legs]), np.array([0, 0, 1.0])), (1.0, 0.5, 0.0),
                               atol=0.03)
    # the same with y up (the axis the dataset's cameras use)
    swapped = np.concatenate([top, legs])[:, [0, 2, 1]]
    np.testing.assert_allclose(footprint_centre(swapped, np.array([0, 1.0, 0])), (1.0, 0.0, 0.5), atol=0.03)
    # a region whose padded box was clipped by the scene box on one side: the pivot follows what was seen
    lattice = (np.array([-1.0, -1, -1]), np.array([1.0, 1, 1]), 64)
    seen = np.argwhere(np.ones((8, 8, 1), dtype=bool)) + (2, 20, 10)  # x -0.94..-0.69, y -0.375..-0.125, z -0.69
    region = InstanceRegion(1, CHAIR, lo=np.array([-1.0, -0.45, -0.75]), hi=np.array([-0.6, -0.05, -0.6]),
                            num_voxels=64, lattice=lattice, seen_cells=seen.astype(np.int32))
    np.testing.assert_allclose(default_pivot(region, DatasetFrame.identity(), np.array([0, 0, 1.0])),
                               (-0.8125, -0.25, -0.671875), atol=1e-6)
    without_cells = dataclasses.replace(region, seen_cells=None)  # a region of a dense query: its box's footprint
    np.testing.assert_allclose(default_pivot(without_cells, DatasetFrame.identity(), np.array([0, 0, 1.0])),
                               (-0.8, -0.25, -0.75), atol=1e-6)


def test_isolating_one_object_hides_the_copies_of_others() -> None:
    model = make_model()
    duplicate = {"op": "duplicate", "instance_id": CHAIR_INSTANCE, "class": "chair",
                 "transform": {"translation": [-0.45, 0.35, 0.0]}}
    model.apply_edits(parse_edit_list(edits(duplicate)), isolate=(SOFA_INSTANCE, SOFA))
    out, _ = render(model)
    visible = out["accumulation"][..., 0] > 0.5
    assert visible.sum() > 30 and (out["instance_id"][..., 0][visible] == SOFA_INSTANCE).all()
    model.apply_edits(parse_edit_list(edits(duplicate)), isolate=(K + 1, CHAIR))  # the copy alone
    out, _ = render(model)
    visible = out["accumulation"][..., 0] > 0.5
    assert visible.sum() > 15 and (out["instance_id"][..., 0][visible] == K + 1).all()


def test_a_scaled_copy_is_as_opaque_as_its_original() -> None:
    """The rule: a copy scaled by s has density sigma(T^-1 x) / s, so a ray through it gathers the optical depth of
    the corresponding ray through the original. Checked with a half-transparent television (density 4 over 0.2:
    opacity 1 - exp(-0.8) = 0.55) and vertical rays through it, a copy at scale 1 and one at scale 2."""
    from nerfstudio.cameras.rays import RayBundle

    television = TABLE.names.index("television") + 1
    tv = ((0.55, -0.7, -0.4), (0.75, -0.5, -0.2), television, 5, (0.3, 0.3, 0.3), 4.0)
    model = make_model(solids=SOLIDS + [tv])
    regions = find_instance_regions(model.field, model.is_thing_lut, resolution=64, min_opacity=0.05)
    pivot = [0.65, -0.6, -0.3]
    model.apply_edits(parse_edit_list(edits(
        {"op": "duplicate", "instance_id": 5, "class": "television",
         "transform": {"translation": [-1.2, 0.0, 0.0], "pivot": pivot}},
        {"op": "duplicate", "instance_id": 5, "class": "television",
         "transform": {"translation": [-0.6, 0.0, 0.0], "scale": 2.0, "pivot": pivot}})), regions=regions)
    xs = torch.tensor([0.65, -0.55, 0.05])  # the original, the copy, the copy twice as big
    bundle = RayBundle(origins=torch.stack([xs, torch.full((3,), -0.6), torch.full((3,), -0.65)], dim=-1),
                       directions=torch.tensor([[0.0, 0.0, 1.0]] * 3), pixel_area=torch.full((3, 1), 1e-6),
                       camera_indices=torch.zeros(3, 1, dtype=torch.long))
    with torch.no_grad():
        out = model.get_outputs(model.collider(bundle))
    opacity = out["accumulation"][:, 0]
    expected = 1 - np.exp(-0.8)
    assert out["instance_id"][:, 0].tolist() == [5, K + 1, K + 2]
    torch.testing.assert_close(opacity, torch.full((3,), expected, dtype=opacity.dtype), atol=0.03, rtol=0)


def test_duplicate_appears_at_the_requested_pose_with_a_new_id() -> None:
    model = make_model()
    before, _ = render(model)
    lo, hi = np.array(SOLIDS[2][0]), np.array(SOLIDS[2][1])
    shift = np.array([-0.45, 0.35, 0.0])  # onto free floor left of the chair, towards the wall
    model.apply_edits(parse_edit_list(edits({"op": "duplicate", "instance_id": CHAIR_INSTANCE, "class": "chair",
                                             "transform": {"translation": shift.tolist()}})))
    after, points = render(model)
    copy = after["instance_id"][..., 0] == K + 1
    assert copy.sum() > 15
    assert inside(points[copy], lo + shift, hi + shift).all()
    assert (after["semantic_id"][..., 0][copy] == CHAIR).all()
    # the original stays where it was, with its id
    assert torch.equal(after["instance_id"] == CHAIR_INSTANCE, before["instance_id"] == CHAIR_INSTANCE)
    torch.testing.assert_close(after["rgb"][copy].mean(0), torch.tensor([0.9, 0.1, 0.1]), atol=0.05, rtol=0)


def test_move_with_rotation_about_up_keeps_the_id_and_leaves_the_old_place() -> None:
    model = make_model()
    before, _ = render(model)
    # the sofa (0.4 x 0.3) turned by 90 degrees about its centre (given: the views see only its front and top, whose
    # box the default pivot would be the centre of) and moved left: its footprint becomes 0.3 x 0.4
    model.apply_edits(parse_edit_list(edits({"op": "move", "instance_id": SOFA_INSTANCE, "class": "sofa",
                                             "transform": {"translation": [-0.55, 0.15, 0.0], "rotation_deg": 90,
                                                           "pivot": [0.3, 0.15, -0.575]}})))
    after, points = render(model)
    moved = after["instance_id"][..., 0] == SOFA_INSTANCE
    centre = np.array([0.3, 0.15, -0.575]) + np.array([-0.55, 0.15, 0.0])
    half = np.array([0.15, 0.2, 0.125])
    assert moved.sum() > 30
    assert inside(points[moved], centre - half, centre + half).all()
    old_place = (before["instance_id"][..., 0] == SOFA_INSTANCE) & ~moved
    assert old_place.sum() > 10 and (after["instance_id"][..., 0][old_place] != SOFA_INSTANCE).all()


def test_edits_in_the_dataset_frame_follow_nerfstudios_transform() -> None:
    # the dataset frame is the model frame scaled by 2 and turned 90 degrees about z
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    frame = DatasetFrame(transform=np.concatenate([rotation, np.zeros((3, 1))], axis=1), scale=0.5)
    model = make_model(frame)
    lo, hi = np.array(SOLIDS[2][0]), np.array(SOLIDS[2][1])
    model_shift = np.array([-0.45, 0.35, 0.0])
    dataset_shift = rotation.T @ model_shift / 0.5
    model.apply_edits(parse_edit_list(edits({"op": "duplicate", "instance_id": CHAIR_INSTANCE, "class": "chair",
                                             "transform": {"translation": dataset_shift.tolist()}})))
    after, points = render(model)
    copy = after["instance_id"][..., 0] == K + 1
    assert copy.sum() > 15 and inside(points[copy], lo + model_shift, hi + model_shift).all()


def test_edited_render_of_a_copy_in_empty_space_needs_the_occupancy_grid_to_let_it_through() -> None:
    # without the grid, the same copy renders the same pixels: the grid skips nothing a copy needs
    with_grid, without = make_model(), make_model(occupancy=0)
    entry = {"op": "duplicate", "instance_id": CHAIR_INSTANCE, "class": "chair",
             "transform": {"translation": [-0.45, 0.35, 0.0]}}
    for model in (with_grid, without):
        model.apply_edits(parse_edit_list(edits(entry)))
    a, _ = render(with_grid)
    b, _ = render(without)
    assert torch.equal(a["instance_id"], b["instance_id"])


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"op": "delete", "instance_id": 5, "class": "chair"}, "no instance 5"),
        ({"op": "delete", "instance_id": CHAIR_INSTANCE, "class": "floor"}, "stuff class"),
        ({"op": "delete", "instance_id": CHAIR_INSTANCE, "class": "sofa"}, "is a 'chair'"),
        ({"op": "delete", "instance_id": CHAIR_INSTANCE, "class": "unicorn"}, "not in the dataset's class table"),
    ],
)
def test_edits_the_scene_cannot_take_are_refused(entry: dict, message: str, tmp_path: Path) -> None:
    path = tmp_path / "edits.json"
    path.write_text(json.dumps(edits(entry)))
    model = make_model()
    with pytest.raises(EditListError, match=message) as caught:
        model.apply_edits(load_edit_list(path), str(path))
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"version": 2, "edits": []}, "unsupported edit list version"),
        (edits({"op": "explode", "instance_id": 1, "class": "chair"}), "'op' must be one of"),
        (edits({"op": "delete", "instance_id": 0, "class": "chair"}), "positive integer"),
        (edits({"op": "duplicate", "instance_id": 1, "class": "chair"}), "needs a 'transform'"),
        (edits({"op": "move", "instance_id": 1, "class": "chair", "transform": {"translation": [1, 2]}}),
         "list of 3 finite numbers"),
        (edits({"op": "move", "instance_id": 1, "class": "chair", "transform": {"scale": -1}}), "must be positive"),
        (edits({"op": "move", "instance_id": 1, "class": "chair", "transform": {"shear": 1}}), "unknown keys"),
        (edits({"op": "delete", "instance_id": 1, "class": "chair"}, {"op": "delete", "instance_id": 1, "class": "chair"}),
         "more than once"),
    ],
)
def test_malformed_edit_lists_are_refused_naming_the_file(data: dict, message: str, tmp_path: Path) -> None:
    path = tmp_path / "edits.json"
    path.write_text(json.dumps(data))
    with pytest.raises(EditListError, match=message) as caught:
        load_edit_list(path)
    assert str(path) in str(caught.value)


def test_edit_list_round_trips_through_its_file(tmp_path: Path) -> None:
    data = edits({"op": "delete", "instance_id": 3, "class": "chair"},
                 {"op": "duplicate", "instance_id": 4, "class": "sofa",
                  "transform": {"translation": [1.0, 0.0, 0.5], "rotation_deg": 30.0, "scale": 1.2,
                                "pivot": [0.0, 1.0, 0.0]}})
    edit_list = parse_edit_list(data)
    edit_list.save(tmp_path / "e.json")
    assert load_edit_list(tmp_path / "e.json") == edit_list
    matrix = edit_list.edits[1].transform.matrix(up=[0, 0, 1], pivot=[9, 9, 9])  # the file's pivot wins
    np.testing.assert_allclose(matrix[:3, :3] @ [0, 1, 0] + matrix[:3, 3], [1.0, 1.0, 0.5], atol=1e-12)


def test_neighbouring_instance_ids_get_clearly_different_colours() -> None:
    from plift_nerfstudio.panoptic import instance_palette

    palette = instance_palette(50)[1:]
    gaps = (palette[1:] - palette[:-1]).norm(dim=-1)
    assert gaps.min() > 0.15  # no two consecutive ids look alike
    first = palette[:18]
    pairwise = (first[:, None] - first[None]).norm(dim=-1) + torch.eye(18) * 10
    assert pairwise.min() > 0.1  # the first 18 ids all differ (the golden-ratio hues had two 0.066 apart)
    saturation = palette[:54].max(-1).values - palette[:54].min(-1).values
    assert saturation.min() > 0.12  # none looks like the grey that shows stuff
