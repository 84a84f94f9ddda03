"""Binary PLY of labelled points: x, y, z, red, green, blue (what every viewer reads) plus the extra vertex properties
class_id, class_prob, instance_id and instance_prob, and one ``comment class <id> <name>`` line per class."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from plyfile import PlyData, PlyElement

POINT_PROPERTIES = (
    ("x", "f4"), ("y", "f4"), ("z", "f4"),
    ("red", "u1"), ("green", "u1"), ("blue", "u1"),
    ("class_id", "u2"), ("class_prob", "f4"),
    ("instance_id", "u2"), ("instance_prob", "f4"),
)


def write_labelled_points(
    path: Path,
    positions: np.ndarray,
    colours: np.ndarray,
    class_id: np.ndarray,
    class_prob: np.ndarray,
    instance_id: np.ndarray,
    instance_prob: np.ndarray,
    class_names: Sequence[str],
) -> None:
    """Write N points (positions [N, 3], colours [N, 3] in [0, 1]) with their labels to ``path``."""
    vertex = np.empty(len(positions), dtype=list(POINT_PROPERTIES))
    for i, axis in enumerate("xyz"):
        vertex[axis] = positions[:, i]
    rgb = np.clip(np.round(np.asarray(colours) * 255), 0, 255).astype(np.uint8)
    for i, channel in enumerate(("red", "green", "blue")):
        vertex[channel] = rgb[:, i]
    vertex["class_id"], vertex["class_prob"] = class_id, class_prob
    vertex["instance_id"], vertex["instance_prob"] = instance_id, instance_prob
    comments = ["plift-export labelled points (class_id 0: void; instance_id 0: stuff)"]
    comments += [f"class {i + 1} {name}" for i, name in enumerate(class_names)]
    PlyData([PlyElement.describe(vertex, "vertex")], text=False, byte_order="<", comments=comments).write(str(path))
