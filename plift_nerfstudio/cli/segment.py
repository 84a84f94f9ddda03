"""``plift-segment``: label every frame of a nerfstudio dataset with Mask2Former under test-time augmentation.

Runs between ``ns-process-data images`` and ``ns-train panoptic-lifting``: writes the label files of the data
contract (class map, instance map, class distributions and confidences per frame) and the class table, and records
them in ``transforms.json`` (a copy of the original is kept as ``transforms.json.orig``). Frames that already have
labels are skipped unless ``--overwrite``, so an interrupted run resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from plift_nerfstudio.cli.runner import run_cli
from plift_nerfstudio.labels.augmentations import DEFAULT_AUGMENTATIONS, parse_augmentations
from plift_nerfstudio.labels.class_mapping import load_class_mapping
from plift_nerfstudio.labels.dataset_labels import read_transforms
from plift_nerfstudio.core.errors import LabelFileError
from plift_nerfstudio.labels.frame_labels import read_image
from plift_nerfstudio.labels.mask2former_tta import (
    SegmenterOptions,
    TTASegmenter,
    load_mask2former,
    source_categories_of,
)
from plift_nerfstudio.labels.writer import FrameLabelArrays, LabelSetWriter, frame_is_labelled, refuse_mixed_class_tables

DEFAULT_MODEL = "facebook/mask2former-swin-large-coco-panoptic"


@dataclass
class SegmentOptions:
    """Label a dataset's frames with Mask2Former panoptic predictions fused over test-time augmentations."""

    data: Path
    """The nerfstudio dataset (folder with transforms.json, as ns-process-data writes it)."""
    model: str = DEFAULT_MODEL
    """A saved Hugging Face Mask2Former (local folder; a Hub id needs internet). Default: COCO-panoptic Swin-L."""
    mapping: str = "scannet21"
    """Class mapping from the model's classes: 'scannet21', 'scannet31' (captures) or a mapping JSON file."""
    augmentations: Tuple[str, ...] = DEFAULT_AUGMENTATIONS
    """Test-time augmentations, ops joined by '+': identity, hflip, rescale<f>, contrast, rgb_shift, gamma,
    brightness_contrast, median_blur, sharpen."""
    no_tta: bool = False
    """One pass on the plain image (same as --augmentations identity)."""
    theta: float = 0.5
    """Soft-IoU threshold linking candidate segments into one cluster."""
    min_segment_score: float = 0.5
    """Candidate segments whose best class probability is lower are dropped."""
    max_size: int = 1024
    """Frames are segmented and fused with their long edge at most this (label maps are written at full size)."""
    device: str = "auto"
    """'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'."""
    batch_size: int = 1
    """Frames per forward pass."""
    overwrite: bool = False
    """Relabel every frame, into a new label set that replaces the old one when all frames are done (an interrupted
    relabelling leaves the old labels in force and starts over when run again)."""
    record_every: int = 10
    """Frames between updates of transforms.json (progress survives an interruption)."""


@dataclass
class SegmentReport:
    transforms: Path
    labelled: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    seconds: float = 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return device


def read_rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(read_image(path, "image", cv2.IMREAD_COLOR)[..., ::-1])


def full_size(fused, frame_hw: Tuple[int, int]):
    """Class and instance maps at the frame's size (nearest); distributions stay at the working size."""
    h, w = frame_hw
    if fused.semantics_hw.shape == (h, w):
        return fused.semantics_hw, fused.instances_hw
    resize = lambda m: cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)  # noqa: E731
    return resize(fused.semantics_hw), resize(fused.instances_hw)


def main(opts: SegmentOptions) -> SegmentReport:
    console = Console()
    if opts.batch_size < 1 or opts.record_every < 1:
        raise ValueError("--batch-size and --record-every must be at least 1")
    augmentations = parse_augmentations(("identity",) if opts.no_tta else opts.augmentations)
    meta, transforms = read_transforms(opts.data)
    root = transforms.parent
    device = resolve_device(opts.device)
    net = load_mask2former(opts.model, device)
    mapping = load_class_mapping(opts.mapping, source_categories_of(net))
    frames = meta.get("frames", [])
    done = [not opts.overwrite and frame_is_labelled(root, f) for f in frames]
    todo = [f for f, d in zip(frames, done) if not d]
    report = SegmentReport(transforms, skipped=[f["file_path"] for f, d in zip(frames, done) if d])
    refuse_mixed_class_tables(opts.data, mapping.target, report.skipped, opts.overwrite)
    if not todo:
        console.print(f"plift-segment: all {len(frames)} frames are labelled already (--overwrite relabels them)")
        return report
    writer = LabelSetWriter(opts.data, mapping.target, relabel=opts.overwrite)
    segmenter = TTASegmenter(net, mapping, augmentations,
                             SegmenterOptions(opts.min_segment_score, opts.max_size, opts.theta), device)
    console.print(f"plift-segment: {len(todo)} frames to label ({len(report.skipped)} already labelled), "
                  f"{len(augmentations)} passes each, on {device}")
    start = time.perf_counter()
    pending: Dict[str, Dict[str, str]] = {}
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn()]
    try:
        with Progress(*columns) as progress:
            task = progress.add_task("Segmenting frames", total=len(todo))
            for first in range(0, len(todo), opts.batch_size):
                batch = todo[first:first + opts.batch_size]
                images = [read_rgb(root / f["file_path"]) for f in batch]
                sizes = {im.shape[:2] for im in images}
                if len(sizes) > 1:
                    raise LabelFileError(root / batch[0]["file_path"], f"frames of one batch differ in size {sorted(sizes)}; "
                                                                       "use --batch-size 1")
                for frame, image, fused in zip(batch, images, segmenter.label(images)):
                    semantics, instances = full_size(fused, image.shape[:2])
                    labels = FrameLabelArrays(semantics, instances, fused.class_probs_hwc, fused.confidence_hw)
                    pending[frame["file_path"]] = writer.write(frame["file_path"], labels)
                    report.labelled.append(frame["file_path"])
                    progress.advance(task)
                # progress is recorded as it goes, so an interrupted run resumes; a relabelling switches only when
                # complete, so an interrupted one leaves the old labels in force
                if not opts.overwrite and len(pending) >= opts.record_every:
                    writer.commit(pending)
                    pending = {}
    except BaseException:
        writer.discard()  # a set never committed (a committed one keeps the frames recorded so far)
        raise
    if pending:
        writer.commit(pending)
    report.seconds = time.perf_counter() - start
    console.print(f"[green]Labelled {len(report.labelled)} frames in {report.seconds:.1f} s[/] into the label set "
                  f"{root / writer.name} ({mapping.target.num_classes} classes); {transforms} updated")
    return report


def entrypoint() -> None:
    run_cli(main, SegmentOptions, (__doc__ or "").split("\n\n")[0], "plift-segment")


if __name__ == "__main__":
    entrypoint()
