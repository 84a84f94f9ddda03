"""The true edited room: an edit list applied to a realistic room's own objects (ids are the room's true ids).

A deleted instance's parts go; a duplicate's parts are added as placed copies with a new id (after the room's last);
a moved instance's parts are placed, keeping the id. A part is placed by moving its centre with the transform,
adding the turn to its own and scaling its size (and rounded edges). Rooms stand on the z = 0 floor with +z up, the
dataset frame of their transforms.json, so only turns about +z can be applied. The same file that ``plift-edit``
takes renders the truth when its ids are the room's (``scripts/benchmark_editing.py --realistic`` writes one of each).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Tuple

import numpy as np

from plift_nerfstudio.editing.edit_list import EditList, EditListError, check_true_instance
from plift_nerfstudio.scenes.realistic.layout import IS_THING, Part, RoomLayout, SceneObject


def part_corners(part: Part) -> np.ndarray:
    """[8, 3] corners of the part's box (a cylinder's bounding box), turned about +z through its centre."""
    half = np.asarray(part.size, dtype=np.float64) / 2
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
    local = signs * half
    c, s = math.cos(part.turn), math.sin(part.turn)
    turned = local @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T
    return turned + np.asarray(part.centre, dtype=np.float64)


def object_box(obj: SceneObject) -> Tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box (lo, hi) around all parts of ``obj``."""
    corners = np.concatenate([part_corners(p) for p in obj.parts])
    return corners.min(0), corners.max(0)


def instance_objects(layout: RoomLayout) -> Dict[int, SceneObject]:
    """The thing objects by their scene-wide instance id."""
    return {o.instance: o for o in layout.objects if o.instance > 0}


def placed_part(part: Part, matrix: np.ndarray, turn: float, scale: float) -> Part:
    """``part`` under the 4x4 ``matrix`` (turn ``turn`` radians about +z and uniform ``scale``)."""
    centre = matrix[:3, :3] @ np.asarray(part.centre, dtype=np.float64) + matrix[:3, 3]
    return dataclasses.replace(part, centre=tuple(float(v) for v in centre),
                               size=tuple(float(v) * scale for v in part.size), turn=part.turn + turn,
                               bevel=part.bevel * scale)


def edit_layout(layout: RoomLayout, edit_list: EditList, source: str = "<edit list>") -> RoomLayout:
    """A new layout with ``edit_list`` applied; a pivot the edit list leaves out is the centre of the object's box
    at the floor (where plift-edit's default, the centre of the footprint, puts it for a whole seen object)."""
    up = np.asarray(edit_list.up if edit_list.up is not None else (0.0, 0.0, 1.0), dtype=np.float64)
    if np.linalg.norm(np.cross(up / np.linalg.norm(up), [0.0, 0.0, 1.0])) > 1e-6:
        raise EditListError(source, f"'up' is {up.tolist()}: a realistic room turns its objects about +z only")
    by_id = instance_objects(layout)
    removed = {e.instance_id for e in edit_list.edits if e.op in ("delete", "move")}
    objects: List[SceneObject] = [o for o in layout.objects if o.instance not in removed]
    next_id = layout.num_instances + 1
    classes = {g: o.class_name for g, o in by_id.items()}
    for index, edit in enumerate(edit_list.edits):
        check_true_instance(edit, index, classes, IS_THING, source)
        original = by_id[edit.instance_id]
        if edit.transform is None:
            continue
        lo, hi = object_box(original)
        pivot = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
        matrix = edit.transform.matrix(up, pivot)
        turn = math.radians(edit.transform.rotation_deg) * float(np.sign(up[2]))
        if edit.op == "duplicate":
            new_id, next_id = next_id, next_id + 1
        else:
            new_id = edit.instance_id
        parts = [placed_part(p, matrix, turn, edit.transform.scale) for p in original.parts]
        objects.append(SceneObject(original.class_name, new_id, parts, f"{original.name} ({edit.op})"))
    return dataclasses.replace(layout, objects=objects)
