"""Edit lists: operations on the 3D instances of a trained scene, as a versioned JSON file.

Format (version 1)::

    {"version": 1,
     "frame": "dataset",
     "up": [0, 0, 1],
     "edits": [
       {"op": "delete", "instance_id": 7, "class": "chair"},
       {"op": "duplicate", "instance_id": 3, "class": "bed",
        "transform": {"translation": [1.2, 0, 0], "rotation_deg": 90, "scale": 1.0, "pivot": [2.1, 0.8, 0.4]}},
       {"op": "move", "instance_id": 5, "class": "table", "transform": {"translation": [0, -0.5, 0]}}
     ]}

- ``instance_id`` is the id the renders show (the ``instance_id`` output, the same in every view); ``class`` is the
  name of its class in the dataset's class table, which must be a thing class. The pair is the instance: two objects
  of different classes may share an id (chair 3 and sofa 3), and each is edited on its own.
- Coordinates are in the dataset's frame (the one of ``transforms.json``, before nerfstudio's dataparser centres and
  scales the poses), in its units.
- ``transform`` places the copy: ``x' = pivot + translation + scale * R(up, rotation_deg) (x - pivot)``. ``up`` is the
  rotation axis (default: the direction that is up in the viewer); ``pivot`` defaults to the centre of the
  instance's footprint on the floor (its seen surface points projected on the plane normal to ``up``, at their lowest
  height), ``scale`` to 1, the rest to 0. A scaled copy keeps the original's opacity: its density is divided by
  ``scale``, so a ray through the copy gathers the optical depth of the corresponding ray through the original.
- ``delete`` removes the instance, ``duplicate`` adds a copy with a new instance id (after the surrogate ids), and
  ``move`` is a delete plus a copy that keeps the id.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np

from plift_nerfstudio.core.errors import UserFileError

EDIT_LIST_VERSION = 1
OPERATIONS = ("delete", "duplicate", "move")
Operation = Literal["delete", "duplicate", "move"]
Vector = Tuple[float, float, float]


class EditListError(UserFileError):
    """An edit list that cannot be applied (malformed, or naming an instance the scene does not have)."""


@dataclass(frozen=True)
class RigidTransform:
    """Pose of a copy relative to its original: translation, rotation about the up axis through ``pivot``, uniform
    scale about ``pivot``."""

    translation: Vector = (0.0, 0.0, 0.0)
    rotation_deg: float = 0.0
    scale: float = 1.0
    pivot: Optional[Vector] = None
    """None: the centre of the instance's footprint on the floor, decided when the edit list is applied."""

    @property
    def is_identity(self) -> bool:
        """Leaves every point where it is (whatever the pivot)."""
        return self.translation == (0.0, 0.0, 0.0) and self.rotation_deg % 360.0 == 0.0 and self.scale == 1.0

    def matrix(self, up: Sequence[float], pivot: Sequence[float]) -> np.ndarray:
        """4x4 matrix taking a point of the original to the copy (``pivot`` used when the transform has none)."""
        centre = np.asarray(self.pivot if self.pivot is not None else pivot, dtype=np.float64)
        linear = self.scale * rotation_about(np.asarray(up, dtype=np.float64), math.radians(self.rotation_deg))
        out = np.eye(4)
        out[:3, :3] = linear
        out[:3, 3] = centre + np.asarray(self.translation, dtype=np.float64) - linear @ centre
        return out

    def to_json_dict(self) -> dict:
        out = {"translation": list(self.translation), "rotation_deg": self.rotation_deg, "scale": self.scale}
        if self.pivot is not None:
            out["pivot"] = list(self.pivot)
        return out


@dataclass(frozen=True)
class Edit:
    op: Operation
    instance_id: int
    class_name: str
    transform: Optional[RigidTransform] = None

    @property
    def key(self) -> Tuple[int, str]:
        """The instance the edit acts on: (id, class name). Two objects of different classes may share an id."""
        return (self.instance_id, self.class_name)

    def to_json_dict(self) -> dict:
        out: dict = {"op": self.op, "instance_id": self.instance_id, "class": self.class_name}
        if self.transform is not None:
            out["transform"] = self.transform.to_json_dict()
        return out


@dataclass
class EditList:
    edits: List[Edit] = field(default_factory=list)
    up: Optional[Vector] = None
    """Rotation axis in the dataset frame; None: the viewer's up (nerfstudio's +z taken back to the dataset frame)."""

    def to_json_dict(self) -> dict:
        out: dict = {"version": EDIT_LIST_VERSION, "frame": "dataset"}
        if self.up is not None:
            out["up"] = list(self.up)
        out["edits"] = [e.to_json_dict() for e in self.edits]
        return out

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json_dict(), indent=2) + "\n")


def rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` radians about ``axis`` (right-handed; Rodrigues' formula)."""
    norm = float(np.linalg.norm(axis))
    if norm == 0.0:
        raise ValueError("a rotation axis must not be zero")
    x, y, z = axis / norm
    cross = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + math.sin(angle) * cross + (1.0 - math.cos(angle)) * cross @ cross


def _vector(value, where: str, source: str) -> Vector:
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        raise EditListError(source, f"{where} must be a list of 3 finite numbers, got {value!r}")
    return (float(value[0]), float(value[1]), float(value[2]))


def _number(value, where: str, source: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise EditListError(source, f"{where} must be a finite number, got {value!r}")
    return float(value)


def parse_transform(entry, where: str, source: str) -> RigidTransform:
    if not isinstance(entry, dict):
        raise EditListError(source, f"{where} must be an object with translation/rotation_deg/scale/pivot, got {entry!r}")
    unknown = set(entry) - {"translation", "rotation_deg", "scale", "pivot"}
    if unknown:
        raise EditListError(source, f"{where} has unknown keys {sorted(unknown)} (allowed: translation, rotation_deg, "
                                    "scale, pivot)")
    scale = _number(entry.get("scale", 1.0), f"{where}.scale", source)
    if scale <= 0:
        raise EditListError(source, f"{where}.scale must be positive, got {scale}")
    return RigidTransform(
        translation=_vector(entry.get("translation", [0, 0, 0]), f"{where}.translation", source),
        rotation_deg=_number(entry.get("rotation_deg", 0.0), f"{where}.rotation_deg", source),
        scale=scale,
        pivot=_vector(entry["pivot"], f"{where}.pivot", source) if "pivot" in entry else None,
    )


def parse_edit_list(data, source: str = "<memory>") -> EditList:
    """An edit list from its JSON object; malformed entries raise :class:`EditListError` naming ``source``."""
    if not isinstance(data, dict):
        raise EditListError(source, "an edit list must be a JSON object with 'version' and 'edits'")
    if data.get("version") != EDIT_LIST_VERSION:
        raise EditListError(source, f"unsupported edit list version {data.get('version')!r} (this plugin reads "
                                    f"version {EDIT_LIST_VERSION})")
    if data.get("frame", "dataset") != "dataset":
        raise EditListError(source, f"'frame' must be 'dataset', got {data.get('frame')!r}")
    up = _vector(data["up"], "'up'", source) if data.get("up") is not None else None
    if up is not None and not any(up):
        raise EditListError(source, "'up' must not be the zero vector")
    entries = data.get("edits")
    if not isinstance(entries, list):
        raise EditListError(source, "'edits' must be a list")
    edits = []
    for index, entry in enumerate(entries):
        where = f"edit {index}"
        if not isinstance(entry, dict):
            raise EditListError(source, f"{where} must be an object, got {entry!r}")
        op = entry.get("op")
        if op not in OPERATIONS:
            raise EditListError(source, f"{where}: 'op' must be one of {list(OPERATIONS)}, got {op!r}")
        where = f"edit {index} ({op})"
        instance_id = entry.get("instance_id")
        if not isinstance(instance_id, int) or isinstance(instance_id, bool) or instance_id < 1:
            raise EditListError(source, f"{where}: 'instance_id' must be a positive integer (an id of the "
                                        f"instance_id render), got {instance_id!r}")
        class_name = entry.get("class")
        if not isinstance(class_name, str) or not class_name:
            raise EditListError(source, f"{where}: 'class' must be the instance's class name, got {class_name!r}")
        transform = None
        if op == "delete":
            if "transform" in entry:
                raise EditListError(source, f"{where}: a deletion takes no 'transform'")
        else:
            if "transform" not in entry:
                raise EditListError(source, f"{where}: needs a 'transform' giving the copy's pose")
            transform = parse_transform(entry["transform"], f"{where}: transform", source)
        edits.append(Edit(op=op, instance_id=instance_id, class_name=class_name, transform=transform))
    removed = [e.key for e in edits if e.op in ("delete", "move")]
    twice = sorted({key for key in removed if removed.count(key) > 1})
    if twice:
        named = ", ".join(f"{name} {instance_id}" for instance_id, name in twice)
        raise EditListError(source, f"{named}: deleted or moved more than once (an instance is its id and its class)")
    return EditList(edits=edits, up=up)


def check_true_instance(edit: Edit, index: int, classes: Dict[int, str], is_thing: Dict[str, bool], source: str) -> None:
    """Refuse an edit of a generated scene's truth (its own ids, ``classes``: id -> class name) that names an id the
    scene lacks, a stuff class, or another class than the scene gives the id."""
    where = f"edit {index} ({edit.op} of {edit.class_name} {edit.instance_id})"
    if edit.instance_id not in classes:
        raise EditListError(source, f"{where}: the scene has no instance {edit.instance_id} (its ids: {sorted(classes)})")
    if not is_thing.get(edit.class_name, False) or classes[edit.instance_id] != edit.class_name:
        raise EditListError(source, f"{where}: instance {edit.instance_id} is a {classes[edit.instance_id]!r}, not a "
                                    f"{edit.class_name!r}")


def load_edit_list(path: Union[str, Path]) -> EditList:
    path = Path(path)
    if not path.is_file():
        raise EditListError(path, "edit list not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise EditListError(path, f"not valid JSON ({err})") from None
    return parse_edit_list(data, str(path))
