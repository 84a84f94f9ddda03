"""How well exported objects match the true ones (``scripts/benchmark_export.py``), from quantities the caller
measures against its truth: pure functions on arrays.

- precision of an exported instance: the share of its points within the tolerance (5 cm) of the true object it lies
  on most (``near_share[e, t]``: share of e's points near true object t);
- recall: the share of true objects with an exported instance of the same class whose axis-aligned box has IoU
  >= 0.5 with the true object's;
- fragments: exported instances of the object's class that overlap it (IoU >= 0.1) beyond the first; spurious:
  exported instances that match no true object of their class.
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from plift_nerfstudio.export.boxes import box_iou


def box_iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU [A, B] of axis-aligned boxes [A, 2, 3] and [B, 2, 3] (rows: min corner, max corner)."""
    return np.array([[box_iou(a[0], a[1], b[0], b[1]) for b in boxes_b] for a in boxes_a]).reshape(len(boxes_a), len(boxes_b))


def thing_scores(exported_class: np.ndarray, exported_boxes: np.ndarray, exported_points: np.ndarray,
                 true_class: np.ndarray, true_boxes: np.ndarray, near_share: np.ndarray,
                 min_iou: float = 0.5) -> Dict[str, object]:
    """Per exported instance and per true object, and the averages (see the module's docstring)."""
    iou = box_iou_matrix(exported_boxes, true_boxes)
    same = exported_class[:, None] == true_class[None, :]
    iou_same = np.where(same, iou, 0.0)
    exported: List[dict] = []
    for e in range(len(exported_class)):
        t = int(near_share[e].argmax()) if near_share.shape[1] else -1
        exported.append({
            "precision": float(near_share[e, t]) if t >= 0 else 0.0,
            "on_object": t,
            "class_agrees": bool(t >= 0 and same[e, t]),
            "best_iou": float(iou_same[e].max()) if iou_same.shape[1] else 0.0,
            "points": int(exported_points[e]),
        })
    objects: List[dict] = []
    for t in range(len(true_class)):
        best = int(iou_same[:, t].argmax()) if len(exported_class) else -1
        objects.append({
            "recalled": bool(best >= 0 and iou_same[best, t] >= min_iou),
            "best_iou": float(iou_same[best, t]) if best >= 0 else 0.0,
            "exported_as": best,
            "fragments": int(max(0, (iou_same[:, t] >= 0.1).sum() - 1)),
        })
    precision = np.array([e["precision"] for e in exported])
    weights = np.array([e["points"] for e in exported], dtype=np.float64)
    matched = iou_same.max(axis=1) >= min_iou if iou_same.size else np.zeros(len(exported_class), dtype=bool)
    return {
        "exported": exported,
        "objects": objects,
        "precision": float(precision.mean()) if len(precision) else 0.0,
        "precision_of_points": float((precision * weights).sum() / weights.sum()) if weights.sum() > 0 else 0.0,
        "recall": float(np.mean([o["recalled"] for o in objects])) if objects else 0.0,
        "spurious": int((~matched).sum()),
        "fragments": int(sum(o["fragments"] for o in objects)),
    }


def stuff_scores(distance_same_class: np.ndarray, distance_any: np.ndarray, class_id: np.ndarray,
                 tolerance: float = 0.05) -> Dict[str, object]:
    """Stuff points: mean distance to the true surfaces of their own class (and to any surface), the share within
    ``tolerance``, per class and over all points. Inf distances (a class the truth lacks) count as misses and are
    left out of the means."""
    finite = np.isfinite(distance_same_class)
    per_class = {}
    for c in np.unique(class_id):
        mine = class_id == c
        ok = mine & finite
        per_class[int(c)] = {
            "points": int(mine.sum()),
            "mean_distance": float(distance_same_class[ok].mean()) if ok.any() else None,
            "within": float((distance_same_class[mine] <= tolerance).mean()),
        }
    return {
        "mean_distance": float(distance_same_class[finite].mean()) if finite.any() else None,
        "mean_distance_any": float(distance_any.mean()) if len(distance_any) else None,
        "within": float((distance_same_class <= tolerance).mean()) if len(class_id) else 0.0,
        "per_class": per_class,
    }
