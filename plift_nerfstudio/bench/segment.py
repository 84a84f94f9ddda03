"""Labelling speed of plift-segment: Mask2Former passes with and without test-time augmentation, and the fusion.

The model is the architecture of facebook/mask2former-swin-large-coco-panoptic (Swin-L backbone at window 12,
200 queries, 133 COCO-panoptic classes) with random weights, since machines without internet have no weights; the
time of a pass does not depend on the weights' values. Give --model a saved Mask2Former folder to time real weights.

Timed per frame, median of --repeats, at the working size plift-segment uses (long edge --max-size):
- model passes: what plift-segment does per augmentation (augment, normalise, forward, softmax/sigmoid, upsample),
  for --no-tta (one pass) and for the default 13 augmentations;
- fusion: soft-IoU clustering and panoptic fusion of the candidates of all passes. Random weights give no realistic
  segments, so the candidates are made up: --segments-per-pass blob masks per pass (a COCO-panoptic Mask2Former
  keeps about 10 to 20 queries per image above the 0.5 score).

  python scripts/benchmark_segment.py            # Swin-L architecture, 1024x768 and 512x384 frames
  python scripts/benchmark_segment.py --quick    # CI: a tiny Mask2Former, 64x48 frames
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from scipy.special import expit

from plift_nerfstudio.bench.timing import median_seconds
from plift_nerfstudio.labels.augmentations import DEFAULT_AUGMENTATIONS, parse_augmentations
from plift_nerfstudio.labels.class_mapping import coco_panoptic_categories, load_class_mapping
from plift_nerfstudio.labels.mask2former_tta import SegmenterOptions, TTASegmenter, source_categories_of
from plift_nerfstudio.labels.tta_fusion import fuse_segments


@dataclass
class SegmentBenchOptions:
    """Options of the labelling-speed benchmark."""

    output_dir: Path = Path("benchmarks/segment")
    """Where results.json goes."""
    quick: bool = False
    """CI mode: a tiny randomly initialised Mask2Former and 64x48 frames."""
    model: Optional[Path] = None
    """A saved Mask2Former folder to time instead of the randomly initialised Swin-L architecture."""
    frame_sizes: Tuple[str, ...] = ("1024x768", "512x384")
    """Working sizes (WxH) to time; plift-segment shrinks frames to a long edge of --max-size (1024) first."""
    segments_per_pass: int = 15
    """Candidate segments per pass fed to the fusion timing."""
    repeats: int = 1
    """Timed repetitions (median reported); one Swin-L pass at 1024x768 takes seconds on a CPU."""
    threads: int = 2
    """torch CPU threads."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Device of the model passes."""


def swin_large_mask2former(tiny: bool):
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig

    names = [c.name for c in coco_panoptic_categories()]
    labels = dict(id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}, num_labels=len(names))
    stages = ["stage1", "stage2", "stage3", "stage4"]
    torch.manual_seed(0)
    if tiny:
        swin = SwinConfig(image_size=64, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4,
                          out_features=stages)
        config = Mask2FormerConfig(backbone_config=swin, feature_size=32, mask_feature_size=32, hidden_dim=32,
                                   encoder_feedforward_dim=32, encoder_layers=1, decoder_layers=2,
                                   num_attention_heads=2, dim_feedforward=32, num_queries=6, **labels)
    else:  # the published COCO-panoptic Swin-L model's architecture
        swin = SwinConfig(image_size=384, embed_dim=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48],
                          window_size=12, drop_path_rate=0.3, out_features=stages)
        config = Mask2FormerConfig(backbone_config=swin, num_queries=200, **labels)
    return Mask2FormerForUniversalSegmentation(config).eval()


def blob_candidates(n: int, hw: Tuple[int, int], num_classes: int, rng: np.random.Generator):
    """n soft blob masks [n, h, w] and class distributions [n, C] standing in for a model's kept queries."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    masks = np.empty((n, h, w), np.float32)
    for i in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        sy, sx = rng.uniform(0.05, 0.3) * h, rng.uniform(0.05, 0.3) * w
        masks[i] = expit(8.0 * (1.0 - ((yy - cy) / sy) ** 2 - ((xx - cx) / sx) ** 2))
    probs = rng.dirichlet(np.full(num_classes, 0.1), size=n).astype(np.float32)
    return masks, probs


def main(opts: SegmentBenchOptions) -> Dict[str, List[dict]]:
    torch.set_num_threads(opts.threads)
    console = Console()
    device = torch.device(opts.device)
    if opts.model is not None:
        from plift_nerfstudio.labels.mask2former_tta import load_mask2former

        net, what = load_mask2former(opts.model, device), str(opts.model)
    else:
        net, what = swin_large_mask2former(opts.quick).to(device), ("tiny Mask2Former (random)" if opts.quick else
                                                                     "Mask2Former Swin-L architecture (random weights)")
    params_m = sum(p.numel() for p in net.parameters()) / 1e6
    mapping = load_class_mapping("scannet21", source_categories_of(net))
    sizes = ("64x48",) if opts.quick else opts.frame_sizes
    repeats = 1 if opts.quick else opts.repeats
    rows = []
    rng = np.random.default_rng(0)
    for size in sizes:
        w, h = (int(v) for v in size.split("x"))
        frame = cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (0, 0), 3)
        row = {"frame": size}
        for name, specs in (("no TTA", ("identity",)), ("TTA", DEFAULT_AUGMENTATIONS)):
            augs = parse_augmentations(specs)
            # min_segment_score above 1 keeps no query: this times the passes alone, fusion is timed below
            segmenter = TTASegmenter(net, mapping, augs, SegmenterOptions(1.01, max(h, w), 0.5), device)
            console.print(f"timing {len(augs)} pass(es) at {size} ...")
            # the one-pass run warms the model up at this size; the 13-pass run needs no warm-up of its own
            row[f"{name} passes s"] = median_seconds(lambda: segmenter.candidates([frame]), repeats, warm_up=name == "no TTA")
            masks, probs = blob_candidates(opts.segments_per_pass * len(augs), (h, w), mapping.target.num_classes, rng)
            row[f"{name} fusion s"] = median_seconds(
                lambda: fuse_segments(masks, probs, mapping.target.thing_ids, theta=0.5), repeats, warm_up=True)
            row[f"{name} frame s"] = row[f"{name} passes s"] + row[f"{name} fusion s"]
        rows.append(row)
    table = Table(title=f"plift-segment per frame: {what}, {params_m:.1f} M parameters, {opts.device}, "
                        f"{opts.threads} threads, fusion of {opts.segments_per_pass} made-up segments per pass")
    for col in rows[0]:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*(v if isinstance(v, str) else f"{v:.2f}" for v in row.values()))
    console.print(table)
    for row in rows:
        console.print(f"{row['frame']}: TTA costs {row['TTA frame s'] / row['no TTA frame s']:.1f}x one pass; "
                      f"100 frames take {100 * row['TTA frame s'] / 60:.0f} min with TTA, "
                      f"{100 * row['no TTA frame s'] / 60:.0f} min without")
    opts.output_dir.mkdir(parents=True, exist_ok=True)
    result = {"options": {k: str(v) for k, v in asdict(opts).items()}, "model": what, "parameters_m": params_m,
              "rows": rows}
    (opts.output_dir / "results.json").write_text(json.dumps(result, indent=1))
    console.print(f"Wrote {opts.output_dir / 'results.json'}")
    return result
