"""The class table of a labelled dataset: ids, names, thing/stuff flags and display colours.

File format (JSON, contract version 1)::

    {"version": 1,
     "classes": [{"id": 1, "name": "wall", "thing": false, "color": [174, 199, 232]}, ...]}

Class ids run 1..C without gaps; id 0 is reserved for void (unlabelled) and is never listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

from plift_nerfstudio.core.errors import LabelFileError, read_json_file

CLASS_TABLE_VERSION = 1


@dataclass(frozen=True)
class ClassTable:
    """Classes 1..C of a dataset (index i of each list is class id i + 1)."""

    names: Tuple[str, ...]
    is_thing: Tuple[bool, ...]
    colors: Tuple[Tuple[int, int, int], ...]

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def thing_ids(self) -> List[int]:
        return [i + 1 for i, thing in enumerate(self.is_thing) if thing]

    def to_json_dict(self) -> dict:
        return {
            "version": CLASS_TABLE_VERSION,
            "classes": [
                {"id": i + 1, "name": n, "thing": t, "color": list(c)}
                for i, (n, t, c) in enumerate(zip(self.names, self.is_thing, self.colors))
            ],
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json_dict(), indent=2))

    @classmethod
    def from_entries(cls, entries: Sequence[dict], source: str = "<memory>") -> "ClassTable":
        if not isinstance(entries, (list, tuple)) or len(entries) == 0:
            raise LabelFileError(source, "'classes' must be a non-empty list")
        for entry in entries:
            if not isinstance(entry, dict):
                raise LabelFileError(source, f"class entry {entry!r} is not an object")
            for key in ("id", "name", "thing", "color"):
                if key not in entry:
                    raise LabelFileError(source, f"class entry {entry!r} lacks the key '{key}'")
            if not isinstance(entry["id"], int) or isinstance(entry["id"], bool):
                raise LabelFileError(source, f"class {entry['name']!r}: 'id' must be an integer, found {entry['id']!r}")
        for key in ("id", "name"):
            seen: dict = {}
            for entry in entries:
                value = entry[key] if key == "id" else str(entry[key])
                other = entry["name"] if key == "id" else entry["id"]
                if value in seen:
                    both = "classes" if key == "id" else "ids"
                    raise LabelFileError(source, f"duplicate class {key} {value!r} ({both} {seen[value]!r} and "
                                                 f"{other!r}); each class needs its own id and name")
                seen[value] = other
        entries = sorted(entries, key=lambda e: e["id"])
        names, things, colors = [], [], []
        for expected_id, entry in enumerate(entries, start=1):
            if entry["id"] != expected_id:
                raise LabelFileError(
                    source,
                    f"class ids must run 1..C without gaps (0 is void); expected id {expected_id}, found {entry['id']}",
                )
            color = entry["color"]
            if (
                not isinstance(color, (list, tuple))
                or len(color) != 3
                or not all(isinstance(v, int) and 0 <= v <= 255 for v in color)
            ):
                raise LabelFileError(source, f"class {entry['name']!r}: color must be three integers 0..255")
            if not isinstance(entry["thing"], bool):
                raise LabelFileError(source, f"class {entry['name']!r}: 'thing' must be true or false")
            names.append(str(entry["name"]))
            things.append(entry["thing"])
            colors.append(tuple(int(v) for v in color))
        return cls(tuple(names), tuple(things), tuple(colors))  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> "ClassTable":
        path = Path(path)
        data = read_json_file(path, "class table file")
        if not isinstance(data, dict) or data.get("version") != CLASS_TABLE_VERSION:
            raise LabelFileError(
                path, f"class table must be an object with \"version\": {CLASS_TABLE_VERSION}"
            )
        return cls.from_entries(data.get("classes"), source=str(path))


# The 21-class ScanNet-derived table of the paper's supplementary (Table 7, left).
# Colours: a fixed, readable palette (ours).
SCANNET21_CLASSES: Tuple[Tuple[str, bool, Tuple[int, int, int]], ...] = (
    ("wall", False, (174, 199, 232)),
    ("floor", False, (152, 223, 138)),
    ("cabinet", False, (31, 119, 180)),
    ("bed", True, (255, 187, 120)),
    ("chair", True, (188, 189, 34)),
    ("sofa", True, (140, 86, 75)),
    ("table", False, (255, 152, 150)),
    ("door", False, (214, 39, 40)),
    ("window", False, (197, 176, 213)),
    ("counter", False, (23, 190, 207)),
    ("shelves", False, (148, 103, 189)),
    ("curtain", False, (219, 219, 141)),
    ("ceiling", False, (220, 220, 220)),
    ("refrigerator", True, (255, 127, 14)),
    ("television", True, (44, 160, 44)),
    ("person", True, (227, 119, 194)),
    ("toilet", True, (112, 128, 144)),
    ("sink", True, (82, 84, 163)),
    ("lamp", False, (247, 182, 210)),
    ("bag", True, (158, 218, 229)),
    ("otherprop", False, (100, 85, 144)),
)


def scannet21_class_table() -> ClassTable:
    return ClassTable(
        names=tuple(n for n, _, _ in SCANNET21_CLASSES),
        is_thing=tuple(t for _, t, _ in SCANNET21_CLASSES),
        colors=tuple(c for _, _, c in SCANNET21_CLASSES),
    )
