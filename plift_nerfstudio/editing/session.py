"""What a person does to a trained scene with the mouse, without the mouse: pick the object under a pixel, hide,
isolate, duplicate or move it, undo, and save the edits as an edit list ``plift-edit`` takes.

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
class Pick:
    """What the ray through a clicked pixel renders."""

    class_id: int  # 0: void (the ray saw nothing)
    class_name: str
    is_thing: bool
    instance_id: int  # 0 for stuff and void
    depth: float
    region: Optional[InstanceRegion]  # model frame; None for stuff, void and copies made by edits

    def describe(self, session: "EditingSession") -> str:
        if self.class_id == 0:
            return "nothing here (void)"
        if not self.is_thing:
            return f"{self.class_name} (stuff class {self.class_id}): cannot be edited"
        if self.region is None:
            return f"{self.class_name}, id {self.instance_id} (a copy made by an edit)"
        size = session.size_in_dataset_frame(self.region)
        return (f"{self.class_name}, id {self.instance_id}, size {size[0]:.2f} x {size[1]:.2f} x {size[2]:.2f} "
                "(dataset units)")


class EditingSession:
    """Edits of one model, applied as they are made."""

    def __init__(self, model) -> None:
        self.model = model
        self.edits: List[Edit] = []
        self.selected: Optional[Pick] = None
        self.isolated: Optional[Tuple[int, int]] = None
        self._regions: Optional[Dict[Tuple[int, int], InstanceRegion]] = None
        self._regions_step: Optional[int] = None

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
        region = self.regions().get((instance_id, class_id)) if is_thing else None
        self.selected = Pick(class_id, table.names[class_id - 1] if class_id else "void", is_thing, instance_id,
                             float(out["depth"][0, 0]), region)
        return self.selected

    # ------------------------------------------------------------------ editing
    def _require_editable(self) -> Pick:
        if self.selected is None:
            raise ValueError("select an object first (click it)")
        if self.selected.region is None:
            raise ValueError(f"the selection cannot be edited: {self.selected.describe(self)}")
        return self.selected

    def hide(self) -> None:
        """Delete the selected object (a moved object goes back to being deleted only)."""
        pick = self._require_editable()
        self.edits = [e for e in self.edits if not (e.instance_id == pick.instance_id and e.op == "move")]
        if not any(e.instance_id == pick.instance_id and e.op == "delete" for e in self.edits):
            self.edits.append(Edit("delete", pick.instance_id, pick.class_name))
        self.apply()

    def toggle_isolate(self) -> Optional[Tuple[int, int]]:
        """Show only the selected object (again: show everything)."""
        if self.isolated is not None:
            self.isolated = None
        else:
            pick = self._require_editable()
            self.isolated = (pick.instance_id, pick.class_id)
        self.apply()
        return self.isolated

    def duplicate(self) -> Edit:
        """Add a copy of the selected object next to it (one object width along the dataset's x axis)."""
        pick = self._require_editable()
        assert pick.region is not None
        offset = float(self.size_in_dataset_frame(pick.region)[0]) * 1.1
        edit = Edit("duplicate", pick.instance_id, pick.class_name, RigidTransform(translation=(offset, 0.0, 0.0)))
        self.edits.append(edit)
        self.apply()
        return edit

    def place(self, translation: Tuple[float, float, float], rotation_deg: float) -> Edit:
        """Pose of the selected object's latest copy (from 'Duplicate'), or move the object itself if it has none."""
        pick = self._require_editable()
        transform = RigidTransform(translation=tuple(float(v) for v in translation), rotation_deg=float(rotation_deg))  # type: ignore[arg-type]
        mine = [i for i, e in enumerate(self.edits) if e.instance_id == pick.instance_id and e.op in ("duplicate", "move")]
        if mine:
            placed = dataclasses.replace(self.edits[mine[-1]], transform=transform)
            self.edits[mine[-1]] = placed
        else:
            placed = Edit("move", pick.instance_id, pick.class_name, transform)
            self.edits = [e for e in self.edits if not (e.instance_id == pick.instance_id and e.op == "delete")]
            self.edits.append(placed)
        self.apply()
        return placed

    def undo(self) -> Optional[Edit]:
        """Take back the last edit; returns it (None when there was none)."""
        undone = self.edits.pop() if self.edits else None
        self.apply()
        return undone

    def reset(self) -> int:
        """Drop every edit and show everything; returns how many edits were dropped."""
        dropped = len(self.edits)
        self.edits, self.isolated = [], None
        self.apply()
        return dropped

    def apply(self) -> None:
        self.model.apply_edits(self.edit_list(), "<viewer edits>", regions=self.regions(), isolate=self.isolated)

    def edit_list(self) -> EditList:
        return EditList(edits=list(self.edits))

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
