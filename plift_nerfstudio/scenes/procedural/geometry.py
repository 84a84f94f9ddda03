"""The true geometry of a procedural room (dataset frame = the room's frame, metres, z up): each thing object's
boxes and the surfaces of each class, and distances of points to them (what exports are scored against)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from plift_nerfstudio.scenes.procedural.scene import CLASS_ID, Room

SHELL_CLASSES = ("floor", "ceiling", "wall")


@dataclass(frozen=True)
class TrueObject:
    instance_id: int
    class_id: int
    lo: np.ndarray  # [B, 3] the object's boxes
    hi: np.ndarray  # [B, 3]

    @property
    def aabb(self):
        return self.lo.min(0), self.hi.max(0)


def true_objects(room: Room) -> List[TrueObject]:
    """The room's thing objects (unposed boxes only: plift-synth's plain rooms)."""
    parts: Dict[int, list] = {}
    for box in room.boxes:
        if box.instance > 0:
            if box.pose is not None:
                raise ValueError("true_objects: posed (edited) boxes are not supported")
            parts.setdefault(box.instance, []).append(box)
    return [TrueObject(i, CLASS_ID[boxes[0].class_name], np.stack([b.lo for b in boxes]), np.stack([b.hi for b in boxes]))
            for i, boxes in sorted(parts.items())]


def distance_to_boxes(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Distance [N] of each point to the nearest of the solid boxes (lo, hi [B, 3]); 0 inside one."""
    if len(lo) == 0:
        return np.full(len(points), np.inf)
    gap = np.maximum(np.maximum(lo[None] - points[:, None], 0), points[:, None] - hi[None])  # [N, B, 3]
    return np.linalg.norm(gap, axis=-1).min(axis=1)


def distance_to_shell(points: np.ndarray, room: Room, class_name: str) -> np.ndarray:
    """Distance [N] to the room's floor (z = 0), ceiling (z = height) or nearest wall plane."""
    if class_name == "floor":
        return np.abs(points[:, 2])
    if class_name == "ceiling":
        return np.abs(points[:, 2] - room.size[2])
    if class_name == "wall":
        return np.min(np.abs(np.concatenate([points[:, :2], points[:, :2] - room.size[:2]], axis=1)), axis=1)
    raise ValueError(f"{class_name!r} is not part of the room's shell")


def distance_to_class(points: np.ndarray, room: Room, class_id: int) -> np.ndarray:
    """Distance [N] of each point to the nearest true surface of the class (shell planes and the class's boxes);
    inf when the room has none."""
    name = next(n for n, i in CLASS_ID.items() if i == class_id)
    boxes = [b for b in room.boxes if b.class_name == name]
    out = distance_to_boxes(points, np.array([b.lo for b in boxes]).reshape(-1, 3), np.array([b.hi for b in boxes]).reshape(-1, 3))
    if name in SHELL_CLASSES:
        out = np.minimum(out, distance_to_shell(points, room, name))
    return out


def distance_to_any_surface(points: np.ndarray, room: Room) -> np.ndarray:
    """Distance [N] to the nearest surface of the room, whatever its class."""
    out = distance_to_boxes(points, np.array([b.lo for b in room.boxes]).reshape(-1, 3), np.array([b.hi for b in room.boxes]).reshape(-1, 3))
    for name in SHELL_CLASSES:
        out = np.minimum(out, distance_to_shell(points, room, name))
    return out
