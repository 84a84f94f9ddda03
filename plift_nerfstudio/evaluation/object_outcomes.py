"""Where each true object goes in a set of panoptic maps: found, merged with another object, split, or painted as
another class (benchmarks; needs per-pixel true object ids, as the realistic rooms have).

Per true object ``o`` of class ``c``, over all the given views together (instance ids are compared across views,
as PQscene does; give one view at a time for maps whose ids are per frame, as the 2D labels'):

- ``painted``: another class covers most of o's pixels (``painted_as`` names it, ``neighbour`` the true object
  most of those pixels' segment lies on, when it is another object);
- for a thing class, with ``s`` the predicted segment (class c, one instance id) that overlaps o most:
  ``found`` when IoU(o, s) > 0.5 (as PQ matches); ``merged`` when at least a quarter of s lies on other true objects of class c
  (several chairs on one id); ``split`` when at least two segments of class c each hold 20% of o's pixels (a
  refrigerator on two ids); ``shape`` otherwise (the right class on one segment, but boundaries, holes or fog
  keep the IoU under 0.5);
- for a stuff class (all its objects form one segment, so merging is no error): ``found`` when class c covers at
  least half of o's pixels (it does, or o would be ``painted``).

``missing`` is an object with no pixels in the views.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
from jaxtyping import Int
from torch import Tensor

FOUND_IOU = 0.5
MERGED_SHARE = 0.25
SPLIT_SHARE = 0.2
OUTCOMES = ("found", "merged", "split", "shape", "painted", "missing")


@dataclass
class ObjectOutcome:
    object_id: int
    class_id: int
    outcome: str
    pixels: int
    iou: float
    """IoU of the object with its best segment of its own class (0 when painted)."""
    covered: float
    """Share of the object's pixels rendered in its class (for a stuff class the score that matters: all objects of
    the class share one segment)."""
    painted_as: Optional[int] = None
    """The class covering most of the object's pixels, when it is not the object's."""
    neighbour: Optional[int] = None
    """The true object that the painting segment mostly lies on, when it is another object."""


def object_classes(objects: Int[Tensor, "N H W"], gt_semantics: Int[Tensor, "N H W"]) -> Dict[int, int]:
    """Each true object's class: the ground-truth class of most of its pixels (object 0, unlabelled, left out)."""
    obj, cls = objects.flatten().long(), gt_semantics.flatten().long()
    keep = obj > 0
    pairs = torch.stack([obj[keep], cls[keep]], dim=1)
    unique, counts = torch.unique(pairs, dim=0, return_counts=True)
    best: Dict[int, tuple] = {}
    for (o, c), n in zip(unique.tolist(), counts.tolist()):
        if o not in best or n > best[o][1]:
            best[o] = (c, n)
    return {o: c for o, (c, _) in best.items()}


def object_outcomes(
    objects: Int[Tensor, "N H W"],
    classes_of_objects: Dict[int, int],
    pred_semantics: Int[Tensor, "N H W"],
    pred_instances: Int[Tensor, "N H W"],
    thing_class_ids: Sequence[int],
) -> List[ObjectOutcome]:
    """The outcome of every object of ``classes_of_objects`` in the predicted maps (see the module docstring)."""
    things = set(int(t) for t in thing_class_ids)
    obj = objects.flatten().long()
    sem = pred_semantics.flatten().long()
    is_thing = torch.zeros(int(sem.max()) + 1 if sem.numel() else 1, dtype=torch.bool)
    is_thing[[t for t in things if t < len(is_thing)]] = True
    inst = torch.where(is_thing[sem], pred_instances.flatten().long(), torch.zeros_like(sem))  # stuff: one segment
    segment_keys, segment = torch.unique(torch.stack([sem, inst], dim=1), dim=0, return_inverse=True)
    num_segments = len(segment_keys)
    num_objects = int(max(int(obj.max()) if obj.numel() else 0, max(classes_of_objects, default=0))) + 1
    joint = torch.bincount(obj * num_segments + segment, minlength=num_objects * num_segments)
    joint = joint.view(num_objects, num_segments).double()  # pixels of object o in segment s
    object_size, segment_size = joint.sum(dim=1), joint.sum(dim=0)
    segment_class = segment_keys[:, 0]
    out = []
    for o, c in sorted(classes_of_objects.items()):
        size = float(object_size[o]) if o < num_objects else 0.0
        if size == 0:
            out.append(ObjectOutcome(o, c, "missing", 0, 0.0, 0.0))
            continue
        row = joint[o]
        per_class = torch.zeros(int(segment_class.max()) + 1, dtype=torch.float64).index_add_(0, segment_class, row)
        dominant = int(per_class.argmax())
        covered = float(per_class[c] / size) if c < len(per_class) else 0.0
        own = segment_class == c
        own_overlap = torch.where(own, row, torch.zeros_like(row))
        best = int(own_overlap.argmax())
        if dominant != c:
            painting = int(torch.where(segment_class == dominant, row, torch.zeros_like(row)).argmax())
            # the neighbour: another true object of the painting class with the most pixels in that segment
            on_objects = torch.zeros(num_objects, dtype=torch.float64)
            for p, q in classes_of_objects.items():
                if q == dominant and p != o and p < num_objects:
                    on_objects[p] = joint[p, painting]
            neighbour = int(on_objects.argmax()) if float(on_objects.max()) > 0 else None
            out.append(ObjectOutcome(o, c, "painted", int(size), 0.0, covered, painted_as=dominant, neighbour=neighbour))
            continue
        iou = float(own_overlap[best] / (object_size[o] + segment_size[best] - own_overlap[best])) if own.any() else 0.0
        if c not in things or iou > FOUND_IOU:
            out.append(ObjectOutcome(o, c, "found", int(size), iou, covered))
            continue
        same_class_others = [p for p, q in classes_of_objects.items() if q == c and p != o and p < num_objects]
        on_others = float(joint[same_class_others, best].sum()) if same_class_others else 0.0
        if on_others >= MERGED_SHARE * float(segment_size[best]):
            outcome = "merged"
        elif int((own_overlap >= SPLIT_SHARE * size).sum()) >= 2:
            outcome = "split"
        else:
            outcome = "shape"
        out.append(ObjectOutcome(o, c, outcome, int(size), iou, covered))
    return out


def per_view_outcomes(
    objects: Int[Tensor, "N H W"],
    classes_of_objects: Dict[int, int],
    pred_semantics: Int[Tensor, "N H W"],
    pred_instances: Int[Tensor, "N H W"],
    thing_class_ids: Sequence[int],
) -> Dict[int, Counter]:
    """For maps whose ids are per frame (the 2D labels): each object's outcomes counted over the views it is in."""
    counts: Dict[int, Counter] = {o: Counter() for o in classes_of_objects}
    for view in range(objects.shape[0]):
        seen = {o: c for o, c in classes_of_objects.items() if bool((objects[view] == o).any())}
        for result in object_outcomes(objects[view : view + 1], seen, pred_semantics[view : view + 1],
                                      pred_instances[view : view + 1], thing_class_ids):
            counts[result.object_id][result.outcome] += 1
    return counts
