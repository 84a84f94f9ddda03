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
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.scene_box import SceneBox
from torch import nn

from plift_nerfstudio.editing.dataset_frame import DatasetFrame
from plift_nerfstudio.editing.edit_list import EditListError, load_edit_list, parse_edit_list
from plift_nerfstudio.editing.regions import find_instance_regions
from plift_nerfstudio.labels.class_table import scannet21_class_table
from plift_nerfstudio.model import CLASS_TABLE_METADATA_KEY, DATASET_FRAME_METADATA_KEY, PanopticLiftingModelConfig

TABLE = scannet21_class_table()
WALL, FLOOR = TABLE.names.index("wall") + 1, TABLE.names.index("floor") + 1
CHAIR, SOFA = TABLE.names.index("chair") + 1, TABLE.names.index("sofa") + 1
K = 6  # surrogate ids
CHAIR_INSTANCE, SOFA_INSTANCE = 2, 4

# (lo, hi, class id, instance id, colour) in the model's [-1, 1]^3 box
SOLIDS = [
    ((-1.0, -1.0, -1.0), (1.0, 1.0, -0.7), FLOOR, 0, (0.2, 0.6, 0.2)),
    ((-1.0, 0.7, -0.7), (1.0, 1.0, 1.0), WALL, 0, (0.8, 0.8, 0.8)),
    ((-0.45, -0.05, -0.7), (-0.2, 0.2, -0.35), CHAIR, CHAIR_INSTANCE, (0.9, 0.1, 0.1)),
    ((0.1, 0.0, -0.7), (0.5, 0.3, -0.45), SOFA, SOFA_INSTANCE, (0.1, 0.1, 0.9)),
]


class BoxesField(nn.Module):
    """The field's interface (density, colour, class and surrogate-id scores on box-normalised positions) for solid
    boxes in the box [-1, 1]^3; empty space is air of class 'wall' with surrogate id 1."""

    def __init__(self, solids=SOLIDS) -> None:
        super().__init__()
        self.solids = list(solids)
        self.register_buffer("aabb", torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))

    def normalise_positions(self, positions):
        lo, hi = self.aabb[0], self.aabb[1]
        return (positions - lo) / (hi - lo) * 2.0 - 1.0

    def _which(self, unit):
        index = torch.full((len(unit),), -1, dtype=torch.long)
        for i, (lo, hi, *_rest) in enumerate(self.solids):
            inside = ((unit >= torch.tensor(lo)) & (unit <= torch.tensor(hi))).all(-1)
            index = torch.where(inside & (index < 0), torch.full_like(index, i), index)
        return index

    def density(self, unit):
        return (self._which(unit) >= 0).float()[:, None] * 200.0

    def rgb(self, unit, directions):
        colours = torch.tensor([s[4] for s in self.solids] + [(0.0, 0.0, 0.0)])
        return colours[self._which(unit)]

    def semantic_scores(self, unit):
        classes = torch.tensor([s[2] for s in self.solids] + [WALL])
        return 10.0 * nn.functional.one_hot(classes[self._which(unit)] - 1, TABLE.num_classes).float()

    def instance_scores(self, unit):
        ids = torch.tensor([max(s[3], 1) for s in self.solids] + [1])
        return 10.0 * nn.functional.one_hot(ids[self._which(unit)] - 1, K).float()


def make_model(frame: DatasetFrame = DatasetFrame.identity(), occupancy: int = 32, solids=SOLIDS):
    config = PanopticLiftingModelConfig(
        init_resolution=8, final_resolution=8, upsampling_iters=(), num_samples=192, density_components=2,
        color_components=2, semantic_mlp_layers=1, semantic_mlp_width=8, instance_mlp_layers=1, instance_mlp_width=8,
        num_surrogate_ids=K, implementation="torch", occupancy_grid_resolution=occupancy, background_color="black",
        edit_region_resolution=64,
    )
    box = SceneBox(aabb=torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))
    metadata = {CLASS_TABLE_METADATA_KEY: TABLE, DATASET_FRAME_METADATA_KEY: frame}
    model = config.setup(scene_box=box, num_train_data=1, metadata=metadata)
    model.field = BoxesField(solids)
    model.view_cameras = camera()  # instance regions from what this view sees (the pipeline sets the training views)
    if model.occupancy is not None:  # as after training: cells without density are skipped
        model.occupancy.update(model.field.density, 2.0 / 192, 1e-3)
        assert 0.2 < float(model.occupancy.occupied.float().mean()) < 0.8
    model.eval()
    return model


def camera() -> Cameras:
    """Looking from the front, above the floor, down onto the chair and the sofa, the wall behind them."""
    position = np.array([0.0, -0.95, 0.3])
    forward = np.array([0.0, 0.6, -0.55]) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    c2w = torch.tensor(np.stack([right, up, -forward, position], axis=1), dtype=torch.float32)
    return Cameras(camera_to_worlds=c2w[None], fx=40.0, fy=40.0, cx=32.0, cy=24.0, width=64, height=48,
                   camera_type=CameraType.PERSPECTIVE)


def render(model):
    with torch.no_grad():
        out = model.get_outputs_for_camera(camera())
    bundle = camera().generate_rays(camera_indices=0)
    points = bundle.origins + bundle.directions * out["depth"]
    return out, points


def inside(points: torch.Tensor, lo, hi, pad: float = 0.03) -> torch.Tensor:
    return ((points >= torch.tensor(lo) - pad) & (points <= torch.tensor(hi) + pad)).all(-1)


def edits(*entries) -> dict:
    return {"version": 1, "up": [0, 0, 1], "edits": list(entries)}


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


# ---------------------------------------------------------------------- the viewer's editing session and panel
def ray_to(target) -> tuple:
    origin = np.array([0.0, -0.95, 0.3])
    direction = np.asarray(target, dtype=np.float64) - origin
    return tuple(origin), tuple(direction / np.linalg.norm(direction))


CHAIR_CENTRE = (-0.325, 0.075, -0.5)


def test_clicking_selects_the_object_under_the_pixel_and_refuses_to_edit_stuff() -> None:
    from plift_nerfstudio.editing.session import EditingSession

    session = EditingSession(make_model())
    pick = session.pick(*ray_to(CHAIR_CENTRE))
    assert (pick.class_name, pick.instance_id, pick.is_thing) == ("chair", CHAIR_INSTANCE, True)
    assert "chair, id 2, size 0.2" in pick.describe(session)  # 0.25 x 0.25 x 0.35, as far as the view sees it
    floor = session.pick(*ray_to((0.6, -0.5, -0.7)))
    assert floor.class_name == "floor" and not floor.is_thing and "cannot be edited" in floor.describe(session)
    with pytest.raises(ValueError, match="cannot be edited"):
        session.hide()


def test_session_hides_isolates_places_a_copy_undoes_and_saves(tmp_path: Path) -> None:
    from plift_nerfstudio.editing.session import EditingSession

    model = make_model()
    session = EditingSession(model)
    session.pick(*ray_to(CHAIR_CENTRE))
    session.hide()
    out, _ = render(model)
    assert not (out["instance_id"] == CHAIR_INSTANCE).any()
    session.undo()
    assert model.edited is None

    session.toggle_isolate()  # only the chair is left: every other pixel renders nothing
    out, _ = render(model)
    visible = out["accumulation"][..., 0] > 0.5
    assert visible.any() and (out["instance_id"][..., 0][visible] == CHAIR_INSTANCE).all()
    session.toggle_isolate()

    session.duplicate()
    shift = (-0.45, 0.35, 0.0)
    session.place(shift, 0.0)
    out, points = render(model)
    copy = out["instance_id"][..., 0] == K + 1
    lo, hi = np.array(SOLIDS[2][0]), np.array(SOLIDS[2][1])
    assert copy.sum() > 15 and inside(points[copy], lo + shift, hi + shift).all()

    first = session.save(tmp_path / "edits.json")
    second = session.save(tmp_path / "edits.json")  # never replaces a file
    assert (first.name, second.name) == ("edits.json", "edits-2.json")
    saved = load_edit_list(first)
    assert [e.op for e in saved.edits] == ["duplicate"] and saved.edits[0].transform.translation == shift
    assert saved.edits[0].transform.pivot is not None and saved.up is not None  # explicit for plift-edit
    session.reset()
    assert model.edited is None and not session.edits


def test_viewer_panel_is_found_by_nerfstudios_viewer_and_drives_the_session(tmp_path: Path, monkeypatch) -> None:
    from nerfstudio.viewer.utils import parse_object
    from nerfstudio.viewer.viewer_elements import ViewerControl, ViewerElement, ViewerRGB

    model = make_model()
    elements = dict(parse_object(model, ViewerElement, "Custom Elements"))
    legend = [e for e in elements.values() if isinstance(e, ViewerRGB)]
    assert len(legend) == TABLE.num_classes and any("chair (thing)" in e.name for e in legend)
    assert [e for _, e in parse_object(model, ViewerControl, "Custom Elements")] == [model.panoptic_panel.viewer_control]
    names = [e.name for path, e in sorted(elements.items()) if "legend" not in path]
    assert names[:5] == ["Select an object (then click it)", "Selected", "Hide (delete)", "Isolate / show all", "Duplicate"]

    panel = model.panoptic_panel
    assert "chair, id 2" in panel.select(*ray_to(CHAIR_CENTRE))
    panel.p03_hide.cb_hook(panel.p03_hide)
    assert [e.op for e in panel.session.edits] == ["delete"]
    panel.p10_undo.cb_hook(panel.p10_undo)  # the status says what happened, not what the last edit did
    assert not panel.session.edits and panel.p14_status.value == "undid the delete of instance 2 (0 edits)"
    panel.p10_undo.cb_hook(panel.p10_undo)
    assert panel.p14_status.value == "nothing to undo"
    panel.p03_hide.cb_hook(panel.p03_hide)
    panel.p11_reset.cb_hook(panel.p11_reset)
    assert panel.p14_status.value.startswith("reset: 1 edits dropped")
    panel.p06_move_x.cb_hook(panel.p06_move_x)  # a slider reporting the value code set: no edit
    assert not panel.session.edits
    panel.p05_duplicate.cb_hook(panel.p05_duplicate)
    panel.p07_move_y.value = 0.3
    panel.p07_move_y.cb_hook(panel.p07_move_y)
    assert panel.session.edits[-1].transform.translation[1] == 0.3
    monkeypatch.chdir(tmp_path)
    panel.p13_save.cb_hook(panel.p13_save)
    assert "saved 1 edits" in panel.p14_status.value and (tmp_path / "edits.json").is_file()
    panel.select(*ray_to((0.6, -0.5, -0.7)))  # the floor
    panel.p03_hide.cb_hook(panel.p03_hide)
    assert panel.p14_status.value.startswith("not done:") and "cannot be edited" in panel.p14_status.value


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


def test_a_panel_press_stops_the_render_in_progress_instead_of_waiting_for_it(tmp_path: Path, monkeypatch) -> None:
    """nerfstudio runs a panel callback only under the lock its render thread holds for a whole render (20-25 s at
    512 pixels on a two-core CPU): the press must interrupt that render, as a camera move does."""
    import threading
    import time
    from types import SimpleNamespace

    model = make_model()
    panel = model.panoptic_panel
    lock = threading.Lock()
    machine = SimpleNamespace(interrupt_render_flag=False)
    panel.viewer_control.viewer = SimpleNamespace(train_lock=lock, render_statemachines={0: machine},
                                                  _trigger_rerender=lambda: None)

    class Handle:  # the part of viser's button handle that nerfstudio's ViewerButton uses
        def __init__(self) -> None:
            self.clicks = []

        def on_click(self, func):
            self.clicks.append(func)

    server = SimpleNamespace(gui=SimpleNamespace(add_button=lambda **_: Handle()))
    button = panel.p13_save
    button.install(server)
    unlocked = button.cb_hook

    def locked(element):  # what nerfstudio's viewer does to every panel callback after install
        with lock:
            unlocked(element)
    button.cb_hook = locked

    rendering, released = threading.Event(), []

    def render() -> None:  # holds the lock until interrupted (nerfstudio's check_interrupt) or for 30 s
        with lock:
            rendering.set()
            end = time.time() + 30
            while not machine.interrupt_render_flag and time.time() < end:
                time.sleep(0.01)
            released.append(time.time())

    monkeypatch.chdir(tmp_path)
    thread = threading.Thread(target=render)
    thread.start()
    rendering.wait(5)
    start = time.time()
    for click in button.gui_handle.clicks:
        click(None)
    waited = time.time() - start
    thread.join()
    assert waited < 10 and released[0] - start < 10, f"the press waited {waited:.1f} s for the render"
    assert (tmp_path / "edits.json").is_file() and panel.p14_status.value.startswith("saved 0 edits")

    # no render in progress: nothing is interrupted (the next render's first frame would be dropped)
    machine.interrupt_render_flag = False
    for click in button.gui_handle.clicks:
        click(None)
    assert not machine.interrupt_render_flag
