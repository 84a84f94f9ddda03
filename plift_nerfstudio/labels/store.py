"""All training frames' labels in memory, gathered per ray by (camera, y, x)."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from jaxtyping import Bool, Int
from torch import Tensor

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.labels.frame_labels import FrameLabels


class PanopticLabelStore:
    """Machine labels of N frames: class and instance maps at image resolution; class distributions and
    confidences at their own (usually lower) resolution, shared by all frames that have them.

    Frames without a distribution are treated as one-hot with confidence 1.
    """

    def __init__(self, frames: Sequence[FrameLabels], class_table: ClassTable) -> None:
        if len(frames) == 0:
            raise ValueError("no frames to build a label store from")
        self.class_table = class_table
        self.semantics: Int[Tensor, "N H W"] = torch.from_numpy(np.stack([f.semantics for f in frames]))
        self.instances: Int[Tensor, "N H W"] = torch.from_numpy(np.stack([f.instances for f in frames]))
        with_probs = [i for i, f in enumerate(frames) if f.class_probs is not None]
        self.prob_slot: Int[Tensor, "N"] = torch.full((len(frames),), -1, dtype=torch.long)
        self.class_probs = None
        self.confidence = None
        if with_probs:
            h, w = frames[with_probs[0]].class_probs.shape[:2]  # type: ignore[union-attr]
            probs, confs = [], []
            for slot, i in enumerate(with_probs):
                p, c = frames[i].class_probs, frames[i].confidence
                assert p is not None and c is not None
                if p.shape[:2] != (h, w):
                    p = cv2.resize(p.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
                    p = p / np.maximum(p.sum(-1, keepdims=True), 1e-12)
                    c = cv2.resize(c.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
                probs.append(p.astype(np.float16))
                confs.append(c.astype(np.float16))
                self.prob_slot[i] = slot
            self.class_probs = torch.from_numpy(np.stack(probs))  # [M, h, w, C] float16
            self.confidence = torch.from_numpy(np.stack(confs))  # [M, h, w] float16
        self.is_thing_lut: Bool[Tensor, "C1"] = torch.tensor([False] + list(class_table.is_thing))

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
        return (self.instances[frame] > 0) & self.is_thing_lut[self.semantics[frame].long()]

    def gather(self, indices: Int[Tensor, "R 3"]) -> Dict[str, Tensor]:
        """Labels of rays given as (frame, y, x) rows at image resolution (on the indices' device)."""
        c, y, x = (indices[:, i].long().cpu() for i in range(3))
        semantics = self.semantics[c, y, x].long()
        instances = self.instances[c, y, x].long()
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
                # a pixel whose stored distribution is empty falls back to its class map label
                empty = gathered.sum(-1) <= 0
                gathered[empty] = one_hot[has][empty]
                probs = one_hot.clone()
                probs[has] = gathered
                confidence[has] = self.confidence[slot[has], yp, xp].float()  # type: ignore[index]
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

