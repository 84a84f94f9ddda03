"""Candidate segments of a Hugging Face Mask2Former under test-time augmentation, fused per frame.

Needs the optional extra ``pip install 'plift-nerfstudio[segment]'`` (Hugging Face transformers). Mask2Former's
outputs are taken before its own panoptic fusion: per query a class distribution (softmax over classes and
"no object") and a soft mask (sigmoid). Queries whose best class probability is below ``min_segment_score`` are
dropped; the rest are mapped back to the original frame (:mod:`augmentations`), their class distributions are mapped
onto the dataset's table (:mod:`class_mapping`) and all passes are fused (:mod:`tta_fusion`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from plift_nerfstudio.labels.augmentations import Augmentation
from plift_nerfstudio.labels.class_mapping import ClassMapping, SourceCategory
from plift_nerfstudio.labels.tta_fusion import FusedFrame, fuse_segments

# Mask2Former's image processor normalises with the ImageNet statistics
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIZE_DIVISOR = 32


def load_mask2former(model: Union[str, Path], device: torch.device) -> torch.nn.Module:
    """A Mask2Former for universal segmentation from a local folder (or a Hub id where there is internet)."""
    try:
        from transformers import Mask2FormerForUniversalSegmentation
    except ImportError:
        raise ImportError("plift-segment needs Hugging Face transformers: pip install 'plift-nerfstudio[segment]'") from None
    local = Path(model).expanduser()
    try:
        net = Mask2FormerForUniversalSegmentation.from_pretrained(str(local) if local.exists() else str(model),
                                                                  local_files_only=local.exists())
    except OSError as err:
        raise FileNotFoundError(
            f"{model}: cannot load a Mask2Former from it ({str(err).splitlines()[0]}). Give the folder of a saved "
            "model, e.g. one made with `huggingface-cli download facebook/mask2former-swin-large-coco-panoptic "
            "--local-dir DIR` on a machine with internet") from None
    return net.to(device).eval()


def source_categories_of(net: torch.nn.Module) -> List[SourceCategory]:
    """The model's classes in logit order, named by its ``id2label`` (COCO names for the COCO-panoptic models)."""
    id2label = net.config.id2label
    return [SourceCategory(i, str(id2label[i]), False) for i in range(len(id2label))]


def _to_pixel_values(images: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """Normalised [B, 3, H', W'] with H', W' padded up to a multiple of 32 (all images of one size)."""
    batch = torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN, device=device)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD, device=device)[None, :, None, None]
    batch = (batch - mean) / std
    h, w = batch.shape[-2:]
    pad_h, pad_w = (-h) % SIZE_DIVISOR, (-w) % SIZE_DIVISOR
    return F.pad(batch, (0, pad_w, 0, pad_h))


@dataclass
class SegmenterOptions:
    min_segment_score: float = 0.5
    max_size: int = 1024
    theta: float = 0.5


class TTASegmenter:
    """Runs a Mask2Former over augmented copies of frames and fuses the candidate segments of each frame."""

    def __init__(self, net: torch.nn.Module, mapping: ClassMapping, augmentations: Sequence[Augmentation],
                 options: SegmenterOptions, device: torch.device) -> None:
        self.net, self.mapping, self.augmentations = net, mapping, tuple(augmentations)
        self.options, self.device = options, device
        self.mapping_sc = torch.from_numpy(mapping.matrix_sc).to(device)

    def working_size(self, frame_hw: Tuple[int, int]) -> Tuple[int, int]:
        """The frame size labels are fused at: the frame, shrunk so that its long edge is at most max_size."""
        h, w = frame_hw
        factor = min(1.0, self.options.max_size / max(h, w))
        return max(1, round(h * factor)), max(1, round(w * factor))

    @torch.no_grad()
    def candidates(self, frames: Sequence[np.ndarray]) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Per frame: soft masks [N, h, w] at the working size and mapped class distributions [N, C]."""
        work_hw = self.working_size(frames[0].shape[:2])
        resized = [cv2.resize(f, (work_hw[1], work_hw[0]), interpolation=cv2.INTER_AREA)
                   if f.shape[:2] != work_hw else f for f in frames]
        out: List[Tuple[List[torch.Tensor], List[torch.Tensor]]] = [([], []) for _ in frames]
        for aug in self.augmentations:
            images = [aug.apply(f) for f in resized]
            h, w = images[0].shape[:2]
            result = self.net(pixel_values=_to_pixel_values(images, self.device))
            probs = result.class_queries_logits.softmax(-1)[..., :-1]  # drop "no object": [B, Q, S]
            masks = result.masks_queries_logits.sigmoid()  # at 1/4 of the padded input
            padded_hw = (masks.shape[-2] * 4, masks.shape[-1] * 4)
            masks = F.interpolate(masks, size=padded_hw, mode="bilinear", align_corners=False)[..., :h, :w]
            for b in range(len(frames)):
                keep = probs[b].max(-1).values >= self.options.min_segment_score
                if not keep.any():
                    continue
                out[b][0].append(aug.invert_masks(masks[b][keep], work_hw))
                out[b][1].append(probs[b][keep] @ self.mapping_sc)
        empty = (torch.zeros(0, *work_hw, device=self.device), torch.zeros(0, self.mapping.target.num_classes,
                                                                            device=self.device))
        return [(torch.cat(m), torch.cat(p)) if m else empty for m, p in out]

    def label(self, frames: Sequence[np.ndarray]) -> List[FusedFrame]:
        """Fused labels of each frame at the working size."""
        fused = []
        for masks, probs in self.candidates(frames):
            fused.append(fuse_segments(masks.cpu().numpy(), probs.cpu().numpy(), self.mapping.target.thing_ids,
                                       theta=self.options.theta))
        return fused
