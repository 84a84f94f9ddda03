"""Furnished rooms for the realistic benchmark scenes, laid out from a seed (pure numpy; Blender builds them).

A room is a list of :class:`SceneObject`; each object is a few primitive :class:`Part` (boxes and cylinders, turned
about the vertical axis) sharing one class of the 21-class table and, for thing classes, one scene-wide instance id.
Every part names a material (see ``blender_scene.MATERIALS``) with its own colours, so that two identical chairs
can share one look. Small and thin things (books, pictures, bags behind furniture, table legs) are there on purpose:
they are what a lifted model loses first.

Room kinds:
- ``bedroom-living``: bed with pillows, sofa, coffee table on a striped rug, bookshelf with books, TV on a cabinet,
  floor lamp, pictures, window with curtains, door, bags partly hidden behind the bed and the sofa.
- ``kitchen-dining``: counter with sink over base cabinets, wall cabinets, refrigerator, dining table with four chairs
  (two identical side by side), pendant lamp, shelves with books, window, door, pictures, a bag by the table.
- ``studio``: desk with two identical chairs, sofa, bed, shelves, TV, tiled floor, rug, lamp, bags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple

import numpy as np

from plift_nerfstudio.labels.class_table import SCANNET21_CLASSES

CLASS_ID = {name: i + 1 for i, (name, _, _) in enumerate(SCANNET21_CLASSES)}
IS_THING = {name: thing for name, thing, _ in SCANNET21_CLASSES}

RoomKind = Literal["bedroom-living", "kitchen-dining", "studio"]
ROOM_KINDS: Tuple[str, ...] = ("bedroom-living", "kitchen-dining", "studio")


@dataclass
class Material:
    kind: str
    """wood, fabric, paint, tiles, stripes, metal, plastic, picture, window, books, screen, lampshade."""
    colors: Tuple[Tuple[float, float, float], ...]
    scale: float = 1.0
    seed: float = 0.0


@dataclass
class Part:
    shape: Literal["box", "cylinder"]
    centre: Tuple[float, float, float]
    size: Tuple[float, float, float]
    """Box: full extents (x, y, z) before the turn; cylinder: (diameter, diameter, height)."""
    material: Material
    turn: float = 0.0
    """Rotation about the vertical axis through the part's centre (radians)."""
    bevel: float = 0.0
    """Rounded edges (metres) for soft things: cushions, mattresses, bags."""


@dataclass
class SceneObject:
    class_name: str
    instance: int
    """Scene-wide id for thing classes, 0 for stuff."""
    parts: List[Part] = field(default_factory=list)
    name: str = ""


@dataclass
class LightSpec:
    kind: Literal["area", "point"]
    position: Tuple[float, float, float]
    power: float
    color: Tuple[float, float, float] = (1.0, 0.95, 0.88)
    size: float = 0.5
    direction: Tuple[float, float, float] = (0.0, 0.0, -1.0)


@dataclass
class RoomLayout:
    kind: str
    seed: int
    size: Tuple[float, float, float]
    objects: List[SceneObject] = field(default_factory=list)
    lights: List[LightSpec] = field(default_factory=list)
    footprints: List[Tuple[float, float, float, float]] = field(default_factory=list)
    """Floor rectangles (x0, y0, x1, y1) taken by furniture; the camera path keeps out of them."""

    @property
    def num_instances(self) -> int:
        return max((o.instance for o in self.objects), default=0)

    def instance_classes(self) -> Dict[int, str]:
        return {o.instance: o.class_name for o in self.objects if o.instance > 0}


class _Builder:
    def __init__(self, kind: str, seed: int) -> None:
        self.rng = np.random.default_rng([seed, ROOM_KINDS.index(kind)])
        W = float(self.rng.uniform(4.6, 5.4))
        D = float(self.rng.uniform(4.2, 5.0))
        self.layout = RoomLayout(kind=kind, seed=seed, size=(W, D, 2.6))
        self.next_instance = 1

    # ---- materials -------------------------------------------------------------------------------------------
    def jitter(self, rgb, amount: float = 0.08) -> Tuple[float, float, float]:
        c = np.clip(np.asarray(rgb) * self.rng.uniform(0.85, 1.15) + self.rng.normal(0, amount / 2, 3), 0.02, 0.95)
        return tuple(float(v) for v in c)

    def material(self, kind: str, *colors, scale: float = 1.0) -> Material:
        return Material(kind, tuple(self.jitter(c) for c in colors), scale, float(self.rng.uniform(0, 100)))

    # ---- objects ---------------------------------------------------------------------------------------------
    def add(self, class_name: str, parts: List[Part], name: str = "") -> SceneObject:
        instance = 0
        if IS_THING[class_name]:
            instance = self.next_instance
            self.next_instance += 1
        obj = SceneObject(class_name, instance, parts, name or class_name)
        self.layout.objects.append(obj)
        return obj

    def take(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.layout.footprints.append((x0, y0, x1, y1))

    def free(self, x0: float, y0: float, x1: float, y1: float, gap: float = 0.1) -> bool:
        W, D, _ = self.layout.size
        if x0 < -1e-6 or y0 < -1e-6 or x1 > W + 1e-6 or y1 > D + 1e-6:
            return False
        return all(x1 + gap <= a0 or a1 + gap <= x0 or y1 + gap <= b0 or b1 + gap <= y0 for a0, b0, a1, b1 in self.layout.footprints)

    def wall_spot(self, wall: int, width: float, depth: float, tries: int = 200) -> Optional[Tuple[float, float, float, float, float]]:
        """A free footprint of ``width`` along ``wall`` (0: y=0, 1: y=D, 2: x=0, 3: x=W) and ``depth`` into the room.

        Returns (x0, y0, x1, y1, turn): ``turn`` rotates an object modelled facing +y (back at y=0) to face the room.
        """
        W, D, _ = self.layout.size
        for _ in range(tries):
            if wall in (0, 1):
                a = float(self.rng.uniform(0.1, W - width - 0.1))
                fp = (a, 0.0 if wall == 0 else D - depth, a + width, depth if wall == 0 else D)
            else:
                a = float(self.rng.uniform(0.1, D - width - 0.1))
                fp = (0.0 if wall == 2 else W - depth, a, depth if wall == 2 else W, a + width)
            if self.free(*fp):
                self.take(*fp)
                return (*fp, {0: 0.0, 1: np.pi, 2: -np.pi / 2, 3: np.pi / 2}[wall])
        return None


def _local(fp, turn: float, u: float, v: float, z: float) -> Tuple[float, float, float]:
    """Point at (u along the front, v into the room, z up) of an object standing at footprint ``fp``."""
    x0, y0, x1, y1 = fp
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # model frame: width along x, depth along +y, back at v = 0; centred on the footprint
    if abs(turn) < 1e-6:
        w, d = x1 - x0, y1 - y0
    elif abs(abs(turn) - np.pi) < 1e-6:
        w, d = x1 - x0, y1 - y0
    else:
        w, d = y1 - y0, x1 - x0
    lu, lv = u - w / 2, v - d / 2
    c, s = np.cos(turn), np.sin(turn)
    return (float(cx + c * lu - s * lv), float(cy + s * lu + c * lv), float(z))


def _box(fp, turn, u, v, z, size, material, bevel=0.0) -> Part:
    """Box centred at local (u, v, z) with local extents ``size``, turned with its object."""
    return Part("box", _local(fp, turn, u, v, z), size, material, turn=turn, bevel=bevel)


def _cyl(fp, turn, u, v, z, diameter, height, material) -> Part:
    return Part("cylinder", _local(fp, turn, u, v, z), (diameter, diameter, height), material, turn=turn)


def _fp_dims(fp, turn) -> Tuple[float, float]:
    x0, y0, x1, y1 = fp
    if abs(abs(turn) - np.pi / 2) < 1e-6:
        return y1 - y0, x1 - x0
    return x1 - x0, y1 - y0


# ---- furniture makers: each returns the footprint used, or None where it did not fit ---------------------------


def bed(b: _Builder, wall: int) -> bool:
    spot = b.wall_spot(wall, float(b.rng.uniform(1.45, 1.65)), 2.05)
    if spot is None:
        return False
    *fp, turn = spot
    w, d = _fp_dims(fp, turn)
    frame = b.material("wood", (0.45, 0.3, 0.18), (0.3, 0.19, 0.1), scale=4)
    sheet = b.material("fabric", b.rng.choice([(0.85, 0.85, 0.82), (0.7, 0.76, 0.85), (0.82, 0.75, 0.68)]))
    duvet = b.material("stripes", (0.75, 0.78, 0.85), (0.35, 0.45, 0.65), scale=6)
    pillow = b.material("fabric", (0.93, 0.92, 0.88))
    parts = [
        _box(fp, turn, w / 2, 0.05, 0.6, (w, 0.08, 1.2), frame),  # headboard
        _box(fp, turn, w / 2, d / 2 + 0.04, 0.17, (w, d - 0.08, 0.3), frame),
        _box(fp, turn, w / 2, d / 2 + 0.04, 0.42, (w - 0.06, d - 0.14, 0.22), sheet, bevel=0.05),
        _box(fp, turn, w / 2, d / 2 + 0.3, 0.55, (w - 0.02, d - 0.65, 0.08), duvet, bevel=0.03),
        _box(fp, turn, w * 0.27, 0.32, 0.6, (w * 0.4, 0.38, 0.14), pillow, bevel=0.05),
        _box(fp, turn, w * 0.73, 0.32, 0.6, (w * 0.4, 0.38, 0.14), pillow, bevel=0.05),
    ]
    b.add("bed", parts)
    # a bag half hidden beside the bed
    bag_mat = b.material("fabric", b.rng.choice([(0.55, 0.25, 0.15), (0.15, 0.2, 0.35), (0.2, 0.35, 0.2)]))
    _bag_beside(b, fp, turn, (w + 0.14, -0.14), d * 0.55, (0.3, 0.18, 0.34), bag_mat)
    return True


def sofa(b: _Builder, wall: int) -> bool:
    spot = b.wall_spot(wall, float(b.rng.uniform(1.8, 2.2)), 0.9)
    if spot is None:
        return False
    *fp, turn = spot
    w, d = _fp_dims(fp, turn)
    cloth = b.material("fabric", b.rng.choice([(0.5, 0.22, 0.18), (0.3, 0.38, 0.45), (0.55, 0.5, 0.4)]))
    cushion = b.material("fabric", b.rng.choice([(0.85, 0.7, 0.3), (0.75, 0.75, 0.72), (0.3, 0.5, 0.4)]))
    parts = [
        _box(fp, turn, w / 2, d / 2, 0.22, (w, d, 0.3), cloth, bevel=0.03),
        _box(fp, turn, w / 2, 0.12, 0.6, (w, 0.22, 0.55), cloth, bevel=0.05),
        _box(fp, turn, 0.1, d / 2, 0.45, (0.2, d, 0.35), cloth, bevel=0.05),
        _box(fp, turn, w - 0.1, d / 2, 0.45, (0.2, d, 0.35), cloth, bevel=0.05),
        _box(fp, turn, w / 2 - (w - 0.4) / 4, d / 2 + 0.08, 0.43, ((w - 0.44) / 2, d - 0.3, 0.13), cloth, bevel=0.04),
        _box(fp, turn, w / 2 + (w - 0.4) / 4, d / 2 + 0.08, 0.43, ((w - 0.44) / 2, d - 0.3, 0.13), cloth, bevel=0.04),
        _box(fp, turn, 0.45, 0.3, 0.62, (0.38, 0.12, 0.32), cushion, bevel=0.04),
    ]
    b.add("sofa", parts)
    bag_mat = b.material("fabric", b.rng.choice([(0.6, 0.45, 0.25), (0.1, 0.1, 0.12), (0.55, 0.15, 0.2)]))
    _bag_beside(b, fp, turn, (-0.16, w + 0.16), d * 0.6, (0.26, 0.2, 0.4), bag_mat)
    return True


def _bag_beside(b: _Builder, fp, turn: float, along: Tuple[float, float], v: float, size, material: Material) -> None:
    """A bag standing beside a piece of furniture, partly hidden by it: on the first side that lies in free floor."""
    half = max(size[0], size[1]) / 2 + 0.02
    for u in along:
        x, y, _ = _local(fp, turn, u, v, 0.0)
        if b.free(x - half, y - half, x + half, y + half, gap=0.0):
            b.take(x - half, y - half, x + half, y + half)
            b.add("bag", [_box(fp, turn, u, v, size[2] / 2, size, material, bevel=0.04)])
            return


def shelves_with_books(b: _Builder, wall: int, height: float = 1.9) -> bool:
    spot = b.wall_spot(wall, float(b.rng.uniform(0.8, 1.1)), 0.35)
    if spot is None:
        return False
    *fp, turn = spot
    w, d = _fp_dims(fp, turn)
    wood = b.material("wood", (0.5, 0.36, 0.22), (0.36, 0.24, 0.14), scale=6)
    parts = [_box(fp, turn, 0.02, d / 2, height / 2, (0.04, d, height), wood),
             _box(fp, turn, w - 0.02, d / 2, height / 2, (0.04, d, height), wood),
             _box(fp, turn, w / 2, 0.01, height / 2, (w, 0.02, height), wood)]
    levels = np.linspace(0.05, height - 0.02, 5)
    for z in levels:
        parts.append(_box(fp, turn, w / 2, d / 2, float(z), (w - 0.04, d, 0.03), wood))
    b.add("shelves", parts)
    palette = [(0.6, 0.1, 0.1), (0.1, 0.25, 0.5), (0.85, 0.75, 0.4), (0.15, 0.4, 0.2), (0.9, 0.9, 0.85), (0.3, 0.2, 0.35)]
    for z0, z1 in zip(levels[:-1], levels[1:]):
        u = 0.06
        while u < w - 0.1:
            if b.rng.uniform() < 0.15:  # gaps between groups of books
                u += float(b.rng.uniform(0.05, 0.15))
                continue
            t = float(b.rng.uniform(0.025, 0.05))
            h = float(min(z1 - z0 - 0.05, b.rng.uniform(0.18, 0.3)))
            mat = b.material("books", palette[int(b.rng.integers(len(palette)))])
            b.add("otherprop", [_box(fp, turn, u + t / 2, d / 2 + 0.02, float(z0) + 0.015 + h / 2, (t, d * 0.75, h), mat)], "book")
            u += t + 0.004
    return True


def tv_on_cabinet(b: _Builder, wall: int) -> bool:
    spot = b.wall_spot(wall, float(b.rng.uniform(1.3, 1.6)), 0.45)
    if spot is None:
        return False
    *fp, turn = spot
    w, d = _fp_dims(fp, turn)
    wood = b.material("wood", (0.25, 0.17, 0.1), (0.4, 0.28, 0.17), scale=5)
    b.add("cabinet", [_box(fp, turn, w / 2, d / 2, 0.26, (w, d, 0.5), wood),
                      _box(fp, turn, w / 4, d + 0.005, 0.26, (w / 2 - 0.02, 0.01, 0.44), wood),
                      _box(fp, turn, 3 * w / 4, d + 0.005, 0.26, (w / 2 - 0.02, 0.01, 0.44), wood)])
    tv_w = w * 0.75
    black = b.material("plastic", (0.04, 0.04, 0.045))
    screen = b.material("screen", (0.05, 0.07, 0.1))
    b.add("television", [_box(fp, turn, w / 2, d / 2, 0.53, (0.3, 0.2, 0.04), black),
                         _box(fp, turn, w / 2, d / 2, 0.62, (0.06, 0.05, 0.2), black),
                         _box(fp, turn, w / 2, d / 2, 0.72 + tv_w * 0.28, (tv_w, 0.05, tv_w * 0.56), black),
                         _box(fp, turn, w / 2, d / 2 + 0.027, 0.72 + tv_w * 0.28, (tv_w - 0.04, 0.005, tv_w * 0.56 - 0.04), screen)])
    return True


def wall_items(b: _Builder, wall: int, kind: str) -> None:
    """Window (with curtains), door or picture on a wall; they take no floor space except the door's swing."""
    W, D, H = b.layout.size
    length = W if wall in (0, 1) else D
    if kind == "window":
        width, z0, z1 = float(b.rng.uniform(1.0, 1.4)), 0.9, 2.2
    elif kind == "door":
        width, z0, z1 = 0.9, 0.0, 2.05
    else:
        width = float(b.rng.uniform(0.4, 0.8))
        z0 = float(b.rng.uniform(1.3, 1.5))
        z1 = z0 + width * float(b.rng.uniform(0.6, 0.9))
    for _ in range(100):
        a = float(b.rng.uniform(0.3, length - width - 0.3))
        fp = _wall_fp(b.layout.size, wall, a, a + width, 0.3 if kind == "door" else 0.0)
        if kind != "door" or b.free(*fp, gap=0.05):
            break
    else:
        return
    if kind == "door":
        b.take(*fp)
    turn = {0: 0.0, 1: np.pi, 2: -np.pi / 2, 3: np.pi / 2}[wall]
    slab_fp = _wall_fp(b.layout.size, wall, a, a + width, 0.04)
    zc, zh = (z0 + z1) / 2, z1 - z0
    if kind == "window":
        frame = b.material("paint", (0.92, 0.92, 0.9))
        glass = b.material("window", (0.75, 0.85, 0.95))
        b.add("window", [_box(slab_fp, turn, width / 2, 0.02, zc, (width, 0.03, zh), frame),
                         _box(slab_fp, turn, width / 4, 0.04, zc, (width / 2 - 0.08, 0.01, zh - 0.1), glass),
                         _box(slab_fp, turn, 3 * width / 4, 0.04, zc, (width / 2 - 0.08, 0.01, zh - 0.1), glass)])
        cloth = b.material("fabric", b.rng.choice([(0.8, 0.72, 0.55), (0.55, 0.6, 0.7), (0.75, 0.45, 0.4)]))
        for u in (-0.15, width + 0.15):
            b.add("curtain", [_box(slab_fp, turn, u, 0.08, (zc + zh / 2 + 0.1) / 2 + 0.05, (0.3, 0.06, zc + zh / 2 + 0.1), cloth, bevel=0.02)])
    elif kind == "door":
        wood = b.material("wood", (0.72, 0.6, 0.45), (0.6, 0.47, 0.33), scale=3)
        metal = b.material("metal", (0.75, 0.72, 0.65))
        b.add("door", [_box(slab_fp, turn, width / 2, 0.02, zc, (width, 0.04, zh), wood),
                       _box(slab_fp, turn, width - 0.1, 0.06, 1.0, (0.12, 0.04, 0.03), metal)])
    else:
        frame = b.material("wood", (0.2, 0.15, 0.1), (0.1, 0.08, 0.05), scale=10)
        art = b.material("picture", *(tuple(b.rng.uniform(0.1, 0.9, 3)) for _ in range(3)), scale=float(b.rng.uniform(2, 6)))
        b.add("otherprop", [_box(slab_fp, turn, width / 2, 0.015, zc, (width, 0.03, zh), frame),
                            _box(slab_fp, turn, width / 2, 0.032, zc, (width - 0.06, 0.005, zh - 0.06), art)], "picture")


def _wall_fp(size, wall: int, a0: float, a1: float, depth: float) -> Tuple[float, float, float, float]:
    W, D, _ = size
    if wall == 0:
        return (a0, 0.0, a1, depth)
    if wall == 1:
        return (a0, D - depth, a1, D)
    if wall == 2:
        return (0.0, a0, depth, a1)
    return (W - depth, a0, W, a1)


def table_with_chairs(b: _Builder, centre: Tuple[float, float], size: Tuple[float, float], n_chairs: int,
                      height: float = 0.75, twins: bool = True) -> None:
    cx, cy = centre
    tw, td = size
    fp = (cx - tw / 2 - 0.55, cy - td / 2 - 0.55, cx + tw / 2 + 0.55, cy + td / 2 + 0.55)
    if not b.free(*fp):
        return
    b.take(*fp)
    wood = b.material("wood", (0.55, 0.4, 0.25), (0.42, 0.28, 0.16), scale=3)
    parts = [Part("box", (cx, cy, height - 0.02), (tw, td, 0.04), wood)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(Part("box", (cx + sx * (tw / 2 - 0.06), cy + sy * (td / 2 - 0.06), (height - 0.04) / 2), (0.05, 0.05, height - 0.04), wood))
    b.add("table", parts)
    twin_mat = b.material("wood", (0.3, 0.2, 0.12), (0.2, 0.13, 0.08), scale=4)
    seat_mat = b.material("fabric", (0.5, 0.15, 0.15))
    # chairs along the long sides; the first two stand side by side and look alike
    spots = [(cx - tw / 4, cy - td / 2 - 0.25, 0.0), (cx + tw / 4, cy - td / 2 - 0.25, 0.0),
             (cx - tw / 4, cy + td / 2 + 0.25, np.pi), (cx + tw / 4, cy + td / 2 + 0.25, np.pi)][:n_chairs]
    for k, (x, y, turn) in enumerate(spots):
        if twins and k < 2:
            frame, seat = twin_mat, seat_mat
        else:
            frame = b.material("wood", (0.6, 0.45, 0.3), (0.45, 0.3, 0.2), scale=4)
            seat = b.material("fabric", b.rng.choice([(0.2, 0.3, 0.5), (0.3, 0.45, 0.3), (0.6, 0.55, 0.45)]))
        b.add("chair", _chair_parts(x, y, turn + float(b.rng.normal(0, 0.12 if k >= 2 else 0.0)), frame, seat))


def _chair_parts(x: float, y: float, turn: float, frame: Material, seat: Material) -> List[Part]:
    """A chair at (x, y) facing +y turned by ``turn`` (its back on the far side from where it faces)."""
    fp = (x - 0.22, y - 0.22, x + 0.22, y + 0.22)
    p = [_box(fp, turn, 0.22, 0.22, 0.45, (0.44, 0.44, 0.05), seat, bevel=0.015)]
    for u in (0.04, 0.4):
        for v in (0.04, 0.4):
            p.append(_box(fp, turn, u, v, 0.215, (0.035, 0.035, 0.43), frame))
    p.append(_box(fp, turn, 0.04, 0.03, 0.72, (0.035, 0.035, 0.5), frame))
    p.append(_box(fp, turn, 0.4, 0.03, 0.72, (0.035, 0.035, 0.5), frame))
    p.append(_box(fp, turn, 0.22, 0.03, 0.85, (0.4, 0.03, 0.2), frame))
    return p


def floor_lamp(b: _Builder, corner: Tuple[float, float]) -> None:
    x, y = corner
    if not b.free(x - 0.2, y - 0.2, x + 0.2, y + 0.2, gap=0.02):
        return
    b.take(x - 0.2, y - 0.2, x + 0.2, y + 0.2)
    metal = b.material("metal", (0.2, 0.2, 0.2))
    shade = b.material("lampshade", (0.95, 0.88, 0.7))
    b.add("lamp", [Part("cylinder", (x, y, 0.02), (0.3, 0.3, 0.04), metal),
                   Part("cylinder", (x, y, 0.75), (0.03, 0.03, 1.45), metal),
                   Part("cylinder", (x, y, 1.5), (0.38, 0.38, 0.3), shade)])
    b.layout.lights.append(LightSpec("point", (x, y, 1.5), 60.0, (1.0, 0.85, 0.65), 0.1))


def pendant_lamp(b: _Builder, x: float, y: float) -> None:
    H = b.layout.size[2]
    metal = b.material("metal", (0.15, 0.15, 0.15))
    shade = b.material("lampshade", (0.9, 0.9, 0.85))
    b.add("lamp", [Part("cylinder", (x, y, H - 0.3), (0.01, 0.01, 0.6), metal),
                   Part("cylinder", (x, y, H - 0.7), (0.4, 0.4, 0.22), shade)])
    b.layout.lights.append(LightSpec("point", (x, y, H - 0.78), 80.0, (1.0, 0.88, 0.7), 0.1))


def rug(b: _Builder, centre: Tuple[float, float], size: Tuple[float, float]) -> None:
    cols = [tuple(b.rng.uniform(0.15, 0.85, 3)) for _ in range(3)]
    b.add("otherprop", [Part("box", (centre[0], centre[1], 0.005), (size[0], size[1], 0.01), b.material("stripes", *cols, scale=8))], "rug")


def coffee_table(b: _Builder, centre: Tuple[float, float]) -> bool:
    x, y = centre
    if not b.free(x - 0.5, y - 0.3, x + 0.5, y + 0.3, gap=0.2):
        return False
    b.take(x - 0.5, y - 0.3, x + 0.5, y + 0.3)
    wood = b.material("wood", (0.35, 0.23, 0.14), (0.2, 0.13, 0.08), scale=5)
    parts = [Part("box", (x, y, 0.42), (1.0, 0.6, 0.04), wood)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(Part("box", (x + sx * 0.44, y + sy * 0.25, 0.2), (0.05, 0.05, 0.4), wood))
    b.add("table", parts)
    mug = b.material("plastic", tuple(b.rng.uniform(0.2, 0.9, 3)))
    b.add("otherprop", [Part("cylinder", (x + 0.2, y - 0.1, 0.49), (0.08, 0.08, 0.1), mug)], "mug")
    return True


def kitchen_counter(b: _Builder, wall: int) -> bool:
    spot = b.wall_spot(wall, float(b.rng.uniform(2.2, 2.8)), 0.62)
    if spot is None:
        return False
    *fp, turn = spot
    w, d = _fp_dims(fp, turn)
    front = b.material("paint", b.rng.choice([(0.85, 0.85, 0.82), (0.3, 0.42, 0.5), (0.55, 0.6, 0.5)]))
    top = b.material("tiles", (0.8, 0.78, 0.74), (0.4, 0.4, 0.4), scale=12)
    n_doors = int(round(w / 0.6))
    cab = [_box(fp, turn, w / 2, d / 2 - 0.02, 0.44, (w, d - 0.04, 0.86), front)]
    handle = b.material("metal", (0.7, 0.7, 0.7))
    for k in range(n_doors):
        u = (k + 0.5) * w / n_doors
        cab.append(_box(fp, turn, u, d - 0.035, 0.44, (w / n_doors - 0.02, 0.01, 0.8), front))
        cab.append(_box(fp, turn, u + 0.2, d - 0.025, 0.7, (0.1, 0.015, 0.015), handle))
    b.add("cabinet", cab)
    sink_u = w * float(b.rng.uniform(0.3, 0.7))
    b.add("counter", [_box(fp, turn, sink_u / 2 - 0.15, d / 2, 0.9, (sink_u - 0.3, d, 0.04), top),
                      _box(fp, turn, (w + sink_u + 0.3) / 2, d / 2, 0.9, (w - sink_u - 0.3, d, 0.04), top)])
    steel = b.material("metal", (0.8, 0.8, 0.82))
    b.add("sink", [_box(fp, turn, sink_u, d / 2, 0.82, (0.58, d - 0.1, 0.03), steel),
                   _box(fp, turn, sink_u, 0.06, 0.9, (0.6, 0.12, 0.04), steel),
                   _box(fp, turn, sink_u, 0.08, 1.05, (0.03, 0.03, 0.3), steel),
                   _box(fp, turn, sink_u, 0.16, 1.2, (0.03, 0.2, 0.03), steel)])
    # wall cabinets above, leaving the window/picture band free
    upper = [_box(fp, turn, w / 2, 0.17, 1.95, (w, 0.34, 0.7), front)]
    for k in range(n_doors):
        upper.append(_box(fp, turn, (k + 0.5) * w / n_doors, 0.345, 1.95, (w / n_doors - 0.02, 0.01, 0.66), front))
    b.add("cabinet", upper)
    kettle = b.material("plastic", tuple(b.rng.uniform(0.1, 0.9, 3)))
    b.add("otherprop", [_cyl(fp, turn, w * 0.15, d / 2, 1.02, 0.16, 0.2, kettle)], "kettle")
    return True


def refrigerator(b: _Builder, wall: int) -> bool:
    spot = b.wall_spot(wall, 0.7, 0.7)
    if spot is None:
        return False
    *fp, turn = spot
    w, d = _fp_dims(fp, turn)
    body = b.material("metal", b.rng.choice([(0.85, 0.85, 0.85), (0.55, 0.56, 0.58)]))
    handle = b.material("metal", (0.3, 0.3, 0.3))
    b.add("refrigerator", [_box(fp, turn, w / 2, d / 2, 0.9, (w, d, 1.8), body),
                           _box(fp, turn, w / 2, d + 0.003, 1.22, (w - 0.02, 0.01, 0.005), handle),
                           _box(fp, turn, w - 0.08, d + 0.02, 0.85, (0.03, 0.03, 0.5), handle),
                           _box(fp, turn, w - 0.08, d + 0.02, 1.45, (0.03, 0.03, 0.3), handle)])
    return True


def desk(b: _Builder, wall: int) -> bool:
    spot = b.wall_spot(wall, float(b.rng.uniform(1.4, 1.7)), 1.2)
    if spot is None:
        return False
    *fp, turn = spot
    w, d = _fp_dims(fp, turn)
    wood = b.material("wood", (0.7, 0.58, 0.42), (0.55, 0.42, 0.3), scale=4)
    depth = 0.65
    parts = [_box(fp, turn, w / 2, depth / 2, 0.74, (w, depth, 0.03), wood)]
    for u in (0.03, w - 0.03):
        parts.append(_box(fp, turn, u, depth / 2, 0.36, (0.03, depth - 0.04, 0.72), wood))
    b.add("table", parts)
    twin_frame = b.material("metal", (0.15, 0.15, 0.16))
    twin_seat = b.material("fabric", (0.2, 0.22, 0.3))
    for u in (w * 0.28, w * 0.72):
        x, y, _ = _local(fp, turn, u, depth + 0.2, 0)
        b.add("chair", _chair_parts(x, y, turn + np.pi, twin_frame, twin_seat))
    screen = b.material("screen", (0.03, 0.03, 0.05))
    b.add("television", [_box(fp, turn, w / 2, 0.12, 0.98, (0.6, 0.03, 0.36), screen),
                         _box(fp, turn, w / 2, 0.14, 0.8, (0.05, 0.05, 0.12), twin_frame)])
    books = b.material("books", (0.7, 0.2, 0.15))
    b.add("otherprop", [_box(fp, turn, w * 0.12, 0.3, 0.78, (0.22, 0.3, 0.05), books)], "book")
    return True


def ceiling_light(b: _Builder, x: float, y: float, power: float) -> None:
    b.layout.lights.append(LightSpec("area", (x, y, b.layout.size[2] - 0.02), power, (1.0, 0.96, 0.9), 1.0))


def window_light(b: _Builder) -> None:
    """Daylight through the windows: an area light just inside each window pane, facing into the room."""
    W, D, _ = b.layout.size
    for obj in b.layout.objects:
        if obj.class_name != "window":
            continue
        x, y, z = obj.parts[0].centre
        inward = np.array([W / 2 - x, D / 2 - y, 0.0])
        axis = int(np.argmax(np.abs(inward[:2])))
        direction = [0.0, 0.0, -0.3]
        direction[axis] = float(np.sign(inward[axis]))
        b.layout.lights.append(LightSpec("area", (x + direction[0] * 0.1, y + direction[1] * 0.1, z), 120.0,
                                         (0.9, 0.95, 1.0), 1.0, tuple(direction)))


def _on_some_wall(make, b: _Builder, first: int, **kw) -> bool:
    """``make`` against wall ``first``, else against the next wall where it fits."""
    return any(make(b, (first + k) % 4, **kw) for k in range(4))


def make_layout(kind: str, seed: int) -> RoomLayout:
    """A furnished room of ``kind`` laid out from ``seed`` (same arguments, same room)."""
    if kind not in ROOM_KINDS:
        raise ValueError(f"unknown room kind {kind!r}; choose one of {list(ROOM_KINDS)}")
    b = _Builder(kind, seed)
    W, D, _ = b.layout.size
    walls = list(b.rng.permutation(4))
    floor = {"bedroom-living": b.material("wood", (0.55, 0.38, 0.22), (0.42, 0.28, 0.15), scale=2),
             "kitchen-dining": b.material("tiles", (0.75, 0.72, 0.66), (0.35, 0.33, 0.3), scale=4),
             "studio": b.material("tiles", (0.45, 0.42, 0.4), (0.25, 0.24, 0.22), scale=3)}[kind]
    wall_mat = b.material("paint", b.rng.choice([(0.82, 0.78, 0.7), (0.7, 0.76, 0.78), (0.85, 0.8, 0.75)]))
    ceiling_mat = b.material("paint", (0.93, 0.93, 0.92))
    b.add("floor", [Part("box", (W / 2, D / 2, -0.05), (W, D, 0.1), floor)])
    b.add("ceiling", [Part("box", (W / 2, D / 2, 2.65), (W, D, 0.1), ceiling_mat)])
    b.add("wall", [Part("box", (W / 2, -0.05, 1.3), (W + 0.2, 0.1, 2.8), wall_mat),
                   Part("box", (W / 2, D + 0.05, 1.3), (W + 0.2, 0.1, 2.8), wall_mat),
                   Part("box", (-0.05, D / 2, 1.3), (0.1, D + 0.2, 2.8), wall_mat),
                   Part("box", (W + 0.05, D / 2, 1.3), (0.1, D + 0.2, 2.8), wall_mat)])
    if kind == "bedroom-living":
        wall_items(b, int(walls[0]), "door")
        _on_some_wall(bed, b, int(walls[1]))
        _on_some_wall(sofa, b, int(walls[2]))
        _on_some_wall(shelves_with_books, b, int(walls[3]))
        _on_some_wall(tv_on_cabinet, b, int(walls[3]) ^ 1)
        wall_items(b, int(walls[0]), "window")
        for _ in range(30):
            centre = (W / 2 + float(b.rng.uniform(-0.6, 0.6)), D / 2 + float(b.rng.uniform(-0.6, 0.6)))
            if coffee_table(b, centre):
                rug(b, centre, (float(b.rng.uniform(1.4, 1.8)), float(b.rng.uniform(1.0, 1.3))))
                break
        floor_lamp(b, (0.3, 0.3) if b.free(0.1, 0.1, 0.5, 0.5) else (W - 0.3, D - 0.3))
        for w in walls[1:3]:
            wall_items(b, int(w), "picture")
        ceiling_light(b, W / 2, D / 2, 250.0)
    elif kind == "kitchen-dining":
        _on_some_wall(kitchen_counter, b, int(walls[0]))
        _on_some_wall(refrigerator, b, int(walls[0]) if b.rng.uniform() < 0.5 else int(walls[2]))
        wall_items(b, int(walls[1]), "door")
        _on_some_wall(shelves_with_books, b, int(walls[3]), height=1.5)
        wall_items(b, int(walls[2]), "window")
        table_with_chairs(b, (W / 2 + float(b.rng.uniform(-0.15, 0.15)), D / 2 + float(b.rng.uniform(-0.15, 0.15))),
                          (1.4, 0.85), 4)
        pendant_lamp(b, W / 2, D / 2)
        bag_mat = b.material("fabric", (0.45, 0.3, 0.2))
        x, y = W / 2 + 1.05, D / 2 + 0.2
        b.add("bag", [Part("box", (x, y, 0.18), (0.34, 0.2, 0.36), bag_mat, bevel=0.04)])
        for w in (walls[1], walls[3]):
            wall_items(b, int(w), "picture")
        ceiling_light(b, W * 0.3, D * 0.5, 180.0)
        ceiling_light(b, W * 0.7, D * 0.5, 180.0)
    else:
        _on_some_wall(desk, b, int(walls[0]))
        _on_some_wall(sofa, b, int(walls[1]))
        _on_some_wall(bed, b, int(walls[2]))
        _on_some_wall(shelves_with_books, b, int(walls[3]), height=1.2)
        _on_some_wall(tv_on_cabinet, b, int(walls[3]))
        wall_items(b, int(walls[1]), "window")
        wall_items(b, int(walls[3]), "door")
        rug(b, (W / 2, D / 2), (1.5, 1.0))
        floor_lamp(b, (W - 0.3, 0.3) if b.free(W - 0.5, 0.1, W - 0.1, 0.5) else (0.3, D - 0.3))
        for w in walls[:3]:
            wall_items(b, int(w), "picture")
        ceiling_light(b, W / 2, D / 2, 260.0)
    window_light(b)
    return b.layout
