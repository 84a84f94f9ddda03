"""The plugin's panel in nerfstudio's viewer: class legend, click-to-select, and editing buttons and sliders.

nerfstudio's viewer collects the ``ViewerElement`` attributes of the model (and of its submodules, in attribute-name
order) into its control panel, and set ups ``ViewerControl`` objects, whose click events select an object here.
Every button calls :class:`~plift_nerfstudio.editing.session.EditingSession`; the render updates after each change.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np

from nerfstudio.viewer.viewer_elements import (
    ViewerButton,
    ViewerClick,
    ViewerControl,
    ViewerRGB,
    ViewerSlider,
    ViewerText,
)
from nerfstudio.utils.rich_utils import CONSOLE
from torch import nn

from plift_nerfstudio.editing.session import EditingSession, Target
from plift_nerfstudio.core.errors import UserFileError

DEFAULT_SAVE_PATH = "edits.json"
SLIDER_GESTURE_SECONDS = 1.0
"""Slider changes of one target less than this apart are one drag: one step of undo (viser reports a drag as a stream
of values and no release)."""


def _log(text: str) -> None:
    """One line in ns-viewer's console (dim, no markup, not wrapped)."""
    CONSOLE.print(text, style="dim", markup=False, highlight=False, soft_wrap=True)


class PanelButton(ViewerButton):
    """A button whose press first stops the render in progress.

    nerfstudio runs a panel callback only once the render thread lets go of the viewer's lock, and a full-resolution
    render takes 20-25 s on a two-core CPU: without this a press waited for it, or for several in a row (over 40 s in CI)."""

    def __init__(self, name: str, cb_hook: Callable, on_press: Callable[[], None]) -> None:
        super().__init__(name, cb_hook)
        self._on_press = on_press

    def install(self, viser_server) -> None:
        self._create_gui_handle(viser_server)
        assert self.gui_handle is not None
        # cb_hook is looked up at press time: the viewer wraps it (lock, then a rerender) after install
        self.gui_handle.on_click(lambda _: (self._on_press(), self.cb_hook(self)))


class ClassLegend(nn.Module):
    """One colour swatch per class (the semantics and panoptic outputs' colours); thing classes are marked."""

    def __init__(self, class_table) -> None:
        super().__init__()
        for index, (name, thing, colour) in enumerate(zip(class_table.names, class_table.is_thing, class_table.colors)):
            label = f"{index + 1} {name}" + (" (thing)" if thing else "")
            setattr(self, f"class_{index + 1:03d}", ViewerRGB(label, tuple(int(c) for c in colour), disabled=True,
                                                              hint="class colour in the semantics/panoptic outputs"))


class PanopticViewerPanel(nn.Module):
    """Viewer controls of a panoptic model. Holds no parameters (nothing of it is saved in checkpoints)."""

    def __init__(self, model) -> None:
        super().__init__()
        self._session = EditingSession(model)
        self._code_slider_values: Optional[Tuple[float, float, float, float]] = None  # what code last set
        self._code_updates_pending = 0  # slider callbacks viser still owes for values code set
        self._slider_target: Optional[Target] = None  # the target of the last slider change, and when it came
        self._slider_time = -float("inf")
        extent = float((model.field.aabb[1] - model.field.aabb[0]).max()) / model.dataset_frame.scale
        reach = round(max(extent, 0.1), 2)
        self.p01_pick = self._button("Select an object (then click it)", self._arm_click)
        self.p02_selected = ViewerText("Selected", "nothing selected", disabled=True,
                                       hint="class, instance id and size of the object under the clicked pixel")
        self.p03_its_edit = ViewerText("Its edit", "-", disabled=True,
                                       hint="what the edits do to the selection now: in place, hidden, moved (offset and "
                                            "turn), or which copy it is; the sliders start from it")
        self.p04_hide = self._button("Hide (delete)", self._hide)
        self.p05_isolate = self._button("Isolate / show all", self._isolate)
        self.p06_duplicate = self._button("Duplicate", self._duplicate)
        slider = self._call(self._place, log_answers=False)
        self.p07_move_x = ViewerSlider("Move x", 0.0, -reach, reach, 0.01, cb_hook=slider,
                                       hint="offset of the selected object (or copy) from the original's place, dataset "
                                            "frame")
        self.p08_move_y = ViewerSlider("Move y", 0.0, -reach, reach, 0.01, cb_hook=slider)
        self.p09_move_z = ViewerSlider("Move z", 0.0, -reach, reach, 0.01, cb_hook=slider)
        self.p10_turn = ViewerSlider("Turn about up (deg)", 0.0, -180.0, 180.0, 1.0, cb_hook=slider)
        self.p11_undo = self._button("Undo", self._undo)
        self.p12_redo = self._button("Redo", self._redo)
        self.p13_reset = self._button("Reset all edits", self._reset)
        self.p14_save_path = ViewerText("Save edits to", DEFAULT_SAVE_PATH,
                                        hint="edit list file for plift-edit (an existing file is never replaced)")
        self.p15_save = self._button("Save edit list", self._save)
        self.p16_status = ViewerText("Status", "", disabled=True)
        self.p17_view = ViewerSlider("Training view", 0, 0, max(1, model.num_train_data - 1), 1,
                                     hint="index of a training camera")
        self.p18_go_to_view = self._button("Go to training view", self._go_to_view)
        self.p99_legend = ClassLegend(model.class_table)
        self.viewer_control = ViewerControl()

    @property
    def session(self) -> EditingSession:
        return self._session

    # ------------------------------------------------------------------ callbacks
    def _button(self, label: str, action: Callable) -> ViewerButton:
        """A button whose presses ns-viewer's console lists as they arrive (before the render lock), then what the
        panel answered."""
        def on_press() -> None:
            _log(f"panel: pressed {label!r}")
            self._stop_render()
        return PanelButton(label, self._call(action, log_answers=True), on_press=on_press)

    def _call(self, action: Callable, log_answers: bool = False) -> Callable:
        def callback(_element) -> None:
            try:
                result = action()
            except (ValueError, UserFileError, OSError) as err:
                self._status(f"not done: {err}")
                if log_answers:
                    _log(f"panel: not done: {err}")
                return
            except Exception as err:  # a viewer callback's error would otherwise vanish in viser's thread
                CONSOLE.print_exception()
                self._status(f"failed: {type(err).__name__}: {err}")
                return
            if result is None:  # nothing happened (a slider reporting back a value code set)
                return
            self._status(result)
            if log_answers:
                _log(f"panel: {result}")
            self._show_selection()
            self._rerender()
        return callback

    def _arm_click(self) -> str:
        self.viewer_control.register_pointer_cb("click", self._on_click)
        return "click an object in the render"

    def _on_click(self, click: ViewerClick) -> None:
        CONSOLE.print(f"[dim]viewer click: origin {tuple(round(v, 3) for v in click.origin)}, direction "
                      f"{tuple(round(v, 3) for v in click.direction)}")
        try:
            self.viewer_control.unregister_pointer_cb()
        except Exception:  # noqa: BLE001 - the viewer may already have dropped it
            pass
        try:
            self.select(click.origin, click.direction)
        except Exception as err:  # a viewer callback's error would otherwise vanish in viser's thread
            CONSOLE.print_exception()
            self._status(f"selection failed: {type(err).__name__}: {err}")

    def select(self, origin, direction) -> str:
        """Select what the ray renders (the panel's texts and sliders follow)."""
        pick = self._session.pick(origin, direction)
        self._slider_target = None
        self._show_selection()
        self._status(f"selected: {pick.describe(self._session)}")
        _log(f"panel: selected {pick.describe(self._session)}")
        self._rerender()
        return self.p02_selected.value

    def _show_selection(self) -> None:
        """The selection's texts, and sliders set to where it stands now (zero when in place or hidden)."""
        pick = self._session.selected
        target = pick.target if pick is not None else None
        self.p02_selected.value = pick.describe(self._session) if pick is not None else "nothing selected"
        self.p03_its_edit.value = self._session.describe_edit(target)
        transform = self._session.placement(target) if target is not None else None
        values = (0.0, 0.0, 0.0, 0.0) if transform is None else (*transform.translation, transform.rotation_deg)
        current = (self.p07_move_x.value, self.p08_move_y.value, self.p09_move_z.value, self.p10_turn.value)
        if tuple(float(v) for v in current) != tuple(float(v) for v in values):
            self._set_sliders(*values)

    def _hide(self) -> str:
        answer = self._session.hide()
        return f"{answer} ({len(self._session.edits)} edits)"

    def _isolate(self) -> str:
        isolated = self._session.toggle_isolate()
        if isolated is None:
            return "showing everything"
        return f"isolated {isolated.describe()}"

    def _undo(self) -> str:
        undone = self._session.undo()
        if undone is None:
            return "nothing to undo"
        return f"undid {undone} ({len(self._session.edits)} edits)"

    def _redo(self) -> str:
        redone = self._session.redo()
        if redone is None:
            return "nothing to redo"
        return f"redid {redone} ({len(self._session.edits)} edits)"

    def _reset(self) -> str:
        dropped = self._session.reset()
        return f"reset: {dropped} edits dropped, everything shown"

    def _duplicate(self) -> str:
        copy = self._session.duplicate()
        return f"made {copy.describe()} (id {self._session.copy_id(copy)}); the sliders place it"

    def _place(self) -> Optional[str]:
        values = tuple(float(v) for v in (self.p07_move_x.value, self.p08_move_y.value, self.p09_move_z.value,
                                          self.p10_turn.value))
        if self._code_updates_pending > 0:
            if values == self._code_slider_values:
                self._code_updates_pending -= 1  # viser reporting back what code set
                return None
            self._code_updates_pending = 0  # the user moved a slider since
        pick = self._session.selected
        if pick is None or pick.target is None:
            if values == (0.0, 0.0, 0.0, 0.0):
                return None
            raise ValueError("select an object first (click it), then move the sliders")
        now = time.monotonic()
        continuing = self._slider_target == pick.target and now - self._slider_time < SLIDER_GESTURE_SECONDS
        target = self._session.place(values[:3], values[3], continuing=continuing)
        self._slider_target, self._slider_time = target, now
        return f"placed {target.describe()}: offset {tuple(round(v, 2) for v in values[:3])}, turn {values[3]:.0f} deg"

    def _save(self) -> str:
        path = self._session.save(Path(self.p14_save_path.value or DEFAULT_SAVE_PATH))
        return f"saved {len(self._session.edits)} edits to {path.resolve()}"

    def _go_to_view(self) -> str:
        """Put every browser's camera where a training camera was (as clicking its frustum does)."""
        import viser.transforms as vtf
        from nerfstudio.viewer.viewer import VISER_NERFSTUDIO_SCALE_RATIO

        cameras = self._session.model.view_cameras
        if cameras is None:
            raise ValueError("this model does not know its training cameras")
        index = int(self.p17_view.value)
        if not 0 <= index < len(cameras):
            raise ValueError(f"training view {index} does not exist (0..{len(cameras) - 1})")
        c2w = cameras.camera_to_worlds[index].cpu().numpy()
        rotation = vtf.SO3.from_matrix(c2w[:3, :3]) @ vtf.SO3.from_x_radians(np.pi)
        server = getattr(self.viewer_control, "viser_server", None)
        if server is None:
            raise ValueError("the viewer is not running")
        for client in server.get_clients().values():
            with client.atomic():
                client.camera.wxyz = rotation.wxyz
                client.camera.position = c2w[:3, 3] * VISER_NERFSTUDIO_SCALE_RATIO
        return f"at training view {index}"

    # ------------------------------------------------------------------ helpers
    def _set_sliders(self, x: float, y: float, z: float, turn: float) -> None:
        """Set the sliders from code; viser reports each value back through the slider's callback later, which
        ``_place`` then ignores."""
        self._code_slider_values = (float(x), float(y), float(z), float(turn))
        sliders = (self.p07_move_x, self.p08_move_y, self.p09_move_z, self.p10_turn)
        self._code_updates_pending += sum(1 for s in sliders if s.gui_handle is not None)
        self.p07_move_x.value, self.p08_move_y.value, self.p09_move_z.value = float(x), float(y), float(z)
        self.p10_turn.value = float(turn)

    def _status(self, text: str) -> None:
        self.p16_status.value = text

    def _stop_render(self) -> None:
        """Interrupt the viewer's render in progress (nerfstudio's own way, as a camera move does): the press's callback
        gets the render lock at the render's next Python line, and the callback's rerender starts a fresh one."""
        viewer = getattr(self.viewer_control, "viewer", None)
        lock = getattr(viewer, "train_lock", None)
        if viewer is None or (lock is not None and not lock.locked()):
            return  # nothing renders now (a flag set now would drop the next render's first frame)
        for machine in list(getattr(viewer, "render_statemachines", {}).values()):
            machine.interrupt_render_flag = True

    def _rerender(self) -> None:
        viewer = getattr(self.viewer_control, "viewer", None)
        if viewer is not None:
            viewer._trigger_rerender()
