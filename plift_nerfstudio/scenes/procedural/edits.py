"""The true edited scene: an edit list applied to a procedural room's own geometry (ids are the room's true ids).

A deleted instance's boxes go; a duplicate's boxes are added as placed copies with a new id (after the room's last);
a moved instance's boxes are placed, keeping the id. The same file that ``plift-edit`` takes renders the truth when
its ids are the room's (``scripts/benchmark_editing.py`` writes one of each).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List

import numpy as np

from plift_nerfstudio.editing.edit_list import EditList, check_true_instance
from plift_nerfstudio.scenes.procedural.scene import IS_THING, Box, Room


def instance_boxes(room: Room) -> Dict[int, List[Box]]:
    out: Dict[int, List[Box]] = {}
    for box in room.boxes:
        if box.instance > 0:
            out.setdefault(box.instance, []).append(box)
    return out


def instance_centre(boxes: List[Box]) -> np.ndarray:
    return (np.min([b.lo for b in boxes], axis=0) + np.max([b.hi for b in boxes], axis=0)) / 2


def edit_room(room: Room, edit_list: EditList, source: str = "<edit list>") -> Room:
    """A new room with ``edit_list`` applied (rotations about ``edit_list.up``, default +z)."""
    by_id = instance_boxes(room)
    up = np.asarray(edit_list.up if edit_list.up is not None else (0.0, 0.0, 1.0))
    removed = {e.instance_id for e in edit_list.edits if e.op in ("delete", "move")}
    boxes = [b for b in room.boxes if b.instance not in removed]
    next_id = room.num_instances + 1
    classes = {g: boxes[0].class_name for g, boxes in by_id.items()}
    for index, edit in enumerate(edit_list.edits):
        check_true_instance(edit, index, classes, IS_THING, source)
        originals = by_id[edit.instance_id]
        if edit.transform is None:
            continue
        matrix = edit.transform.matrix(up, instance_centre(originals))
        if edit.op == "duplicate":
            new_id, next_id = next_id, next_id + 1
        else:
            new_id = edit.instance_id
        for box in originals:
            pose = matrix if box.pose is None else matrix @ box.pose
            boxes.append(dataclasses.replace(box, instance=new_id, pose=pose))
    return dataclasses.replace(room, boxes=boxes)
