"""Writing a generated scene's frames in the dataset contract (``docs/labels.md``), shared by plift-synth and
plift-realistic-scene: images, machine labels (class and per-frame instance maps, class distributions and confidences
at half resolution), ground truth (classes, scene-wide instance ids, depth in millimetres) and a contact sheet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

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
