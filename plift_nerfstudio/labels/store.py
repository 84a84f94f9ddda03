"""All training frames' labels in memory, gathered per ray by (camera, y, x)."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from jaxtyping import Bool, Int
from torch import Tensor

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.labels.frame_labels import FrameLabels


PROBABILITY_LEVELS = 255
"""Class probabilities and confidences are kept as uint8 in memory: 0..255 for 0..1 (at most 0.002 off)."""


def quantise_unit(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as uint8 levels (nearest)."""
    return np.clip(np.rint(np.asarray(values, np.float32) * PROBABILITY_LEVELS), 0, PROBABILITY_LEVELS).astype(np.uint8)


def quantise_distributions(probs_hwc: np.ndarray) -> np.ndarray:
    """Distributions (each summing to 1, or all zero) as uint8 levels summing to exactly 255: rounded down, then
    the levels left over go to the classes with the largest remainders, so every class is less than one level off
    and dividing by 255 gives back a distribution."""
    scaled = np.asarray(probs_hwc, np.float32) * PROBABILITY_LEVELS
    levels = np.floor(scaled)
    remainder = scaled - levels
    left = np.clip(np.rint(scaled.sum(-1) - levels.sum(-1)), 0, scaled.shape[-1]).astype(np.int64)  # [h, w]
    rank = np.argsort(np.argsort(-remainder, axis=-1, kind="stable"), axis=-1, kind="stable")
    levels += rank < left[..., None]
    return np.clip(levels, 0, PROBABILITY_LEVELS).astype(np.uint8)


class PanopticLabelStore:
    """Machine labels of N frames: class and instance maps at image resolution; class distributions and
    confidences at their own (usually lower) resolution, shared by all frames that have them.

    Kept compactly, because a capture has hundreds of frames (400 frames of 960x540 with 31-class distributions at
    half resolution would take 5.6 GB as float32, 2.8 GB as float16): class ids as uint8 (int16 for tables of more
    than 255 classes), instance ids as 16 bits (label PNGs hold at most 16), distributions and confidences as uint8
    levels (renormalised when gathered). Frames are added one at a time into arrays allocated once
    (:meth:`add_frame`), so loading never holds two copies. Frames without a distribution are treated as one-hot
    with confidence 1.
    """

    def __init__(self, num_frames: int, image_hw: Tuple[int, int], class_table: ClassTable) -> None:
        if num_frames == 0:
            raise ValueError("no frames to build a label store from")
        self.class_table = class_table
        H, W = image_hw
        class_dtype = torch.uint8 if class_table.num_classes <= 255 else torch.int16
        self.semantics: Int[Tensor, "N H W"] = torch.zeros(num_frames, H, W, dtype=class_dtype)
        self._instances16: Tensor = torch.zeros(num_frames, H, W, dtype=torch.int16)  # uint16 bits
        self.prob_slot: Int[Tensor, "N"] = torch.full((num_frames,), -1, dtype=torch.long)
        self.class_probs: Optional[Tensor] = None  # [N, h, w, C] uint8 levels, allocated with the first frame having them
        self.confidence: Optional[Tensor] = None  # [N, h, w] uint8 levels
        self.is_thing_lut: Bool[Tensor, "C1"] = torch.tensor([False] + list(class_table.is_thing))

    @classmethod
    def from_frames(cls, frames: Sequence[FrameLabels], class_table: ClassTable) -> "PanopticLabelStore":
        if len(frames) == 0:
            raise ValueError("no frames to build a label store from")
        store = cls(len(frames), frames[0].semantics.shape, class_table)
        for i, frame in enumerate(frames):
            store.add_frame(i, frame)
        return store

    def add_frame(self, index: int, frame: FrameLabels) -> None:
        """Store frame ``index``'s labels (maps at the store's image size)."""
        self.semantics[index] = torch.from_numpy(frame.semantics.astype(np.int64)).to(self.semantics.dtype)
        self._instances16[index] = torch.from_numpy(frame.instances.astype(np.uint16).view(np.int16))
        if frame.class_probs is None:
            return
        p, c = frame.class_probs, frame.confidence
        assert c is not None
        if self.class_probs is None:
            h, w = p.shape[:2]
            self.class_probs = torch.zeros(self.num_frames, h, w, p.shape[2], dtype=torch.uint8)
            self.confidence = torch.zeros(self.num_frames, h, w, dtype=torch.uint8)
        h, w = self.class_probs.shape[1:3]
        if p.shape[:2] != (h, w):
            p = cv2.resize(p.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            p = p / np.maximum(p.sum(-1, keepdims=True), 1e-12)
            c = cv2.resize(c.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        self.class_probs[index] = torch.from_numpy(quantise_distributions(p))
        self.confidence[index] = torch.from_numpy(quantise_unit(c))  # type: ignore[index]
        self.prob_slot[index] = index

    @property
    def instances(self) -> Int[Tensor, "N H W"]:
        """Instance ids of every frame (int32; kept as 16 bits)."""
        return self._instances16.to(torch.int32) & 0xFFFF

    @property
    def nbytes(self) -> int:
        """Memory held by the labels."""
        arrays = [self.semantics, self._instances16, self.class_probs, self.confidence]
        return sum(a.numel() * a.element_size() for a in arrays if a is not None)

    @property
    def num_frames(self) -> int:
        return int(self.semantics.shape[0])

    @property
    def image_hw(self):
        return tuple(self.semantics.shape[1:])

    def labelled_mask(self, frame: int) -> Bool[Tensor, "H W"]:
        """Pixels with a (non-void) class label."""
        return self.semantics[frame] > 0

    def instance_mask(self, frame: int) -> Bool[Tensor, "H W"]:
        """Pixels of thing classes that carry a 2D instance id (what the instance loss is computed on)."""
        return (self._instances16[frame] != 0) & self.is_thing_lut[self.semantics[frame].long()]

    def gather(self, indices: Int[Tensor, "R 3"]) -> Dict[str, Tensor]:
        """Labels of rays given as (frame, y, x) rows at image resolution (on the indices' device)."""
        c, y, x = (indices[:, i].long().cpu() for i in range(3))
        semantics = self.semantics[c, y, x].long()
        instances = self._instances16[c, y, x].long() & 0xFFFF
        num_classes = self.class_table.num_classes
        one_hot = torch.zeros(len(c), num_classes)
        labelled = semantics > 0
        one_hot[labelled, semantics[labelled] - 1] = 1.0
        probs = one_hot
        confidence = torch.ones(len(c))
        if self.class_probs is not None:
            slot = self.prob_slot[c]
            has = slot >= 0
            if has.any():
                H, W = self.image_hw
                h, w = self.class_probs.shape[1:3]
                yp = (y[has] * h // H).clamp(max=h - 1)
                xp = (x[has] * w // W).clamp(max=w - 1)
                gathered = self.class_probs[slot[has], yp, xp].float()
                total = gathered.sum(-1, keepdim=True)
                gathered = gathered / total.clamp(min=1.0)  # levels back to a distribution summing to 1
                # a pixel whose stored distribution is empty falls back to its class map label
                empty = total[:, 0] <= 0
                gathered[empty] = one_hot[has][empty]
                probs = one_hot.clone()
                probs[has] = gathered
                confidence[has] = self.confidence[slot[has], yp, xp].float() / PROBABILITY_LEVELS  # type: ignore[index]
        confidence = torch.where(labelled, confidence, torch.zeros_like(confidence))
        is_thing = self.is_thing_lut[semantics]
        device = indices.device
        return {
            "semantics": semantics.to(device),
            "instances": instances.to(device),
            "class_probs": probs.to(device),
            "confidence": confidence.to(device),
            "is_thing": is_thing.to(device),
        }


def sample_pixels_in_mask(
    mask: Bool[Tensor, "H W"], num_rays: int, generator: Optional[torch.Generator] = None
) -> Int[Tensor, "num_rays 2"]:
    """Uniformly sample (y, x) pixels, with replacement, among the True pixels of a mask."""
    candidates = torch.nonzero(mask, as_tuple=False)
    if len(candidates) == 0:
        raise ValueError("cannot sample rays from an image with no labelled pixels")
    picks = torch.randint(0, len(candidates), (num_rays,), generator=generator)
    return candidates[picks]


def sample_distinct_pixels_in_mask(mask: Bool[Tensor, "H W"], max_rays: int) -> Int[Tensor, "n 2"]:
    """At most ``max_rays`` distinct (y, x) pixels among the True pixels of a mask (all of them if fewer)."""
    candidates = torch.nonzero(mask, as_tuple=False)
    if len(candidates) <= max_rays:
        return candidates
    return candidates[torch.randperm(len(candidates))[:max_rays]]


def frames_with_labels(store: PanopticLabelStore) -> List[int]:
    return [i for i in range(store.num_frames) if bool(store.labelled_mask(i).any())]

