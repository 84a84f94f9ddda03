"""What the 2D labels' consensus allows: the class each true object gets from a vote of the training views' machine
labels, painted onto the test views' true objects (benchmarks; needs per-pixel true object ids).

Lifting fits the training views' labels, so for every object it converges towards what those labels say, and the
vote is the one the semantic loss casts: each labelled pixel adds its confidence times its class distribution (a
frame without a probability file adds one for its label's class, as the loss reads it), and the object takes the
class with the largest sum. Where the labels call a shelf "cabinet" in most views and with most weight, a lifted
field that fits them says "cabinet" too, even when the test views' own labels happen to be right. The maps score a
field that had every object's shape and identity exactly right and took each object's class from that vote. They
are a reference, not a bound: a field votes per point, not per object, so parts of one object can take different
classes (books on a shelf that most views call "shelves" can still come out as books where the close-ups see
them). A class the vote gets wrong is one where the labels' consensus is wrong; a class it gets right and ours does
not is one the lifting lost (geometry, capacity, training, small segments).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from jaxtyping import Float, Int
from torch import Tensor


def object_class_votes(
    objects_hw: Int[Tensor, "H W"],
    label_classes_hw: Int[Tensor, "H W"],
    num_objects: int,
    num_classes: int,
    class_probs_hwc: Optional[Float[Tensor, "H W C"]] = None,
    confidence_hw: Optional[Float[Tensor, "H W"]] = None,
) -> Float[Tensor, "O1 C1"]:
    """The votes of one frame's labels: ``[object id 0..num_objects, class id 0..num_classes]``.

    Each labelled pixel (label class > 0; void pixels do not vote) adds ``confidence`` times its class distribution
    over classes 1..C, or, without ``class_probs_hwc``, ``confidence`` (1 when not given) for its label's class.
    Votes of several frames add up; :func:`majority_of_votes` picks each object's class.
    """
    if objects_hw.shape != label_classes_hw.shape:
        raise ValueError(f"object ids {tuple(objects_hw.shape)} and label classes {tuple(label_classes_hw.shape)} differ in shape")
    obj = objects_hw.long().flatten()
    cls = label_classes_hw.long().flatten()
    if obj.numel() and (int(obj.max()) > num_objects or int(obj.min()) < 0):
        raise ValueError(f"object ids must lie in 0..{num_objects}, got {int(obj.min())}..{int(obj.max())}")
    if cls.numel() and (int(cls.max()) > num_classes or int(cls.min()) < 0):
        raise ValueError(f"class ids must lie in 0..{num_classes}, got {int(cls.min())}..{int(cls.max())}")
    weight = torch.ones(obj.shape, dtype=torch.float64)
    if confidence_hw is not None:
        if confidence_hw.shape != objects_hw.shape:
            raise ValueError(f"confidence {tuple(confidence_hw.shape)} and object ids {tuple(objects_hw.shape)} differ in shape")
        weight = confidence_hw.double().flatten()
    labelled = cls > 0
    obj, cls, weight = obj[labelled], cls[labelled], weight[labelled]
    votes = torch.zeros(num_objects + 1, num_classes + 1, dtype=torch.float64)
    if class_probs_hwc is None:
        votes.index_put_((obj, cls), weight, accumulate=True)
        return votes
    if tuple(class_probs_hwc.shape) != (*objects_hw.shape, num_classes):
        raise ValueError(f"class distributions {tuple(class_probs_hwc.shape)} must have shape "
                         f"{(*objects_hw.shape, num_classes)} (the frame's pixels by the table's classes)")
    distribution = class_probs_hwc.double().reshape(-1, num_classes)[labelled]
    votes[:, 1:].index_add_(0, obj, distribution * weight[:, None])
    return votes


def majority_of_votes(votes: Float[Tensor, "O1 C1"]) -> Int[Tensor, "O1"]:
    """Per object the class with the most votes (void, column 0, never wins; ties go to the lower class id); an
    object without votes, and object 0, get class 0."""
    real = votes[:, 1:]
    majority = real.argmax(dim=1) + 1
    majority[real.sum(dim=1) <= 0] = 0
    majority[0] = 0
    return majority


def majority_panoptic_maps(
    objects_nhw: Int[Tensor, "N H W"], majority_o: Int[Tensor, "O"], thing_class_ids: Sequence[int]
) -> Tuple[Int[Tensor, "N H W"], Int[Tensor, "N H W"]]:
    """Class and instance maps that give each true object its majority class. An object voted into a thing class is
    one instance (its object id, the same in every view); one voted into a stuff class gets instance 0, so objects
    voted into the same stuff class become one segment, as stuff is."""
    classes = majority_o.long()[objects_nhw.long()]
    is_thing = torch.zeros(max([int(majority_o.max()) if majority_o.numel() else 0, *thing_class_ids]) + 1, dtype=torch.bool)
    is_thing[list(thing_class_ids)] = True
    instances = torch.where(is_thing[classes], objects_nhw.long(), torch.zeros_like(classes))
    return classes, instances
