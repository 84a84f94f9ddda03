"""Writing a generated scene's frames in the dataset contract (``docs/labels.md``), shared by plift-synth and
plift-realistic-scene: images, machine labels (class and per-frame instance maps, class distributions and confidences
at half resolution), ground truth (classes, scene-wide instance ids, depth in millimetres), a contact sheet, and the
machine labels again as most segmenters export them (COCO panoptic: one class and score per segment)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np

from plift_nerfstudio.labels.frame_labels import write_label_png
from plift_nerfstudio.labels.ground_truth import GT_INSTANCES_KEY, GT_SEMANTICS_KEY


@dataclass
class MachineLabels:
    """Machine labels of one frame, as a 2D panoptic network would give them."""

    semantics: np.ndarray  # [H, W] uint16
    instances: np.ndarray  # [H, W] uint16, unique per frame, 0 = stuff/void
    class_probs: np.ndarray  # [h, w, C] float16 (half resolution)
    confidence: np.ndarray  # [h, w] float16


@dataclass
class Rendered:
    """A generated frame and its ground truth."""

    rgb: np.ndarray  # [H, W, 3] uint8
    depth: np.ndarray  # [H, W] float32, distance along the ray (metres)
    semantics: np.ndarray  # [H, W] uint16 class id
    instances: np.ndarray  # [H, W] uint16 scene-wide instance id, 0 = stuff


def save_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def save_depth_mm(path: Path, depth: np.ndarray) -> None:
    write_label_png(path, np.clip(np.round(depth * 1000), 0, 65535).astype(np.uint16))


def save_machine_labels(root: Path, prefix: str, name: str, labels: MachineLabels) -> dict:
    sem = f"{prefix}semantics/{name}.png"
    inst = f"{prefix}instances/{name}.png"
    probs = f"{prefix}probs/{name}.npz"
    write_label_png(root / sem, labels.semantics)
    write_label_png(root / inst, labels.instances)
    (root / probs).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / probs, class_probs=labels.class_probs, confidence=labels.confidence)
    return {"semantics_path": sem, "instances_path": inst, "class_probs_path": probs}


def save_ground_truth(root: Path, prefix: str, name: str, frame: Rendered, lut: Optional[np.ndarray] = None) -> dict:
    paths = {
        GT_SEMANTICS_KEY: f"{prefix}semantics/{name}.png",
        GT_INSTANCES_KEY: f"{prefix}instances/{name}.png",
        "gt_depth_path": f"{prefix}depth/{name}.png",
    }
    semantics = frame.semantics if lut is None else lut[frame.semantics].astype(frame.semantics.dtype)
    write_label_png(root / paths[GT_SEMANTICS_KEY], semantics)
    write_label_png(root / paths[GT_INSTANCES_KEY], frame.instances)
    save_depth_mm(root / paths["gt_depth_path"], frame.depth)
    return paths


def contact_row(frame: Rendered, labels: MachineLabels, class_colors, lut: Optional[np.ndarray] = None) -> np.ndarray:
    """image | GT semantics | GT instances | machine semantics | machine instances | machine confidence."""
    pal = np.array([(0, 0, 0), *class_colors], np.uint8)

    def ids(x: np.ndarray) -> np.ndarray:
        hue = (x.astype(np.int64) * 47) % 180
        hsv = np.stack([hue, np.full_like(hue, 200), np.where(x > 0, 230, 0)], -1).astype(np.uint8)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)

    H, W = frame.semantics.shape
    conf = cv2.resize(labels.confidence.astype(np.float32), (W, H), interpolation=cv2.INTER_NEAREST)
    conf_rgb = np.repeat((conf * 255).astype(np.uint8)[..., None], 3, -1)
    return np.concatenate(
        [frame.rgb, pal[frame.semantics if lut is None else lut[frame.semantics]], ids(frame.instances), pal[labels.semantics], ids(labels.instances), conf_rgb], axis=1
    )


COCO_PANOPTIC_JSON = "coco_panoptic/predictions.json"
"""Where a scene writes its machine labels as most segmenters export them (PNGs in ``coco_panoptic/predictions/``)."""


def coco_category_of_class() -> Dict[str, dict]:
    """For each class of the 21-class table, the COCO panoptic category a segmenter would output for it: among the
    categories ``coco_to_scannet21`` maps onto the class, one whose thing flag matches, then one named like the class
    (or a catch-all such as ``wall-other-merged``), then the lowest id."""
    from plift_nerfstudio.labels.class_mapping import coco_panoptic_categories
    from plift_nerfstudio.labels.class_table import scannet21_class_table

    mapping = json.loads((Path(__file__).resolve().parents[1] / "labels" / "mappings" / "coco_to_scannet21.json")
                         .read_text())["map"]
    table = scannet21_class_table()
    candidates: Dict[str, List[tuple]] = {}
    for category in coco_panoptic_categories():
        target = mapping.get(category.name)
        if target is None:
            continue
        thing_matches = category.thing == table.is_thing[table.names.index(target)]
        plain = category.name == target or "other" in category.name
        candidates.setdefault(target, []).append((not thing_matches, not plain, category.id, category))
    chosen = {target: min(found, key=lambda c: c[:3])[3] for target, found in candidates.items()}
    return {target: {"id": c.id, "name": c.name, "isthing": int(c.thing)} for target, c in chosen.items()}


def save_coco_panoptic_frame(root: Path, name: str, labels: MachineLabels, class_names: List[str],
                             categories: Dict[str, dict]) -> dict:
    """One frame of the COCO panoptic variant: a PNG of segment ids (``R + 256 G``) and the frame's annotation,
    one COCO category and one score per segment (the segment's class probability), no distributions."""
    semantics, instances = labels.semantics.astype(np.int64), labels.instances.astype(np.int64)
    h, w = labels.confidence.shape
    small_sem = cv2.resize(semantics.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int64)
    small_ins = cv2.resize(instances.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int64)
    probs = labels.class_probs.astype(np.float32)
    segment_ids = np.zeros(semantics.shape, np.int64)
    segments_info = []
    for cls, inst in sorted({(int(c), int(i)) for c, i in zip(semantics.ravel(), instances.ravel()) if c > 0}):
        category = categories.get(class_names[cls - 1])
        if category is None:
            continue
        mask = (semantics == cls) & (instances == inst)
        small = (small_sem == cls) & (small_ins == inst)
        score = float(np.median(probs[small, cls - 1])) if small.any() else float(probs[..., cls - 1].max())
        segment_ids[mask] = len(segments_info) + 1
        segments_info.append({"id": len(segments_info) + 1, "category_id": category["id"], "score": round(score, 4),
                              "area": int(mask.sum())})
    png = root / Path(COCO_PANOPTIC_JSON).with_suffix("") / f"{name}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.stack([segment_ids % 256, segment_ids // 256 % 256, segment_ids // 65536], -1).astype(np.uint8)
    cv2.imwrite(str(png), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return {"file_name": png.name, "image_id": name, "segments_info": segments_info}


def save_coco_panoptic_json(root: Path, annotations: List[dict]) -> None:
    """The COCO panoptic JSON of a scene: its frames' annotations and the 133 COCO panoptic categories."""
    from plift_nerfstudio.labels.class_mapping import coco_panoptic_categories

    categories = [{"id": c.id, "name": c.name, "isthing": int(c.thing)} for c in coco_panoptic_categories()]
    (root / COCO_PANOPTIC_JSON).write_text(json.dumps({"annotations": annotations, "categories": categories}, indent=1))
