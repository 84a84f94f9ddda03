"""Editing in the viewer, without a browser: the session that picks, hides, isolates, duplicates, places, undoes and
redoes (``editing/session.py``) and the panel's buttons and sliders over it (``editing/viewer_panel.py``), on the
hand-made field of ``boxes_scene``. An instance is (surrogate id, class) here too: a scene where a chair and a sofa
share a surrogate id checks that every action keeps them apart.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from boxes_scene import (
    CHAIR,
    CHAIR_CENTRE,
    CHAIR_INSTANCE,
    K,
    SOFA,
    SOLIDS,
    TABLE,
    edits,
    inside,
    make_model,
    ray_to,
    render,
)
from plift_nerfstudio.editing import viewer_panel
from plift_nerfstudio.editing.edit_list import load_edit_list, parse_edit_list
from plift_nerfstudio.editing.session import EditingSession, Target

SHARED = 2  # the surrogate id the chair and the sofa share in SHARED_SOLIDS
SHARED_SOLIDS = [SOLIDS[0], SOLIDS[1], SOLIDS[2], (*SOLIDS[3][:3], SHARED, SOLIDS[3][4])]
SOFA_TOP = (0.3, 0.15, -0.46)
FLOOR_POINT = (0.6, -0.5, -0.7)
CHAIR_BOX = (np.array(SOLIDS[2][0]), np.array(SOLIDS[2][1]))
SOFA_BOX = (np.array(SOLIDS[3][0]), np.array(SOLIDS[3][1]))


def pair_pixels(out, instance_id: int, class_id: int) -> torch.Tensor:
    return (out["instance_id"][..., 0] == instance_id) & (out["semantic_id"][..., 0] == class_id)


def press(element) -> None:
    """What the viewer does when a button is pressed or a slider reports a value."""
    element.cb_hook(element)


def slide(element, value: float) -> None:
    element.value = value
    press(element)


def test_clicking_selects_the_object_under_the_pixel_and_refuses_to_edit_stuff() -> None:
    session = EditingSession(make_model())
    pick = session.pick(*ray_to(CHAIR_CENTRE))
    assert (pick.class_name, pick.instance_id, pick.is_thing) == ("chair", CHAIR_INSTANCE, True)
    assert "chair, id 2, size 0.2" in pick.describe(session)  # 0.25 x 0.25 x 0.35, as far as the view sees it
    floor = session.pick(*ray_to((0.6, -0.5, -0.7)))
    assert floor.class_name == "floor" and not floor.is_thing and "cannot be edited" in floor.describe(session)
    with pytest.raises(ValueError, match="cannot be edited"):
        session.hide()


def test_session_hides_isolates_places_a_copy_undoes_and_saves(tmp_path: Path) -> None:
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

    copy = session.duplicate()  # the copy is selected: the placement moves it
    assert copy == Target(CHAIR_INSTANCE, "chair", 0) and session.selected.target == copy
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
    assert names[:6] == ["Select an object (then click it)", "Selected", "Its edit", "Hide (delete)", "Isolate / show all",
                         "Duplicate"]

    panel = model.panoptic_panel
    assert "chair, id 2" in panel.select(*ray_to(CHAIR_CENTRE))
    assert panel.p03_its_edit.value == "chair 2: in place"
    press(panel.p04_hide)
    assert [e.op for e in panel.session.edits] == ["delete"] and panel.p03_its_edit.value == "chair 2: hidden"
    assert panel.p16_status.value == "hidden: chair 2 (1 edits)"
    press(panel.p11_undo)  # the status says what was undone
    assert not panel.session.edits and panel.p16_status.value == "undid the hiding of chair 2 (0 edits)"
    press(panel.p11_undo)
    assert panel.p16_status.value == "nothing to undo"
    press(panel.p12_redo)
    assert [e.op for e in panel.session.edits] == ["delete"] and panel.p16_status.value.startswith("redid the hiding")
    press(panel.p13_reset)
    assert panel.p16_status.value.startswith("reset: 1 edits dropped")
    press(panel.p07_move_x)  # a slider reporting the value it has: no edit
    assert not panel.session.edits
    press(panel.p06_duplicate)  # one chair width (as the views see it) along x, plus a tenth
    offset = panel.session.edits[-1].transform.translation[0]
    assert 0.27 < offset < 0.35 and panel.p07_move_x.value == offset
    assert panel.p03_its_edit.value == f"copy 1 of chair 2, id 7: offset ({round(offset, 2)}, 0.0, 0.0), turn 0 deg"
    slide(panel.p08_move_y, 0.3)
    assert panel.session.edits[-1].transform.translation == (offset, 0.3, 0.0)
    monkeypatch.chdir(tmp_path)
    press(panel.p15_save)
    assert "saved 1 edits" in panel.p16_status.value and (tmp_path / "edits.json").is_file()
    panel.select(*ray_to(FLOOR_POINT))
    press(panel.p04_hide)
    assert panel.p16_status.value.startswith("not done:") and "cannot be edited" in panel.p16_status.value
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
    button = panel.p15_save
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
    assert (tmp_path / "edits.json").is_file() and panel.p16_status.value.startswith("saved 0 edits")

    # no render in progress: nothing is interrupted (the next render's first frame would be dropped)
    machine.interrupt_render_flag = False
    for click in button.gui_handle.clicks:
        click(None)
    assert not machine.interrupt_render_flag


# ---------------------------------------------------------------------- one identity: (surrogate id, class)
def test_a_chair_and_a_sofa_sharing_a_surrogate_id_are_edited_apart(tmp_path: Path) -> None:
    model = make_model(solids=SHARED_SOLIDS)
    session = EditingSession(model)
    assert session.pick(*ray_to(CHAIR_CENTRE)).target == Target(SHARED, "chair")
    session.hide()
    assert session.pick(*ray_to(SOFA_TOP)).target == Target(SHARED, "sofa")
    assert session.hide() == "hidden: sofa 2"  # not swallowed by the chair's deletion
    assert [(e.op, e.key) for e in session.edits] == [("delete", (SHARED, "chair")), ("delete", (SHARED, "sofa"))]
    out, _ = render(model)
    assert not pair_pixels(out, SHARED, CHAIR).any() and not pair_pixels(out, SHARED, SOFA).any()
    saved = load_edit_list(session.save(tmp_path / "edits.json"))  # both deletions: a valid edit list
    assert [e.key for e in saved.edits] == [(SHARED, "chair"), (SHARED, "sofa")]

    session.undo()  # the sofa is back; the chair stays hidden
    session.pick(*ray_to(SOFA_TOP))
    shift = (-0.1, -0.45, 0.0)
    session.place(shift, 0.0)  # moves the sofa, not the chair
    assert [(e.op, e.key) for e in session.edits] == [("delete", (SHARED, "chair")), ("move", (SHARED, "sofa"))]
    out, points = render(model)
    sofa = pair_pixels(out, SHARED, SOFA)
    assert sofa.sum() > 30 and inside(points[sofa], SOFA_BOX[0] + shift, SOFA_BOX[1] + shift, pad=0.05).all()
    assert not pair_pixels(out, SHARED, CHAIR).any()


def test_an_edit_list_acting_on_both_objects_of_one_surrogate_id_is_accepted() -> None:
    model = make_model(solids=SHARED_SOLIDS)
    model.apply_edits(parse_edit_list(edits({"op": "delete", "instance_id": SHARED, "class": "chair"},
                                            {"op": "move", "instance_id": SHARED, "class": "sofa",
                                             "transform": {"translation": [-0.1, -0.45, 0.0]}})))
    out, points = render(model)
    sofa = pair_pixels(out, SHARED, SOFA)
    assert not pair_pixels(out, SHARED, CHAIR).any()
    shift = (-0.1, -0.45, 0.0)  # its back edge blends with the wall far behind: points within 5 cm
    assert sofa.sum() > 30 and inside(points[sofa], SOFA_BOX[0] + shift, SOFA_BOX[1] + shift, pad=0.05).all()


# ---------------------------------------------------------------------- the panel keeps placements
def test_reselecting_a_moved_object_shows_its_placement_and_a_slider_move_composes_with_it() -> None:
    model = make_model()
    panel = model.panoptic_panel
    panel.select(*ray_to(CHAIR_CENTRE))
    slide(panel.p07_move_x, -0.2)
    slide(panel.p10_turn, 90.0)
    assert panel.session.placement(Target(CHAIR_INSTANCE, "chair")).translation == (-0.2, 0.0, 0.0)
    panel.select(*ray_to(SOFA_TOP))  # another object: the sliders follow it
    assert (panel.p07_move_x.value, panel.p10_turn.value) == (0.0, 0.0)
    moved_chair = tuple(np.array(CHAIR_CENTRE) + (-0.2, 0.0, 0.0))
    assert panel.select(*ray_to(moved_chair)).startswith("chair, id 2")
    assert (panel.p07_move_x.value, panel.p08_move_y.value, panel.p10_turn.value) == (-0.2, 0.0, 90.0)
    assert panel.p03_its_edit.value == "chair 2: moved: offset (-0.2, 0.0, 0.0), turn 90 deg"
    slide(panel.p08_move_y, 0.1)  # nudged: the rest of the placement stays
    transform = panel.session.placement(Target(CHAIR_INSTANCE, "chair"))
    assert (transform.translation, transform.rotation_deg) == ((-0.2, 0.1, 0.0), 90.0)


def test_a_duplicate_keeps_its_place_when_its_original_or_itself_is_reselected() -> None:
    model = make_model()
    panel = model.panoptic_panel
    panel.select(*ray_to(SOFA_TOP))
    press(panel.p06_duplicate)
    slide(panel.p07_move_x, 0.0)
    slide(panel.p08_move_y, -0.5)  # the copy stands in front of the sofa
    copy = Target(4, "sofa", 0)
    assert panel.session.placement(copy).translation == (0.0, -0.5, 0.0)
    panel.select(*ray_to(SOFA_TOP))  # the original: in place, its own sliders
    assert panel.session.selected.target == Target(4, "sofa")
    assert (panel.p07_move_x.value, panel.p08_move_y.value) == (0.0, 0.0)
    assert panel.p03_its_edit.value == "sofa 4: in place; 1 copy"
    assert panel.select(*ray_to((0.3, -0.35, -0.46))).startswith("sofa, id 7 (copy 1 of sofa 4)")  # click the copy
    assert (panel.p07_move_x.value, panel.p08_move_y.value) == (0.0, -0.5)
    slide(panel.p10_turn, 30.0)
    transform = panel.session.placement(copy)
    assert (transform.translation, transform.rotation_deg) == ((0.0, -0.5, 0.0), 30.0)  # no snap back onto the sofa
    out, points = render(model)
    shown = out["instance_id"][..., 0] == K + 1
    centre = (SOFA_BOX[0] + SOFA_BOX[1]) / 2 + (0.0, -0.5, 0.0)
    assert shown.sum() > 30 and (points[shown][:, 1] < 0.05).all()  # still in front, turned in place
    assert np.abs(points[shown][:, 0].mean().item() - centre[0]) < 0.08


# ---------------------------------------------------------------------- undo and redo
def test_undo_restores_exactly_what_hide_and_place_replaced() -> None:
    model = make_model()
    session = EditingSession(model)
    session.pick(*ray_to(CHAIR_CENTRE))
    session.place((-0.2, 0.0, 0.0), 45.0)
    moved = session.edit_list()
    session.hide()  # replaces the move by a deletion
    assert [e.op for e in session.edits] == ["delete"]
    assert session.undo() == "the hiding of chair 2"
    assert session.edit_list() == moved  # the move is back, not an object left hidden
    session.hide()
    session.place((0.1, 0.0, 0.0), 0.0)  # shows it again, moved
    assert [e.op for e in session.edits] == ["move"]
    session.undo()
    assert [e.op for e in session.edits] == ["delete"]  # hidden again, not shown in place
    session.reset()
    session.undo()
    assert [e.op for e in session.edits] == ["delete"]  # reset is one step too
    session.redo()
    assert not session.edits


def test_a_slider_drag_is_one_step_of_undo(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(viewer_panel.time, "monotonic", lambda: clock[0])
    model = make_model()
    panel = model.panoptic_panel
    panel.select(*ray_to(SOFA_TOP))
    press(panel.p06_duplicate)
    offset = panel.session.edits[0].transform.translation[0]
    for value in (-0.1, -0.2, -0.3, -0.4):  # one drag: updates 0.1 s apart
        clock[0] += 0.1
        slide(panel.p08_move_y, value)
    clock[0] += 5.0
    slide(panel.p07_move_x, 0.1)  # a second drag, after a pause
    press(panel.p11_undo)
    assert panel.session.edits[0].transform.translation == (offset, -0.4, 0.0)
    assert (panel.p07_move_x.value, panel.p08_move_y.value) == (offset, -0.4)  # the sliders follow the undo
    press(panel.p11_undo)  # the whole first drag
    assert panel.session.edits[0].transform.translation == (offset, 0.0, 0.0)
    press(panel.p11_undo)  # the duplication; the selection goes back to the sofa itself
    assert not panel.session.edits and panel.session.selected.target == Target(4, "sofa")


@pytest.mark.parametrize("seed", range(6))
def test_any_sequence_of_panel_actions_is_undone_and_redone_exactly(seed: int, monkeypatch) -> None:
    """Random clicks (the chair and the sofa of one surrogate id, the floor, copies in front), hides, isolations,
    duplications, slider drags and resets; as many undos give the initial state back, as many redos the final one."""
    rng = random.Random(seed)
    clock = [0.0]
    monkeypatch.setattr(viewer_panel.time, "monotonic", lambda: clock[0])
    model = make_model(solids=SHARED_SOLIDS)
    panel, session = model.panoptic_panel, model.panoptic_panel.session
    before, _ = render(model)
    sliders = (panel.p07_move_x, panel.p08_move_y, panel.p09_move_z, panel.p10_turn)
    clicks = (CHAIR_CENTRE, SOFA_TOP, FLOOR_POINT, (0.3, -0.35, -0.46), (-0.33, -0.3, -0.5))
    actions = 0
    for _ in range(14):
        clock[0] += 5.0  # each action its own gesture
        kind = rng.choice(["click", "click", "hide", "isolate", "duplicate", "drag", "drag", "drag", "reset"])
        if kind == "click":
            panel.select(*ray_to(rng.choice(clicks)))
            continue  # selecting is no edit
        actions += 1
        if kind == "drag":
            slider = rng.choice(sliders)
            for _ in range(rng.randint(1, 3)):
                clock[0] += 0.2
                slide(slider, round(rng.uniform(-60, 60) if slider is panel.p10_turn else rng.uniform(-0.5, 0.5), 2))
        else:
            press({"hide": panel.p04_hide, "isolate": panel.p05_isolate, "duplicate": panel.p06_duplicate,
                   "reset": panel.p13_reset}[kind])
    final = (session.edit_list().to_json_dict(), session.isolated)
    for _ in range(actions):
        press(panel.p11_undo)
    assert session.edit_list().to_json_dict()["edits"] == [] and session.isolated is None
    assert model.edited is None
    after, _ = render(model)
    assert torch.equal(after["rgb"], before["rgb"]) and torch.equal(after["instance_id"], before["instance_id"])
    for _ in range(actions):
        press(panel.p12_redo)
    assert (session.edit_list().to_json_dict(), session.isolated) == final
