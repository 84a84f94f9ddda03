"""From rendered distributions to panoptic labels and their colours (paper Sec. 3.2, 'Rendering panoptic segmentations')."""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from plift_nerfstudio.labels.class_table import ClassTable


VOID_ACCUMULATION = 0.1
"""Rays whose rendered opacity (accumulation) is below this saw (almost) nothing: they get class 0 (void) and
instance 0, rather than the argmax of an all-but-zero distribution."""


def panoptic_labels(
    semantic_probs: Float[Tensor, "R C"],
    instance_probs: Float[Tensor, "R K"],
    is_thing_lut: Bool[Tensor, "C1"],
    accumulation: Float[Tensor, "R 1"],
    min_accumulation: float = VOID_ACCUMULATION,
) -> Tuple[Int[Tensor, "R"], Int[Tensor, "R"]]:
    """Class id (1..C) = argmax of the semantic distribution; instance id (1..K) = argmax surrogate id + 1 where
    the class is a thing, 0 for stuff. Together (class, instance) identify a 3D segment across views. Rays with
    accumulation below ``min_accumulation`` are void (class 0, instance 0)."""
    hit = accumulation.reshape(-1) >= min_accumulation
    class_id = torch.where(hit, semantic_probs.argmax(dim=-1) + 1, torch.zeros_like(hit, dtype=torch.long))
    instance_id = instance_probs.argmax(dim=-1) + 1
    instance_id = torch.where(is_thing_lut.to(class_id.device)[class_id], instance_id, torch.zeros_like(instance_id))
    return class_id, instance_id


def class_palette(class_table: ClassTable) -> Float[Tensor, "C1 3"]:
    """Colour per class id in [0, 1]; row 0 (void) is black."""
    return torch.tensor([(0, 0, 0), *class_table.colors], dtype=torch.float32) / 255.0


# Kenneth Kelly's sequence of colours of maximum contrast (1965), without white, black, grey and olive green (the
# instances output shows stuff as dimmed grey): each colour differs strongly from the ones just before it, so
# neighbouring ids (often neighbouring objects) are told apart
KELLY_COLOURS = (
    (243, 195, 0), (135, 86, 146), (243, 132, 0), (161, 202, 241), (190, 0, 50), (194, 178, 128),
    (0, 136, 86), (230, 143, 172), (0, 103, 165), (249, 147, 121), (96, 78, 151), (246, 166, 0), (179, 68, 108),
    (220, 211, 0), (136, 45, 23), (141, 182, 0), (101, 69, 34), (226, 88, 34),
)


def instance_palette(num_ids: int) -> Float[Tensor, "K1 3"]:
    """A colour per instance id in [0, 1]; row 0 (stuff) is black. Ids 1..18 take Kelly's colours of maximum
    contrast in order; later rounds repeat them lighter and darker in turn."""
    colors = [(0.0, 0.0, 0.0)]
    for i in range(num_ids):
        base = np.array(KELLY_COLOURS[i % len(KELLY_COLOURS)], dtype=np.float64) / 255.0
        round_ = i // len(KELLY_COLOURS)
        if round_ % 2 == 1:
            base = base + (1.0 - base) * 0.45  # lighter
        elif round_ > 0:
            base = base * 0.6  # darker
        colors.append(tuple(base))
    return torch.tensor(colors, dtype=torch.float32)


def colourise(
    rgb: Float[Tensor, "R 3"],
    class_id: Int[Tensor, "R"],
    instance_id: Int[Tensor, "R"],
    class_colors: Float[Tensor, "C1 3"],
    instance_colors: Float[Tensor, "K1 3"],
    stuff_dim: float = 0.3,
    overlay_alpha: float = 0.6,
) -> Tuple[Float[Tensor, "R 3"], Float[Tensor, "R 3"], Float[Tensor, "R 3"]]:
    """Views for people: semantics (class colours), instances (id colours; stuff shown as dimmed grey image) and
    panoptic (thing ids and stuff classes blended over the image)."""
    semantics = class_colors.to(rgb.device)[class_id]
    thing = (instance_id > 0)[:, None]
    ids = instance_colors.to(rgb.device)[instance_id]
    grey = rgb.mean(dim=-1, keepdim=True).expand(-1, 3)
    instances = torch.where(thing, ids, grey * stuff_dim)
    panoptic = (1 - overlay_alpha) * rgb + overlay_alpha * torch.where(thing, ids, semantics)
    return semantics, instances, panoptic


MIN_SEGMENT_SHARE = 0.002
"""Rendered panoptic segments smaller than this share of the image are merged into a neighbour (see
:func:`merge_small_segments`): 0.2% lies between Panoptic-DeepLab's minimum stuff area (0.1% of a Cityscapes
image) and Detectron2's (4096 px, 0.4% of a COCO-sized one)."""


def merge_small_segments(
    class_id: Int[Tensor, "H W"], instance_id: Int[Tensor, "H W"], min_pixels: int
) -> Tuple[Int[Tensor, "H W"], Int[Tensor, "H W"]]:
    """Merge every panoptic segment (one class and instance id; void excluded) of fewer than ``min_pixels`` pixels
    into the segment it borders most, as panoptic inference drops segments under a minimum area; the image stays
    fully labelled. Small segments go smallest first, each into a neighbour that is not itself small (or has
    absorbed one); one that borders only void or other small segments becomes void. Pure: returns new tensors, or
    the inputs themselves when no segment is small."""
    if min_pixels <= 1:
        return class_id, instance_id
    from scipy import ndimage

    classes, instances = class_id.cpu().numpy().astype(np.int64), instance_id.cpu().numpy().astype(np.int64)
    stride = int(instances.max()) + 1
    key = classes * stride + instances
    ids, areas = np.unique(key, return_counts=True)
    small = [(int(a), int(k)) for k, a in zip(ids, areas) if k != 0 and a < min_pixels]
    if not small:
        return class_id, instance_id
    pending = {k for _, k in small}
    height, width = key.shape
    for _, k in sorted(small):
        rows, cols = np.nonzero(key == k)
        r0, r1 = max(rows.min() - 1, 0), min(rows.max() + 2, height)
        c0, c1 = max(cols.min() - 1, 0), min(cols.max() + 2, width)
        crop = key[r0:r1, c0:c1]
        mask = crop == k
        ring = crop[ndimage.binary_dilation(mask, structure=np.ones((3, 3), bool)) & ~mask]
        pending.discard(k)
        candidates = ring[(ring != 0) & ~np.isin(ring, list(pending))]
        target = 0
        if len(candidates):
            values, counts = np.unique(candidates, return_counts=True)
            target = int(values[counts.argmax()])
        crop[mask] = target
    merged_classes = torch.from_numpy(key // stride).to(class_id)
    merged_instances = torch.from_numpy(key % stride).to(instance_id)
    return merged_classes, merged_instances


def panoptic_pictures(
    rgb: Float[Tensor, "R 3"], class_id: Int[Tensor, "R"], instance_id: Int[Tensor, "R"], num_ids: int,
    class_colors: Float[Tensor, "C1 3"], instance_colors: Float[Tensor, "K1 3"],
) -> Dict[str, Tensor]:
    """The outputs the viewer and ``ns-render`` show from panoptic labels: the three pictures of :func:`colourise`
    and the ``semantic_id``/``instance_id`` maps (one value per ray). Ids past the palette (copies made by edits)
    get colours of a longer palette."""
    palette = instance_colors
    if num_ids + 1 > len(palette):
        palette = instance_palette(num_ids).to(rgb.device)
    semantics, instances, panoptic = colourise(rgb, class_id, instance_id, class_colors, palette)
    return {
        "semantics": semantics,
        "instances": instances,
        "panoptic": panoptic,
        "semantic_id": class_id[:, None].float(),
        "instance_id": instance_id[:, None].float(),
    }


def merge_small_segments_of_image(outputs: Dict[str, Tensor], min_share: float, class_colors: Float[Tensor, "C1 3"],
                                  instance_colors: Float[Tensor, "K1 3"]) -> Dict[str, Tensor]:
    """A whole image's outputs ([H, W, ...]) with its panoptic segments under ``min_share`` of the image merged into
    the segment each borders most (:func:`merge_small_segments`), and its pictures drawn again from the merged
    labels; the outputs themselves when nothing is merged."""
    if min_share <= 0 or "semantic_id" not in outputs:
        return outputs
    class_map, instance_map = outputs["semantic_id"][..., 0].long(), outputs["instance_id"][..., 0].long()
    height, width = class_map.shape
    merged_classes, merged_instances = merge_small_segments(class_map, instance_map, round(min_share * height * width))
    if merged_classes is class_map:  # nothing to merge: the pictures the rays rendered stand
        return outputs
    rgb = outputs["rgb"].reshape(-1, 3)
    instance_ids = merged_instances.reshape(-1).to(rgb.device)
    pictures = panoptic_pictures(rgb, merged_classes.reshape(-1).to(rgb.device), instance_ids, int(instance_ids.max()),
                                 class_colors, instance_colors)
    return {**outputs, **{key: value.reshape(height, width, -1) for key, value in pictures.items()}}
