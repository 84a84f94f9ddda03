"""The plugin's panel in nerfstudio's viewer: class legend, click-to-select, and editing buttons and sliders.

nerfstudio's viewer collects the ``ViewerElement`` attributes of the model (and of its submodules, in attribute-name
order) into its control panel, and set ups ``ViewerControl`` objects, whose click events select an object here.
Every button calls :class:`~plift_nerfstudio.editing.session.EditingSession`; the render updates after each change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

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

from plift_nerfstudio.editing.session import EditingSession
from plift_nerfstudio.errors import UserFileError

DEFAULT_SAVE_PATH = "edits.json"


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
        self._placing = False  # sliders being set by code, not by the user
        self._code_slider_values = (0.0, 0.0, 0.0, 0.0)  # what code last set (viser may report it back later)
        extent = float((model.field.aabb[1] - model.field.aabb[0]).max()) / model.dataset_frame.scale
        reach = round(max(extent, 0.1), 2)
        self.p01_pick = self._button("Select an object (then click it)", self._arm_click)
        self.p02_selected = ViewerText("Selected", "nothing selected", disabled=True,
                                       hint="class, instance id and size of the object under the clicked pixel")
        self.p03_hide = self._button("Hide (delete)", self._hide)
        self.p04_isolate = self._button("Isolate / show all", self._isolate)
        self.p05_duplicate = self._button("Duplicate", self._duplicate)
        self.p06_move_x = ViewerSlider("Move x", 0.0, -reach, reach, 0.01, cb_hook=self._call(self._place, rerender_only_if_placing=True),
                                       hint="offset of the selected object's copy (or of the object) in the dataset frame")
        self.p07_move_y = ViewerSlider("Move y", 0.0, -reach, reach, 0.01, cb_hook=self._call(self._place, rerender_only_if_placing=True))
        self.p08_move_z = ViewerSlider("Move z", 0.0, -reach, reach, 0.01, cb_hook=self._call(self._place, rerender_only_if_placing=True))
        self.p09_turn = ViewerSlider("Turn about up (deg)", 0.0, -180.0, 180.0, 1.0,
                                     cb_hook=self._call(self._place, rerender_only_if_placing=True))
        self.p10_undo = self._button("Undo last edit", self._undo)
        self.p11_reset = self._button("Reset all edits", self._reset)
        self.p12_save_path = ViewerText("Save edits to", DEFAULT_SAVE_PATH,
                                        hint="edit list file for plift-edit (an existing file is never replaced)")
        self.p13_save = self._button("Save edit list", self._save)
        self.p14_status = ViewerText("Status", "", disabled=True)
        self.p15_view = ViewerSlider("Training view", 0, 0, max(1, model.num_train_data - 1), 1,
                                     hint="index of a training camera")
        self.p16_go_to_view = self._button("Go to training view", self._go_to_view)
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

    def _call(self, action: Callable, rerender_only_if_placing: bool = False, log_answers: bool = False) -> Callable:
        def callback(_element) -> None:
            if rerender_only_if_placing and self._placing:
                return
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
            if isinstance(result, str):
                self._status(result)
                if log_answers:
                    _log(f"panel: {result}")
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
        """Select what the ray renders (the panel's text and sliders follow)."""
        pick = self._session.pick(origin, direction)
        self.p02_selected.value = pick.describe(self._session)
        self._set_sliders(0.0, 0.0, 0.0, 0.0)
        self._status(f"selected: {pick.describe(self._session)}")
        self._rerender()
        return self.p02_selected.value

    def _hide(self) -> str:
        self._session.hide()
        pick = self._session.selected
        assert pick is not None
        return f"hidden: {pick.class_name} {pick.instance_id} ({len(self._session.edits)} edits)"

    def _isolate(self) -> str:
        isolated = self._session.toggle_isolate()
        if isolated is None:
            return "showing everything"
        return f"isolated instance {isolated[0]}"

    def _undo(self) -> str:
        undone = self._session.undo()
        if undone is None:
            return "nothing to undo"
        return f"undid the {undone.op} of instance {undone.instance_id} ({len(self._session.edits)} edits)"

    def _reset(self) -> str:
        dropped = self._session.reset()
        return f"reset: {dropped} edits dropped, everything shown"

    def _duplicate(self) -> str:
        edit = self._session.duplicate()
        assert edit.transform is not None
        self._set_sliders(*edit.transform.translation, edit.transform.rotation_deg)
        return f"duplicated instance {edit.instance_id}; the sliders place the copy"

    def _place(self) -> str:
        translation = (self.p06_move_x.value, self.p07_move_y.value, self.p08_move_z.value)
        if (*translation, self.p09_turn.value) == self._code_slider_values:
            return "sliders follow the selection"
        edit = self._session.place(translation, self.p09_turn.value)
        return f"{edit.op} of instance {edit.instance_id}: offset {tuple(round(v, 2) for v in translation)}, " \
               f"turn {self.p09_turn.value:.0f} deg"

    def _save(self) -> str:
        path = self._session.save(Path(self.p12_save_path.value or DEFAULT_SAVE_PATH))
        return f"saved {len(self._session.edits)} edits to {path.resolve()}"

    def _go_to_view(self) -> str:
        """Put every browser's camera where a training camera was (as clicking its frustum does)."""
        import viser.transforms as vtf
        from nerfstudio.viewer.viewer import VISER_NERFSTUDIO_SCALE_RATIO

        cameras = self._session.model.view_cameras
        if cameras is None:
            raise ValueError("this model does not know its training cameras")
        index = int(self.p15_view.value)
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
        self._placing = True
        self._code_slider_values = (x, y, z, turn)
        try:
            self.p06_move_x.value, self.p07_move_y.value, self.p08_move_z.value = x, y, z
            self.p09_turn.value = turn
        finally:
            self._placing = False

    def _status(self, text: str) -> None:
        self.p14_status.value = text

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
