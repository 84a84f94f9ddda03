"""The export's manifest.json: what was exported, in which frame, and one entry per thing instance and stuff class
(ids, class, size, centroid, axis-aligned and oriented boxes, files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from plift_nerfstudio.editing.dataset_frame import DatasetFrame
from plift_nerfstudio.export.boxes import BOX_TRIM, aabb_of, inside_extent, obb_of
from plift_nerfstudio.export.groups import GroupKey
from plift_nerfstudio.export.export_folder import GENERATOR, MANIFEST_NAME
from plift_nerfstudio.labels.class_table import ClassTable

MANIFEST_VERSION = 1
FRAME_NOTE = ("coordinates of the dataset (transforms.json, the COLMAP model ns-process-data made): nerfstudio's "
              "dataparser transform and scale are undone")
BOXES_NOTE = (f"aabb and obb: boxes of an object's points (mesh vertices) without the outer {100 * BOX_TRIM:g}% at each "
              f"end of each axis, so that a few stray points do not set them; aabb_all_points: the box of all of them")


def object_entry(key: GroupKey, class_table: ClassTable, positions: np.ndarray, files: Dict[str, str],
                 **counts) -> dict:
    """Manifest entry of one group from its points or vertices [N, 3] in the dataset frame."""
    entry = {"instance_id": key.instance_id, "class_id": key.class_id, "class": class_table.names[key.class_id - 1],
             "thing": key.is_thing, **counts, "centroid": positions.mean(0).tolist(), "aabb": aabb_of(positions),
             "aabb_all_points": aabb_of(positions, trim=0.0), "obb": obb_of(inside_extent(positions)), "files": files}
    if not key.is_thing:
        del entry["instance_id"]
    return entry


def manifest(kind: str, load_config: Path, step: int, frame: DatasetFrame, class_table: ClassTable,
             scene_files: Dict[str, str], objects: List[dict], left_out: List[dict], crop: Optional[dict],
             settings: dict) -> dict:
    return {
        "generator": GENERATOR,
        "version": MANIFEST_VERSION,
        "kind": kind,
        "run": str(Path(load_config).resolve()),
        "step": step,
        "frame": FRAME_NOTE,
        "boxes": BOXES_NOTE,
        "dataparser_transform": np.asarray(frame.transform).tolist(),
        "dataparser_scale": float(frame.scale),
        "crop": crop,
        "settings": settings,
        "classes": [{"class_id": i + 1, "name": n, "thing": t} for i, (n, t) in
                    enumerate(zip(class_table.names, class_table.is_thing))],
        "scene": scene_files,
        "instances": [o for o in objects if o["thing"]],
        "stuff": [o for o in objects if not o["thing"]],
        "left_out": left_out,
    }


def write_manifest(folder: Path, content: dict) -> Path:
    path = Path(folder) / MANIFEST_NAME
    path.write_text(json.dumps(content, indent=1))
    return path


def read_manifest(folder: Path) -> dict:
    return json.loads((Path(folder) / MANIFEST_NAME).read_text())
