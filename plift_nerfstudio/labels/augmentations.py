"""Test-time augmentations for the 2D segmenter (paper, supplementary A.1), deterministic and invertible.

An augmentation is written as ops joined by ``+``: ``identity``, ``hflip``, ``rescale<factor>`` (e.g.
``rescale0.75``) are geometric; ``contrast`` (CLAHE on lightness), ``rgb_shift``, ``gamma``,
``brightness_contrast``, ``median_blur`` and ``sharpen`` are photometric. Geometric ops are undone on the
predicted masks (:meth:`Augmentation.invert_masks`) so that every candidate segment lies in the original frame.
Parameters are fixed (not random) so that a labelling run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def _clahe(image: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def _lut(image: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    table = np.clip(fn(np.arange(256, dtype=np.float64)), 0, 255).astype(np.uint8)
    return cv2.LUT(image, table)


def _sharpen(image: np.ndarray) -> np.ndarray:
    kernel = np.array([[0, -0.5, 0], [-0.5, 3.0, -0.5], [0, -0.5, 0]], np.float32)
    return cv2.filter2D(image, -1, kernel)


PHOTOMETRIC: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "contrast": _clahe,
    "rgb_shift": lambda im: np.clip(im.astype(np.int16) + np.array([12, -8, 6], np.int16), 0, 255).astype(np.uint8),
    "gamma": lambda im: _lut(im, lambda v: 255.0 * (v / 255.0) ** 0.8),
    "brightness_contrast": lambda im: _lut(im, lambda v: 1.15 * v - 12.0),
    "median_blur": lambda im: cv2.medianBlur(im, 3),
    "sharpen": _sharpen,
}

# the original image plus 12 augmentations: single ops and combinations (supplementary A.1)
DEFAULT_AUGMENTATIONS: Tuple[str, ...] = (
    "identity", "hflip", "rescale0.75", "rescale1.25", "contrast", "rgb_shift", "gamma", "brightness_contrast",
    "median_blur", "sharpen", "hflip+contrast", "rescale0.75+gamma", "hflip+rescale1.25+sharpen",
)


@dataclass(frozen=True)
class Augmentation:
    """One augmented pass: optional horizontal flip and rescale, then photometric ops in order."""

    spec: str
    flip: bool = False
    scale: float = 1.0
    photometric: Tuple[str, ...] = ()

    def apply(self, image_hw3: np.ndarray) -> np.ndarray:
        """The augmented uint8 RGB image (size changes by ``scale``)."""
        out = image_hw3
        if self.scale != 1.0:
            h, w = out.shape[:2]
            size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
            out = cv2.resize(out, size, interpolation=cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR)
        if self.flip:
            out = out[:, ::-1]
        for op in self.photometric:
            out = PHOTOMETRIC[op](np.ascontiguousarray(out))
        return np.ascontiguousarray(out)

    def invert_masks(self, masks_nhw: torch.Tensor, frame_hw: Tuple[int, int]) -> torch.Tensor:
        """Soft masks predicted on the augmented image, back in the original frame ([N, H, W])."""
        out = masks_nhw
        if self.flip:
            out = out.flip(-1)
        if tuple(out.shape[-2:]) != tuple(frame_hw):
            out = F.interpolate(out[None].float(), size=frame_hw, mode="bilinear", align_corners=False)[0]
        return out


def parse_augmentation(spec: str) -> Augmentation:
    """``"hflip+rescale0.75+gamma"`` -> Augmentation; unknown ops raise ValueError listing the known ones."""
    flip, scale, photometric = False, 1.0, []
    for op in spec.split("+"):
        op = op.strip()
        if op == "identity":
            continue
        if op == "hflip":
            flip = True
        elif op.startswith("rescale"):
            try:
                scale = float(op[len("rescale"):])
            except ValueError:
                scale = -1.0
            if not 0.1 <= scale <= 4.0:
                raise ValueError(f"augmentation {spec!r}: rescale needs a factor in [0.1, 4], e.g. rescale0.75")
        elif op in PHOTOMETRIC:
            photometric.append(op)
        else:
            known = ", ".join(["identity", "hflip", "rescale<factor>", *PHOTOMETRIC])
            raise ValueError(f"unknown augmentation op {op!r} in {spec!r}; known: {known}")
    return Augmentation(spec, flip, scale, tuple(photometric))


def parse_augmentations(specs: Sequence[str]) -> Tuple[Augmentation, ...]:
    if not specs:
        raise ValueError("at least one augmentation is needed ('identity' is the plain image)")
    return tuple(parse_augmentation(s) for s in specs)
