"""What a person does to a trained scene with the mouse, without the mouse: pick the object under a pixel, hide,
isolate, duplicate or move it, undo and redo, and save the edits as an edit list ``plift-edit`` takes.

An instance is the pair (surrogate id, class), as everywhere else: with noisy labels one surrogate id is often
rendered as two classes (half chair, half sofa), and chair 3 and sofa 3 are then two objects, each edited on its own.
A copy made by 'Duplicate' can be clicked and placed, hidden or isolated like any object.

Every action (hide, isolate, duplicate, a placement, reset) is one step of history: undo restores exactly the state
before it (the edit list and what is isolated), redo the state after it. A run of placements of one target in a row
given as ``continuing`` (a slider being dragged) is one step.

The viewer panel (``viewer_panel.py``) is a thin layer of buttons and sliders over this; tests drive it directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from nerfstudio.cameras.rays import RayBundle

from plift_nerfstudio.editing.edit_list import Edit, EditList, RigidTransform
from plift_nerfstudio.editing.regions import InstanceRegion


@dataclass(frozen=True)
class Target:
    """What the buttons and sliders act on: an instance of the scene, or one copy 'Duplicate' made of it."""

    instance_id: int
    class_name: str
    copy: Optional[int] = None
    """None: the instance itself (moved or not); n: its n-th duplicate (0-based, in the edit list's order)."""

    @property
    def key(self) -> Tuple[int, str]:
        return (self.instance_id, self.class_name)

    def describe(self) -> str:
        name = f"{self.class_name} {self.instance_id}"
        return name if self.copy is None else f"copy {self.copy + 1} of {name}"


@dataclass(frozen=True)
class EditState:
    """What undo and redo restore: the edits, and the target shown alone (None: everything is shown)."""

    edits: Tuple[Edit, ...] = ()
    isolated: Optional[Target] = None


@dataclass(frozen=True)
class Pick:
    """What the ray through a clicked pixel renders."""

    class_id: int  # 0: void (the ray saw nothing)
    class_name: str
    is_thing: bool
    instance_id: int  # as rendered: 0 for stuff and void, a copy's own id for a copy
    depth: float
    region: Optional[InstanceRegion]  # model frame, of the instance (of its original, for a copy); None: not editable
    target: Optional[Target] = None  # what the edits act on; None for stuff, void and instances without a region

    def describe(self, session: "EditingSession") -> str:
        if self.class_id == 0:
            return "nothing here (void)"
        if not self.is_thing:
            return f"{self.class_name} (stuff class {self.class_id}): cannot be edited"
        if self.target is None or self.region is None:
            return f"{self.class_name}, id {self.instance_id}: not found in the training views, cannot be edited"
        size = session.size_in_dataset_frame(self.region)
        copy = f" (copy {self.target.copy + 1} of {self.class_name} {self.target.instance_id})" \
            if self.target.copy is not None else ""
        return (f"{self.class_name}, id {self.instance_id}{copy}, size {size[0]:.2f} x {size[1]:.2f} x {size[2]:.2f} "
                "(dataset units)")


@dataclass(frozen=True)
class _Step:
    before: EditState
    after: EditState
    what: str


class EditingSession:
    """Edits of one model, applied as they are made, with undo and redo."""

    def __init__(self, model) -> None:
        self.model = model
        self.state = EditState()
        self.selected: Optional[Pick] = None
        self._undo: List[_Step] = []
        self._redo: List[_Step] = []
        self._gesture: Optional[Target] = None  # the target of the placement in progress (its history step is open)
        self._regions: Optional[Dict[Tuple[int, int], InstanceRegion]] = None
        self._regions_step: Optional[int] = None

    @property
    def edits(self) -> List[Edit]:
        return list(self.state.edits)

    @property
    def isolated(self) -> Optional[Target]:
        return self.state.isolated

    # ------------------------------------------------------------------ looking
    def regions(self, refresh: bool = False) -> Dict[Tuple[int, int], InstanceRegion]:
        """The instances' regions, found again only when the field has trained since (``refresh``: always)."""
        step = getattr(self.model, "step", None)
        if self._regions is None or refresh or step != self._regions_step:
            self._regions = self.model.instance_regions()
            self._regions_step = step
        return self._regions

    def size_in_dataset_frame(self, region: InstanceRegion) -> np.ndarray:
        return region.seen_size / self.model.dataset_frame.scale

    def class_id(self, class_name: str) -> int:
        return self.model.class_table.names.index(class_name) + 1

    def duplicates(self, state: Optional[EditState] = None) -> List[Edit]:
        """The duplicate edits in the edit list's order (copy ids follow it: the surrogate ids, then 1, 2, ...)."""
        return [e for e in (state or self.state).edits if e.op == "duplicate"]

    def copy_id(self, target: Target, state: Optional[EditState] = None) -> Optional[int]:
        """The instance id the renders give a copy target (None: the target is no copy, or no longer exists)."""
        index = self._edit_index(target, state)
        if target.copy is None or index is None:
            return None
        edits = (state or self.state).edits
        return self.model.config.num_surrogate_ids + 1 + sum(e.op == "duplicate" for e in edits[:index])

    @torch.no_grad()
    def pick(self, origin: Tuple[float, float, float], direction: Tuple[float, float, float]) -> Pick:
        """Select what the ray from ``origin`` along ``direction`` (model frame, as nerfstudio's ViewerClick gives)
        renders, with the current edits applied."""
        model = self.model
        device = model.device
        direction_t = torch.nn.functional.normalize(torch.tensor([direction], dtype=torch.float32, device=device), dim=-1)
        bundle = RayBundle(origins=torch.tensor([origin], dtype=torch.float32, device=device), directions=direction_t,
                           pixel_area=torch.full((1, 1), 1e-6, device=device),
                           camera_indices=torch.zeros(1, 1, dtype=torch.long, device=device))
        was_training = model.training
        model.eval()
        try:
            out = model.get_outputs(model.collider(bundle))
        finally:
            model.train(was_training)
        class_id, instance_id = int(out["semantic_id"][0, 0]), int(out["instance_id"][0, 0])
        table = model.class_table
        is_thing = class_id > 0 and table.is_thing[class_id - 1]
        name = table.names[class_id - 1] if class_id else "void"
        region, target = None, None
        if is_thing and instance_id > model.config.num_surrogate_ids:  # a copy made by 'Duplicate'
            duplicates = self.duplicates()
            index = instance_id - model.config.num_surrogate_ids - 1
            if 0 <= index < len(duplicates):
                edit = duplicates[index]
                nth = [e for e in duplicates if e.key == edit.key].index(edit)
                target = Target(edit.instance_id, edit.class_name, nth)
                region = self.regions().get((edit.instance_id, self.class_id(edit.class_name)))
        elif is_thing:
            region = self.regions().get((instance_id, class_id))
            target = Target(instance_id, name) if region is not None else None
        self.selected = Pick(class_id, name, is_thing, instance_id, float(out["depth"][0, 0]), region,
                             target if region is not None else None)
        self._gesture = None
        return self.selected

    # ------------------------------------------------------------------ what the state says
    def _edit_index(self, target: Target, state: Optional[EditState] = None) -> Optional[int]:
        """Index in the edit list of the target's own edit: its move (or deletion), or its duplicate."""
        edits = (state or self.state).edits
        if target.copy is None:
            mine = [i for i, e in enumerate(edits) if e.key == target.key and e.op in ("move", "delete")]
        else:
            mine = [i for i, e in enumerate(edits) if e.key == target.key and e.op == "duplicate"]
            mine = mine[target.copy : target.copy + 1]
        return mine[0] if mine else None

    def placement(self, target: Target) -> Optional[RigidTransform]:
        """Where the target stands relative to the original (None: in place, or hidden)."""
        index = self._edit_index(target)
        return None if index is None else self.state.edits[index].transform

    def is_hidden(self, target: Target) -> bool:
        index = self._edit_index(target)
        return target.copy is None and index is not None and self.state.edits[index].op == "delete"

    def describe_edit(self, target: Optional[Target]) -> str:
        """What the edits do to the target now (the panel shows it next to the selection)."""
        if target is None:
            return "-"
        copies = sum(1 for e in self.duplicates() if e.key == target.key)
        if target.copy is not None:
            transform = self.placement(target)
            if transform is None:
                return f"{target.describe()}: no longer exists"
            return f"{target.describe()}, id {self.copy_id(target)}: {describe_transform(transform)}"
        if self.is_hidden(target):
            what = "hidden"
        else:
            transform = self.placement(target)
            what = "in place" if transform is None else f"moved: {describe_transform(transform)}"
        if copies:
            what += f"; {copies} cop{'y' if copies == 1 else 'ies'}"
        return f"{target.describe()}: {what}"

    # ------------------------------------------------------------------ editing
    def _require_target(self) -> Target:
        if self.selected is None:
            raise ValueError("select an object first (click it)")
        if self.selected.target is None:
            raise ValueError(f"the selection cannot be edited: {self.selected.describe(self)}")
        return self.selected.target

    def _commit(self, state: EditState, what: str, gesture: Optional[Target] = None, continuing: bool = False) -> bool:
        """Make ``state`` the current one as one step of history, or as part of the open placement step when
        ``continuing`` a placement of the same ``gesture`` target; False (and nothing recorded) when nothing changed."""
        if state == self.state:
            return False
        if continuing and gesture is not None and gesture == self._gesture and self._undo:
            self._undo[-1] = _Step(self._undo[-1].before, state, what)
        else:
            self._undo.append(_Step(self.state, state, what))
        self._redo.clear()
        self._gesture = gesture
        self.state = state
        self.apply()
        return True

    def _reselect_after_change(self) -> None:
        """After undo or redo: a selected copy that no longer exists leaves the selection on its original."""
        pick = self.selected
        if pick is not None and pick.target is not None and pick.target.copy is not None \
                and self._edit_index(pick.target) is None:
            self.selected = dataclasses.replace(pick, target=Target(pick.target.instance_id, pick.target.class_name),
                                                instance_id=pick.target.instance_id)

    def hide(self) -> str:
        """Delete the selected object (a moved object goes back to being deleted only), or remove the selected copy."""
        target = self._require_target()
        edits = list(self.state.edits)
        isolated = self.state.isolated
        if target.copy is not None:
            index = self._edit_index(target)
            if index is None:
                raise ValueError(f"{target.describe()} no longer exists")
            del edits[index]
            if isolated is not None and isolated.key == target.key and isolated.copy is not None:
                if isolated.copy == target.copy:
                    isolated = None
                elif isolated.copy > target.copy:  # the later copies of the same object move up by one
                    isolated = dataclasses.replace(isolated, copy=isolated.copy - 1)
            self._commit(EditState(tuple(edits), isolated), f"the removal of {target.describe()}")
            assert self.selected is not None
            self.selected = dataclasses.replace(self.selected, target=Target(target.instance_id, target.class_name),
                                                instance_id=target.instance_id)
            return f"removed {target.describe()}"
        if self.is_hidden(target):
            return f"{target.describe()} is already hidden"
        edits = [e for e in edits if not (e.key == target.key and e.op == "move")]
        edits.append(Edit("delete", target.instance_id, target.class_name))
        self._commit(EditState(tuple(edits), isolated), f"the hiding of {target.describe()}")
        return f"hidden: {target.describe()}"

    def toggle_isolate(self) -> Optional[Target]:
        """Show only the selected object or copy (again: show everything)."""
        if self.state.isolated is not None:
            self._commit(dataclasses.replace(self.state, isolated=None), "showing everything")
            return None
        target = self._require_target()
        self._commit(dataclasses.replace(self.state, isolated=target), f"isolating {target.describe()}")
        return target

    def duplicate(self) -> Target:
        """Add a copy of the selected object (or copy) one object width along the dataset's x axis from where it
        stands; the copy becomes the selection, so that the sliders place it."""
        target = self._require_target()
        pick = self.selected
        assert pick is not None and pick.region is not None
        offset = float(self.size_in_dataset_frame(pick.region)[0]) * 1.1
        base = self.placement(target) or RigidTransform()
        transform = dataclasses.replace(base, translation=(base.translation[0] + offset, *base.translation[1:]))
        edit = Edit("duplicate", target.instance_id, target.class_name, transform)
        copy = Target(target.instance_id, target.class_name, sum(1 for e in self.duplicates() if e.key == target.key))
        self._commit(EditState(self.state.edits + (edit,), self.state.isolated), f"the duplication of {target.describe()}")
        self.selected = dataclasses.replace(pick, target=copy, instance_id=self.copy_id(copy) or 0)
        return copy

    def place(self, translation: Tuple[float, float, float], rotation_deg: float, continuing: bool = False) -> Target:
        """Pose of the selected copy, or of the selected object itself (a move; its scale and pivot are kept).
        ``continuing``: part of the placement step in progress (a slider still being dragged) when that step placed
        the same target and nothing happened since."""
        target = self._require_target()
        edits = list(self.state.edits)
        index = self._edit_index(target)
        current = edits[index] if index is not None else None
        base = current.transform if current is not None and current.transform is not None else RigidTransform()
        transform = dataclasses.replace(base, translation=tuple(float(v) for v in translation),
                                        rotation_deg=float(rotation_deg))
        if target.copy is not None:
            if index is None:
                raise ValueError(f"{target.describe()} no longer exists")
            edits[index] = dataclasses.replace(edits[index], transform=transform)
        elif transform.is_identity:  # back in its place (and shown, if it was hidden)
            edits = [e for e in edits if not (e.key == target.key and e.op in ("move", "delete"))]
        elif current is not None and current.op == "move":
            edits[index] = dataclasses.replace(current, transform=transform)  # type: ignore[index]
        else:  # in place or hidden: it moves (and shows again)
            edits = [e for e in edits if not (e.key == target.key and e.op == "delete")]
            edits.append(Edit("move", target.instance_id, target.class_name, transform))
        self._commit(EditState(tuple(edits), self.state.isolated), f"the placement of {target.describe()}",
                     gesture=target, continuing=continuing)
        return target

    def undo(self) -> Optional[str]:
        """Restore the state before the last action; returns what was undone (None when there was nothing)."""
        if not self._undo:
            return None
        step = self._undo.pop()
        self._redo.append(step)
        self.state, self._gesture = step.before, None
        self._reselect_after_change()
        self.apply()
        return step.what

    def redo(self) -> Optional[str]:
        """Restore the state after the last undone action; returns what was redone (None when there was nothing)."""
        if not self._redo:
            return None
        step = self._redo.pop()
        self._undo.append(step)
        self.state, self._gesture = step.after, None
        self._reselect_after_change()
        self.apply()
        return step.what

    def reset(self) -> int:
        """Drop every edit and show everything (one step of history); returns how many edits were dropped."""
        dropped = len(self.state.edits)
        self._commit(EditState(), "the reset")
        return dropped

    def apply(self) -> None:
        isolate = None
        if self.state.isolated is not None:
            target = self.state.isolated
            rendered = self.copy_id(target) if target.copy is not None else target.instance_id
            isolate = (int(rendered or 0), self.class_id(target.class_name))
        self.model.apply_edits(self.edit_list(), "<viewer edits>", regions=self.regions(), isolate=isolate)

    def edit_list(self) -> EditList:
        return EditList(edits=list(self.state.edits))

    def save(self, path: Path) -> Path:
        """Write the edits as an edit list; an existing file is never replaced (a numbered name is used instead)."""
        path = Path(path).expanduser()
        if path.suffix != ".json":
            path = path.with_suffix(".json")
        candidate, number = path, 2
        while candidate.exists():
            candidate, number = path.with_name(f"{path.stem}-{number}{path.suffix}"), number + 1
        candidate.parent.mkdir(parents=True, exist_ok=True)
        from plift_nerfstudio.editing.edited_run import explicit_edit_list

        explicit_edit_list(self.edit_list(), self.regions(), self.model.class_table, self.model.dataset_frame).save(candidate)
        return candidate


def describe_transform(transform: RigidTransform) -> str:
    text = f"offset {tuple(round(v, 2) for v in transform.translation)}, turn {transform.rotation_deg:.0f} deg"
    if transform.scale != 1.0:
        text += f", scale {transform.scale:g}"
    return text
