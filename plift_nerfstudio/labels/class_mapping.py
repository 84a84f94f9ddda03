"""Map a 2D segmenter's classes (COCO panoptic's 133 by default) onto the dataset's class table.

A mapping file (JSON) names the target class table and, for every source class name, the target class it
falls into or ``null`` for classes that are not used::

    {"version": 1, "source": "coco-panoptic",
     "classes": [{"id": 1, "name": "wall", "thing": false, "color": [174, 199, 232]}, ...],
     "map": {"wall-brick": "wall", "car": null, ...}}

Class probabilities are mapped by summing the probability of every source class into its target; the mass of
unused classes is dropped (paper, supplementary A; a segment with no mass left carries no label). Shipped:
``scannet21`` (supplementary Table 7, left: the demo scenes' table) and ``scannet31`` (Table 7, right: captures).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.core.errors import LabelFileError, read_json_file

MAPPINGS_DIR = Path(__file__).parent / "mappings"
BUILTIN_MAPPINGS = {"scannet21": MAPPINGS_DIR / "coco_to_scannet21.json",
                    "scannet31": MAPPINGS_DIR / "coco_to_scannet31.json"}
MAPPING_VERSION = 1


@dataclass(frozen=True)
class SourceCategory:
    """One class of the 2D segmenter: its id in the segmenter's output, name and thing flag."""

    id: int
    name: str
    thing: bool


def coco_panoptic_categories() -> List[SourceCategory]:
    """The 133 COCO-panoptic categories, in the order of a COCO-panoptic Mask2Former's class logits."""
    data = read_json_file(MAPPINGS_DIR / "coco_panoptic_categories.json", "COCO category list")
    return [SourceCategory(int(c["id"]), str(c["name"]), bool(c["thing"])) for c in data["categories"]]


@dataclass(frozen=True)
class ClassMapping:
    """Source classes (in model output order) onto a target class table."""

    source: Tuple[SourceCategory, ...]
    target: ClassTable
    target_of_source: Tuple[Optional[int], ...]
    """Target class id (1..C) of each source class, or None if unused."""

    @property
    def matrix_sc(self) -> np.ndarray:
        """[S, C] 0/1 matrix: probabilities [N, S] @ matrix = probabilities over the target classes 1..C."""
        matrix = np.zeros((len(self.source), self.target.num_classes), np.float32)
        for s, t in enumerate(self.target_of_source):
            if t is not None:
                matrix[s, t - 1] = 1.0
        return matrix

    def map_probs(self, probs_ns: np.ndarray) -> np.ndarray:
        """Sum source-class probabilities [N, S] into target classes [N, C] (unused classes dropped)."""
        if probs_ns.shape[-1] != len(self.source):
            raise ValueError(f"expected {len(self.source)} source class probabilities, got {probs_ns.shape[-1]}")
        return probs_ns @ self.matrix_sc

    def target_of_id(self) -> Dict[int, Optional[int]]:
        """Source category id (as in a COCO-panoptic ``segments_info``) -> target class id or None."""
        return {c.id: t for c, t in zip(self.source, self.target_of_source)}


def load_class_mapping(
    name_or_path: Union[str, Path], source: Optional[Sequence[SourceCategory]] = None
) -> ClassMapping:
    """A shipped mapping ('scannet21', 'scannet31') or a user's mapping file, checked against ``source``.

    Every source class must appear in ``map`` (with a target name or null) and every target must be a class of
    the file's table; anything else raises LabelFileError naming the file and the offending names.
    """
    path = BUILTIN_MAPPINGS.get(str(name_or_path), Path(name_or_path))
    if not path.is_file():
        raise LabelFileError(path, f"--mapping {str(name_or_path)!r} is neither a built-in mapping "
                                   f"({', '.join(sorted(BUILTIN_MAPPINGS))}) nor an existing mapping file")
    source = list(source) if source is not None else coco_panoptic_categories()
    data = read_json_file(path, "class mapping file")
    if not isinstance(data, dict) or data.get("version") != MAPPING_VERSION:
        raise LabelFileError(path, f"class mapping must be an object with \"version\": {MAPPING_VERSION}")
    target = ClassTable.from_entries(data.get("classes"), source=str(path))
    mapping = data.get("map")
    if not isinstance(mapping, dict):
        raise LabelFileError(path, "'map' must be an object from source class name to target class name or null")
    source_names = [c.name for c in source]
    missing = [n for n in source_names if n not in mapping]
    unknown = sorted(set(mapping) - set(source_names))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"source classes not in 'map': {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        if unknown:
            parts.append(f"'map' names classes the segmenter does not have: {', '.join(unknown[:8])}")
        raise LabelFileError(path, "; ".join(parts))
    target_ids = {n: i + 1 for i, n in enumerate(target.names)}
    bad = sorted({str(v) for v in mapping.values() if v is not None and v not in target_ids})
    if bad:
        raise LabelFileError(path, f"'map' targets that are not classes of its table: {', '.join(bad)}")
    if all(v is None for v in mapping.values()):
        raise LabelFileError(path, "'map' sends every source class to null: nothing would be labelled")
    return ClassMapping(tuple(source), target, tuple(target_ids.get(mapping[n]) for n in source_names))
