"""``plift-eval``: score a trained run on its dataset's test views against ground truth, next to the 2D labels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from plift_nerfstudio.cli.runner import run_cli
from plift_nerfstudio.core.errors import LabelFileError
from plift_nerfstudio.evaluation.metrics import METRIC_NOTES, PROTOCOL_NOTES, PROTOCOLS
from plift_nerfstudio.core.report import fmt

if TYPE_CHECKING:
    from plift_nerfstudio.evaluation.eval_views import EvaluationResult

ROWS = (
    ("scene_pq", "PQscene"),
    ("scene_sq", "SQscene"),
    ("scene_rq", "RQscene"),
    ("pq", "PQ"),
    ("sq", "SQ"),
    ("rq", "RQ"),
    ("miou", "mIoU"),
)
COLUMN_TITLES = {"machine_labels": "2D labels", "machine_labels_merged": "2D labels, small segments merged",
                 "ours": "ours"}


@dataclass
class EvalOptions:
    """Options of plift-eval."""

    load_config: Path
    """config.yml of a training run (outputs/.../config.yml)."""
    output_dir: Optional[Path] = None
    """Where eval.json, eval.md and eval_grid.png go (default: the run's folder)."""
    grid_views: int = 4
    """Test views shown in eval_grid.png."""


def columns(result: "EvaluationResult") -> List[str]:
    """Who is scored: the 2D labels, the labels merged as our renders are (when the model merges), ours."""
    return ["machine_labels"] + (["machine_labels_merged"] if result.machine_labels_merged else []) + ["ours"]


def table_rows(result: "EvaluationResult", protocol: str) -> List[List[str]]:
    """One row per metric under one protocol: its name, then each column of :func:`columns`."""
    who = columns(result)
    scores = {"ours": result.ours, "machine_labels": result.machine_labels,
              "machine_labels_merged": result.machine_labels_merged or {}}
    rows = [[name] + [fmt(scores[w][protocol].get(key)) for w in who] for key, name in ROWS]
    for key, name in (("psnr", "PSNR"), ("ssim", "SSIM")):
        rows.append([name] + [fmt(result.image_metrics[key]) if w == "ours" else "n/a" for w in who])
    return rows


def markdown_table(result: "EvaluationResult") -> str:
    header = ["metric"] + [COLUMN_TITLES[w] for w in columns(result)]
    lines: List[str] = []
    for protocol in PROTOCOLS:
        lines += [f"### {protocol} protocol", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in table_rows(result, protocol)]
        lines.append("")
    lines += [f"- {protocol}: {note}." for protocol, note in PROTOCOL_NOTES.items()]
    lines += [f"- {key}: {note}." for key, note in METRIC_NOTES.items()]
    if result.machine_labels_merged:
        lines.append(f"- Small segments (under {100 * result.min_segment_share:.2f}% of an image) are merged into "
                     "their neighbours in our renders; the column before ours applies the same merge to the 2D labels.")
    lines.append("- PSNR/SSIM compare rendered colour with the test images. Rays that rendered nothing are void.")
    return "\n".join(lines)


GRID_COLUMNS = ("test image", "ground truth", "2D machine labels", "ours (panoptic)", "ours (colour)")


def grid_png(renders, path: Path) -> None:
    """One row per kept test view: the columns of GRID_COLUMNS (label maps drawn over the image)."""
    rows = []
    for r in renders:
        tiles = [r["image"], r["gt_panoptic"], r["machine_panoptic"], r["panoptic"], r["rgb"]]
        rows.append(np.concatenate([np.clip(t, 0, 1) for t in tiles], axis=1))
    image = (np.concatenate(rows, axis=0) * 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def main(opts: EvalOptions) -> Dict:
    from plift_nerfstudio.evaluation.eval_views import dataset_has_ground_truth, render_eval_views, score_views
    from plift_nerfstudio.labels.dataset_labels import transforms_path_of
    from plift_nerfstudio.core.runs import load_trained_pipeline

    _, pipeline, _, step = load_trained_pipeline(opts.load_config, test_mode="test")
    data = pipeline.datamanager.config.dataparser.data  # type: ignore[attr-defined]
    views = render_eval_views(pipeline, keep_renders=opts.grid_views)
    if not dataset_has_ground_truth(pipeline, views.image_filenames):
        raise LabelFileError(transforms_path_of(data), "its test frames have no ground-truth maps "
                             "('gt_semantics_path'/'gt_instances_path'), so there is nothing to score against (attach "
                             "them with plift-attach-ground-truth); ns-eval still reports PSNR/SSIM")
    result = score_views(pipeline, views)
    out_dir = opts.output_dir or opts.load_config.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"config": str(opts.load_config), "step": step, "num_test_views": result.num_views,
              "protocols": PROTOCOL_NOTES, "metrics": METRIC_NOTES,
              "ours": {**result.ours, **result.image_metrics}, "machine_labels": result.machine_labels,
              "machine_labels_merged": result.machine_labels_merged, "min_segment_share": result.min_segment_share}
    (out_dir / "eval.json").write_text(json.dumps(report, indent=2))
    (out_dir / "eval.md").write_text(markdown_table(result) + "\n")
    grid_png(result.renders, out_dir / "eval_grid.png")
    console = Console()
    for protocol in PROTOCOLS:
        table = Table(title=f"{protocol} protocol: {result.num_views} test views, step {step}")
        table.add_column("metric")
        for who in columns(result):
            table.add_column(COLUMN_TITLES[who], justify="right")
        for row in table_rows(result, protocol):
            table.add_row(*row)
        console.print(table)
    console.print(f"Wrote {out_dir / 'eval.json'}, {out_dir / 'eval.md'}, {out_dir / 'eval_grid.png'}")
    return report


def entrypoint() -> None:
    run_cli(main, EvalOptions, __doc__ or "", "plift-eval")

if __name__ == "__main__":
    entrypoint()
