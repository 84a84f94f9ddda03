"""Procedural furnished rooms made of axis-aligned boxes, laid out deterministically from a seed.

Every box carries a class of the 21-class table (paper supplementary Table 7, left) and, for thing classes, a
scene-wide instance id (the same object keeps its id in every view). Furniture stands against the walls; a table
with chairs stands in one quarter of the room, leaving the middle free for the camera path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Literal, Optional, Tuple

import numpy as np

from plift_nerfstudio.labels.class_table import SCANNET21_CLASSES

CLASS_ID = {name: i + 1 for i, (name, _, _) in enumerate(SCANNET21_CLASSES)}
IS_THING = {name: thing for name, thing, _ in SCANNET21_CLASSES}

# base albedo per class (linear-ish RGB in [0, 1]); each object perturbs it
ALBEDO = {
    "wall": (0.78, 0.74, 0.66),
    "floor": (0.55, 0.38, 0.24),
    "ceiling": (0.92, 0.92, 0.9),
    "cabinet": (0.45, 0.3, 0.2),
    "bed": (0.7, 0.72, 0.82),
    "chair": (0.25, 0.35, 0.55),
    "sofa": (0.55, 0.2, 0.18),
    "table": (0.62, 0.48, 0.3),
    "door": (0.85, 0.82, 0.75),
    "window": (0.6, 0.78, 0.92),
    "shelves": (0.35, 0.25, 0.16),
    "refrigerator": (0.88, 0.88, 0.9),
    "television": (0.08, 0.08, 0.1),
    "lamp": (0.95, 0.85, 0.55),
    "bag": (0.2, 0.5, 0.3),
}

ScenePreset = Literal["room", "small-room"]


@dataclass
class Box:
    lo: np.ndarray  # [3]
    hi: np.ndarray  # [3]
    class_name: str
    instance: int  # scene-wide id for things, 0 for stuff
    albedo: np.ndarray  # [3]
    texture_seed: float
    texture_scale: float
    pose: Optional[np.ndarray] = None  # [4, 4] placed copy (edited scenes): box point x is shown at pose @ x


@dataclass
class Room:
    size: np.ndarray  # [3] width (x), depth (y), height (z); the room spans [0, size]
    boxes: List[Box] = field(default_factory=list)
    light: np.ndarray = field(default_factory=lambda: np.zeros(3))
    wall_albedo: np.ndarray = field(default_factory=lambda: np.zeros((6, 3)))
    wall_seeds: np.ndarray = field(default_factory=lambda: np.zeros(6))

    @property
    def num_instances(self) -> int:
        return max((b.instance for b in self.boxes), default=0)

    def free_at(self, point: np.ndarray, margin: float = 0.15) -> bool:
        inside_room = bool(np.all(point > margin) and np.all(point < self.size - margin))
        return inside_room and not any(np.all(point > b.lo - margin) and np.all(point < b.hi + margin) for b in self.boxes)


class _Builder:
    def __init__(self, rng: np.random.Generator, size: np.ndarray) -> None:
        self.rng = rng
        self.room = Room(size=size)
        self.next_instance = 1
        self.footprints: List[Tuple[float, float, float, float]] = []

    def _albedo(self, name: str) -> np.ndarray:
        base = np.array(ALBEDO[name])
        return np.clip(base * self.rng.uniform(0.8, 1.15) + self.rng.normal(0, 0.04, 3), 0.03, 0.97)

    def add_object(self, name: str, parts: List[Tuple[np.ndarray, np.ndarray]]) -> None:
        instance = 0
        if IS_THING[name]:
            instance = self.next_instance
            self.next_instance += 1
        albedo = self._albedo(name)
        seed = float(self.rng.uniform(0, 1000))
        scale = float(self.rng.uniform(3.0, 9.0))
        for lo, hi in parts:
            self.room.boxes.append(Box(np.asarray(lo, float), np.asarray(hi, float), name, instance, albedo, seed, scale))

    def footprint_free(self, x0: float, y0: float, x1: float, y1: float, gap: float = 0.08) -> bool:
        W, D = self.room.size[:2]
        if x0 < 0 or y0 < 0 or x1 > W or y1 > D:
            return False
        return all(x1 + gap <= a0 or a1 + gap <= x0 or y1 + gap <= b0 or b1 + gap <= y0 for a0, b0, a1, b1 in self.footprints)

    def place_against_wall(self, width: float, depth: float) -> Tuple[float, float, float, float, int] | None:
        """A free footprint touching a wall, rotated to face the room; returns x0, y0, x1, y1, wall."""
        W, D = self.room.size[:2]
        for _ in range(200):
            wall = int(self.rng.integers(4))
            if wall in (0, 1):  # walls y=0 / y=D: width along x
                x0 = float(self.rng.uniform(0.05, W - width - 0.05))
                y0 = 0.0 if wall == 0 else D - depth
                fp = (x0, y0, x0 + width, y0 + depth)
            else:  # walls x=0 / x=W: width along y
                y0 = float(self.rng.uniform(0.05, D - width - 0.05))
                x0 = 0.0 if wall == 2 else W - depth
                fp = (x0, y0, x0 + depth, y0 + width)
            if self.footprint_free(*fp):
                self.footprints.append(fp)
                return (*fp, wall)
        return None


def _facing_parts(fp, wall: int, back_height: float, seat_height: float, back_depth: float):
    """Seat box plus a backrest along the wall side (beds, sofas)."""
    x0, y0, x1, y1 = fp
    seat = (np.array([x0, y0, 0.0]), np.array([x1, y1, seat_height]))
    if wall == 0:
        back = (np.array([x0, y0, 0.0]), np.array([x1, y0 + back_depth, back_height]))
    elif wall == 1:
        back = (np.array([x0, y1 - back_depth, 0.0]), np.array([x1, y1, back_height]))
    elif wall == 2:
        back = (np.array([x0, y0, 0.0]), np.array([x0 + back_depth, y1, back_height]))
    else:
        back = (np.array([x1 - back_depth, y0, 0.0]), np.array([x1, y1, back_height]))
    return [seat, back]


def _wall_slab(room_size, wall: int, along: Tuple[float, float], z: Tuple[float, float], thickness: float = 0.03):
    W, D = room_size[:2]
    a0, a1 = along
    if wall == 0:
        return np.array([a0, 0.0, z[0]]), np.array([a1, thickness, z[1]])
    if wall == 1:
        return np.array([a0, D - thickness, z[0]]), np.array([a1, D, z[1]])
    if wall == 2:
        return np.array([0.0, a0, z[0]]), np.array([thickness, a1, z[1]])
    return np.array([W - thickness, a0, z[0]]), np.array([W, a1, z[1]])


def make_room(seed: int, preset: ScenePreset = "room") -> Room:
    """A furnished room, the same for the same seed and preset."""
    rng = np.random.default_rng(seed)
    if preset == "room":
        size = np.array([rng.uniform(4.6, 5.8), rng.uniform(4.2, 5.2), 2.7])
    elif preset == "small-room":
        size = np.array([rng.uniform(3.8, 4.3), rng.uniform(3.6, 4.0), 2.5])
    else:
        raise ValueError(f"unknown scene preset {preset!r} (choose 'room' or 'small-room')")
    b = _Builder(rng, size)
    room = b.room
    room.wall_albedo = np.stack([b._albedo(n) for n in ("floor", "ceiling", "wall", "wall", "wall", "wall")])
    room.wall_albedo[2:] *= rng.uniform(0.85, 1.1, (4, 1))  # each wall its own tone (helps pose estimation)
    room.wall_seeds = rng.uniform(0, 1000, 6)
    room.light = np.array([size[0] * rng.uniform(0.35, 0.65), size[1] * rng.uniform(0.35, 0.65), size[2] - 0.25])

    # wall fixtures first (door, window): they only need wall space
    door_wall, window_wall = rng.choice(4, 2, replace=False)
    for name, wall, z, width in (("door", door_wall, (0.0, 2.05), 0.9), ("window", window_wall, (0.9, 2.0), 1.3)):
        length = size[0] if wall in (0, 1) else size[1]
        a0 = float(rng.uniform(0.3, length - width - 0.3))
        b.add_object(name, [_wall_slab(size, int(wall), (a0, a0 + width), z)])
        if name == "door":  # keep the floor in front of the door free
            lo, hi = _wall_slab(size, int(wall), (a0, a0 + width), z, thickness=0.7)
            b.footprints.append((lo[0], lo[1], hi[0], hi[1]))

    def along_wall(name: str, width: float, depth: float, height: float, extra=None) -> None:
        placed = b.place_against_wall(width, depth)
        if placed is None:
            return
        x0, y0, x1, y1, wall = placed
        if extra is None:
            b.add_object(name, [(np.array([x0, y0, 0.0]), np.array([x1, y1, height]))])
        else:
            b.add_object(name, extra((x0, y0, x1, y1), wall))

    along_wall("bed", 2.0, 1.5, 0.0, lambda fp, w: _facing_parts(fp, w, 1.0, 0.55, 0.1))
    along_wall("sofa", 1.9, 0.85, 0.0, lambda fp, w: _facing_parts(fp, w, 0.85, 0.45, 0.2))
    tv_done = False
    placed = b.place_against_wall(1.1, 0.45)
    if placed is not None:
        x0, y0, x1, y1, wall = placed
        b.add_object("cabinet", [(np.array([x0, y0, 0.0]), np.array([x1, y1, 0.7]))])
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        half = np.array([0.42, 0.04, 0.0]) if wall in (0, 1) else np.array([0.04, 0.42, 0.0])
        b.add_object("television", [(np.array([cx, cy, 0.72]) - half, np.array([cx, cy, 1.25]) + half)])
        tv_done = True
    along_wall("shelves", 0.8, 0.35, 1.8)
    along_wall("refrigerator", 0.7, 0.65, 1.8)
    if rng.uniform() < 0.8:
        along_wall("bag", 0.35, 0.22, 0.42)
    if not tv_done:
        along_wall("television", 0.9, 0.1, 1.2)

    # lamp in a free corner: pole and shade
    for corner in rng.permutation(4):
        cx = 0.35 if corner % 2 == 0 else size[0] - 0.35
        cy = 0.35 if corner < 2 else size[1] - 0.35
        fp = (cx - 0.2, cy - 0.2, cx + 0.2, cy + 0.2)
        if b.footprint_free(*fp):
            b.footprints.append(fp)
            b.add_object(
                "lamp",
                [
                    (np.array([cx - 0.03, cy - 0.03, 0.0]), np.array([cx + 0.03, cy + 0.03, 1.35])),
                    (np.array([cx - 0.18, cy - 0.18, 1.3]), np.array([cx + 0.18, cy + 0.18, 1.6])),
                ],
            )
            break

    # table with chairs in one quarter of the free floor
    for _ in range(100):
        tw, td = rng.uniform(1.0, 1.4), rng.uniform(0.7, 0.9)
        tx = rng.uniform(0.6, size[0] - tw - 0.6)
        ty = rng.uniform(0.6, size[1] - td - 0.6)
        # cameras fly above table and chairs (< 1 m), so the table may stand anywhere free
        if not b.footprint_free(tx - 0.5, ty - 0.5, tx + tw + 0.5, ty + td + 0.5):
            continue
        b.footprints.append((tx, ty, tx + tw, ty + td))
        legs = [
            (np.array([x, y, 0.0]), np.array([x + 0.06, y + 0.06, 0.72]))
            for x in (tx + 0.04, tx + tw - 0.1)
            for y in (ty + 0.04, ty + td - 0.1)
        ]
        b.add_object("table", [(np.array([tx, ty, 0.72]), np.array([tx + tw, ty + td, 0.77]))] + legs)
        seats = [(tx + tw * 0.3, ty - 0.35, 1), (tx + tw * 0.7, ty + td + 0.35, 0), (tx - 0.35, ty + td / 2, 3)]
        n_chairs = int(rng.integers(2, 4))  # 2 or 3
        for sx, sy, facing in seats[:n_chairs]:
            s = 0.22
            seat = (np.array([sx - s, sy - s, 0.0]), np.array([sx + s, sy + s, 0.46]))
            # backrest on the side away from the table
            if facing == 1:
                back = (np.array([sx - s, sy - s, 0.46]), np.array([sx + s, sy - s + 0.06, 0.95]))
            elif facing == 0:
                back = (np.array([sx - s, sy + s - 0.06, 0.46]), np.array([sx + s, sy + s, 0.95]))
            else:
                back = (np.array([sx - s, sy - s, 0.46]), np.array([sx - s + 0.06, sy + s, 0.95]))
            b.add_object("chair", [seat, back])
        break
    return room
