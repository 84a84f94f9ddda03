"""Time to quality: PQscene, mIoU and PSNR of the CPU preset against training wall time, as a table and a PNG.

Trains panoptic-lifting-lite (or --preset quick: panoptic-lifting-quick) on the default demo scene (generated if
missing), keeping a checkpoint every --eval-every steps and the wall time at which it was reached. After training,
every checkpoint is scored on the test views (evaluation time is not counted as training time). Reports when the
run first reached 90% of its final PQscene.

  python scripts/time_to_quality.py             # default demo scene, the preset's 3000 steps
  python scripts/time_to_quality.py --quick     # CI: tiny scene, 400 steps
  python scripts/time_to_quality.py --sparse-depth   # with COLMAP's points and the sparse depth loss
  python scripts/time_to_quality.py --preset quick   # panoptic-lifting-quick: lite + sparse depth in 2000 steps
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Literal, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from plift_nerfstudio.evaluation.eval_views import evaluate_pipeline  # noqa: E402
from plift_nerfstudio.bench.harness import (  # noqa: E402
    ensure_sparse_depth_points,
    quick_frame_size,
    run_config,
    seeded_trainer,
    sparse_depth_overrides,
)
from plift_nerfstudio.method_config import panoptic_lifting_lite, panoptic_lifting_quick  # noqa: E402
from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset  # noqa: E402

PRESETS = {"lite": panoptic_lifting_lite, "quick": panoptic_lifting_quick}
FRACTION = 0.9  # of the final PQscene
PROTOCOL = "panopticapi"  # the evaluation protocol of the curve (plift_nerfstudio/evaluation/metrics.py)
BUDGET_MINUTES = 2.0  # issue 15: 90% of the final PQscene within 2 minutes of training


@dataclass
class TimeToQualityOptions:
    """Options of the time-to-quality run."""

    preset: Literal["lite", "quick"] = "lite"
    """panoptic-lifting-lite, or panoptic-lifting-quick (lite with sparse depth, 2000 steps; needs colmap on PATH
    unless the dataset has sparse_depth/points.npz)."""
    output_dir: Path = Path("benchmarks/time_to_quality")
    """Where the scene, the run, curve.png and results.json go."""
    data: Optional[Path] = None
    """A labelled dataset with ground truth (default: the demo scene, generated into --output-dir)."""
    quick: bool = False
    """CI mode: a tiny scene (32 frames of 64x48; 128x96 with sparse depth), 400 steps, a checkpoint every 100."""
    steps: Optional[int] = None
    """Training steps (default: the preset's, 3000 or 2000; the schedule is rescaled)."""
    eval_every: int = 250
    """Steps between scored checkpoints."""
    model_overrides: Optional[Dict[str, float]] = None
    """Model options to change, e.g. --model-overrides distortion_loss_mult 0.01 (for experiments)."""
    seed: int = 42
    """Training seed (run-to-run noise: compare two or more)."""
    sparse_depth: bool = False
    """Train with COLMAP's points of the training images (plift-sparse-depth, run first if the dataset has none) and
    the sparse depth loss at panoptic-lifting-cpu's settings (needs colmap on PATH)."""


def reached_at(points: List[dict], key: str, fraction: float) -> Optional[dict]:
    """First point whose ``key`` is at least ``fraction`` of the last point's."""
    target = fraction * points[-1][key]
    return next((p for p in points if p[key] >= target), None)


def plot(points: List[dict], path: Path, title: str) -> None:
    minutes = [p["minutes"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.plot(minutes, [p["scene_pq"] for p in points], "o-", label="PQscene")
    ax.plot(minutes, [p["miou"] for p in points], "s-", label="mIoU")
    ax.axhline(FRACTION * points[-1]["scene_pq"], color="C0", ls=":", lw=1, label=f"{FRACTION:.0%} of final PQscene")
    ax.axvline(BUDGET_MINUTES, color="grey", ls="--", lw=1, label=f"{BUDGET_MINUTES:.0f} min")
    ax.set_xlabel("training wall time (min)")
    ax.set_ylabel("% on test views")
    ax.set_ylim(0, 100)
    twin = ax.twinx()
    twin.plot(minutes, [p["psnr"] for p in points], "^-", color="C3", label="PSNR")
    twin.set_ylabel("PSNR (dB)", color="C3")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(opts: TimeToQualityOptions) -> Dict:
    console = Console()
    opts.output_dir.mkdir(parents=True, exist_ok=True)
    steps, eval_every = opts.steps, opts.eval_every
    preset = PRESETS[opts.preset].config
    uses_sparse_depth = opts.sparse_depth or preset.pipeline.model.sparse_depth_loss_mult > 0  # type: ignore[attr-defined]
    frames, width, height = 100, 160, 120
    if opts.quick:
        steps, eval_every, frames = steps or 400, 100, 32
        width, height = quick_frame_size(uses_sparse_depth)
    data = opts.data
    if data is None:
        data = opts.output_dir / "scenes" / f"moderate-0-{frames}x{width}x{height}"
        if not (data / "transforms.json").is_file():
            write_dataset(SynthOptions(output=data, seed=0, num_frames=frames, width=width, height=height))
    rays = (512, 256) if opts.quick else None
    model_overrides, datamanager_overrides = sparse_depth_overrides(data) if opts.sparse_depth else ({}, {})
    if uses_sparse_depth and not opts.sparse_depth:  # the preset's own sparse depth: its points must exist too
        ensure_sparse_depth_points(data)
    config = run_config(preset, data, opts.output_dir / "runs", "time-to-quality", steps=steps,
                        model_overrides={**model_overrides, **(opts.model_overrides or {})}, rays_per_batch=rays,
                        datamanager_overrides=datamanager_overrides, seed=opts.seed)
    config.steps_per_save = eval_every
    # the checkpoints are scored after training: no evaluation inside the timed run
    config.steps_per_eval_batch = config.steps_per_eval_image = config.steps_per_eval_all_images = (
        config.max_num_iterations + 1)
    config.save_only_latest_checkpoint = False
    config.logging.local_writer.enable = False
    trainer = seeded_trainer(config)
    wall: Dict[int, float] = {}
    start = time.perf_counter()
    trainer.callbacks.append(
        TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                         lambda step: wall.__setitem__(step, time.perf_counter() - start), update_every_num_iters=1)
    )
    console.print(f"[bold]training[/] {config.method_name}, {config.max_num_iterations} steps on {data}")
    trainer.train()
    total = time.perf_counter() - start
    pipeline = trainer.pipeline
    checkpoints = sorted((config.get_base_dir() / "nerfstudio_models").glob("step-*.ckpt"))
    points: List[dict] = []
    with Progress(transient=True) as progress:
        task = progress.add_task("Scoring checkpoints", total=len(checkpoints))
        for path in checkpoints:
            step = int(path.stem.split("-")[1])
            state = torch.load(path, map_location=pipeline.model.device, weights_only=False)
            pipeline.load_pipeline(state["pipeline"], step)
            result = evaluate_pipeline(pipeline)
            ours = result.ours[PROTOCOL]
            points.append({"step": step, "minutes": wall.get(step, total) / 60.0, "scene_pq": ours["scene_pq"],
                           "pq": ours["pq"], "miou": ours["miou"], "psnr": result.image_metrics["psnr"]})
            progress.advance(task)
    labels = result.machine_labels[PROTOCOL]
    table = Table(title=f"time to quality on {data.name} ({torch.get_num_threads()} threads; {PROTOCOL} protocol)")
    for column in ("step", "min", "PQscene", "PQ", "mIoU", "PSNR"):
        table.add_column(column, justify="right")
    for p in points:
        table.add_row(str(p["step"]), f"{p['minutes']:.1f}", f"{p['scene_pq']:.1f}", f"{p['pq']:.1f}",
                      f"{p['miou']:.1f}", f"{p['psnr']:.2f}")
    console.print(table)
    hit = reached_at(points, "scene_pq", FRACTION)
    summary = (f"{FRACTION:.0%} of the final PQscene ({points[-1]['scene_pq']:.1f}) first reached at step "
               f"{hit['step']} after {hit['minutes']:.1f} min of training (whole run {total / 60:.1f} min); "
               f"2D labels: PQ {labels['pq']:.1f}, mIoU {labels['miou']:.1f}") if hit else "no checkpoint scored"
    console.print(summary)
    plot(points, opts.output_dir / "curve.png", summary.split(";")[0])
    report = {"options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
              "points": points, "total_minutes": total / 60, "summary": summary, "labels": labels,
              "reached": hit}
    (opts.output_dir / "results.json").write_text(json.dumps(report, indent=2))
    console.print(f"Wrote {opts.output_dir / 'curve.png'} and results.json")
    return report
