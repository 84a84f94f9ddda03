"""What the 2D labels' consensus allows: the class each true object gets from a majority vote of the training views'
machine labels, painted onto the test views' true objects (benchmarks; needs per-pixel true object ids).

Lifting fits the training views' labels, so for every object it converges towards what most of those labels say.
Where most training labels call a shelf "cabinet", a lifted field that fits them says "cabinet" too, even when the
test views' own labels happen to be right. The label-majority maps score a field that had every object's shape and
identity exactly right and took each object's class from the training labels' pixel vote. They are a reference, not
a bound: a field votes per point, not per object, so parts of one object can take different classes (books on a
shelf that most views call "shelves" can still come out as books where the close-ups see them). A class the
majority gets wrong is one where the labels' consensus is wrong; a class it gets right and ours does not is one the
lifting lost (geometry, capacity, training, small segments).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
from jaxtyping import Int
from torch import Tensor


def object_majority_classes(
    objects_nhw: Int[Tensor, "N H W"], label_classes_nhw: Int[Tensor, "N H W"], num_objects: int, num_classes: int
) -> Int[Tensor, "O"]:
    """Per object id 0..num_objects: the class most of its labelled pixels carry (void labels do not vote).

    ``objects_nhw`` holds true object ids (0 = no object), ``label_classes_nhw`` the machine labels' class ids
    (0 = void). An object whose every pixel is void-labelled, or that never appears, gets class 0; so does object 0.
    Ties go to the lower class id.
    """
    if objects_nhw.shape != label_classes_nhw.shape:
        raise ValueError(f"object ids {tuple(objects_nhw.shape)} and label classes {tuple(label_classes_nhw.shape)} differ in shape")
    obj = objects_nhw.long().flatten()
    cls = label_classes_nhw.long().flatten()
    if obj.numel() and (int(obj.max()) > num_objects or int(obj.min()) < 0):
        raise ValueError(f"object ids must lie in 0..{num_objects}, got {int(obj.min())}..{int(obj.max())}")
    if cls.numel() and (int(cls.max()) > num_classes or int(cls.min()) < 0):
        raise ValueError(f"class ids must lie in 0..{num_classes}, got {int(cls.min())}..{int(cls.max())}")
    votes = torch.zeros(num_objects + 1, num_classes + 1, dtype=torch.long)
    votes.index_put_((obj, cls), torch.ones_like(obj), accumulate=True)
    votes[:, 0] = 0  # void labels do not vote
    majority = votes.argmax(dim=1)
    majority[votes.sum(dim=1) == 0] = 0
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
