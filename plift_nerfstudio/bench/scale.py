"""Scale benchmark: peak memory, dataset loading and step time against the number and size of frames.

A phone capture through ns-process-data has 150-400 frames of 960x540 or more, labelled with the 31-class table and
TTA probability files. This makes such datasets with plift-synth (the demo room, `--classes scannet31`, class
distributions at half resolution; --distinct-frames frames rendered per size, larger counts cycling through them),
then for each (size, frame count) trains a fresh process for --steps steps of the preset and measures:

- peak RSS of the whole process (everything: Python, torch, the cached images, the labels, the model);
- loading: the time from nothing to the first step (nerfstudio's trainer setup: dataparser, image cache, labels,
  model);
- step time: the median over the steps after the first ten;
- the labels' and the image cache's share of memory.

Each measurement runs in its own process, one after another (never two at once: on 2 cores they would slow each
other down). Prints a table, writes results.json and scale.png (the three curves) under --output-dir.

  python scripts/benchmark_scale.py            # 640x480 and 960x540, 50/100/200/400 frames, 200 steps
  python scripts/benchmark_scale.py --quick    # CI: tiny frames, a few steps (a smoke test, not a measurement)
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from rich.console import Console
from rich.table import Table

TARGETS = {"peak_rss_gb": 6.0, "load_s": 60.0}  # at the largest size and frame count
STEP_SPREAD_TARGET = 1.25  # slowest / fastest median step time across frame counts of one size


@dataclass
class ScaleOptions:
    """Options of the scale benchmark."""

    output_dir: Path = Path("benchmarks/scale")
    """Where the generated datasets, the runs, results.json and scale.png go (datasets are reused when present)."""
    sizes: Tuple[str, ...] = ("640x480", "960x540")
    """Frame sizes, WIDTHxHEIGHT."""
    frames: Tuple[int, ...] = (50, 100, 200, 400)
    """Frame counts."""
    distinct_frames: int = 50
    """Frames rendered per size; larger counts cycle through them (each frame its own files: hard links under
    its own name). Rendering 400 frames of 960x540 would take half an hour on 2 cores, and loading, memory and step
    time depend on the number and size of the files, not on what they show."""
    steps: int = 200
    """Training steps timed per dataset."""
    preset: str = "panoptic-lifting-lite"
    """Method whose training is measured (its own rays per step and grids)."""
    quick: bool = False
    """CI mode: 96x72 frames, 8 and 16 of them, 15 steps."""
    measure: Optional[Path] = None
    """Internal: measure this one dataset in this process and print its JSON line."""
    run_dir: Path = field(default_factory=lambda: Path("benchmarks/scale/runs"))
    """Internal: where --measure writes its run."""

    def resolved(self) -> "ScaleOptions":
        if not self.quick:
            return self
        return ScaleOptions(self.output_dir, ("96x72",), (8, 16), 8, 15, self.preset, True, self.measure, self.run_dir)


def parse_size(size: str) -> Tuple[int, int]:
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--sizes: {size!r} is not WIDTHxHEIGHT (e.g. 960x540)") from None
    return width, height


def make_frames(folder: Path, width: int, height: int, num_frames: int, console: Console) -> Path:
    """The demo room at this size, num_frames frames along its camera path, with 31-class labels (made once)."""
    from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset

    transforms = folder / "transforms.json"
    if transforms.is_file() and len(json.loads(transforms.read_text())["frames"]) == num_frames:
        return folder
    console.print(f"[bold]rendering[/] {num_frames} frames of {width}x{height} (plift-synth, 31 classes)")
    write_dataset(SynthOptions(output=folder, seed=0, num_frames=num_frames, width=width, height=height,
                               classes="scannet31", overwrite=folder.exists()))
    return folder


def repeated_dataset(source: Path, folder: Path, num_frames: int, test_every: int = 8) -> Path:
    """A dataset of num_frames frames that cycles through the source's frames: every file of frame k is a hard link
    to frame (k mod n)'s under frame k's own name, so each frame is read and decoded as a frame of its own."""
    meta = json.loads((source / "transforms.json").read_text())
    originals = meta["frames"]
    frames = []
    for k in range(num_frames):
        entry = dict(originals[k % len(originals)])
        for key, value in list(entry.items()):
            if key == "file_path" or key.endswith("_path"):
                old = Path(value)
                new = old.with_name(f"frame_{k + 1:05d}{old.suffix}")
                target = folder / new
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(source / old, target)
                entry[key] = new.as_posix()
        frames.append(entry)
    names = [f["file_path"] for f in frames]
    meta["frames"] = frames
    meta["val_filenames"] = meta["test_filenames"] = names[test_every - 1 :: test_every]
    meta["train_filenames"] = [n for i, n in enumerate(names) if i % test_every != test_every - 1]
    for table in source.glob("*/classes.json"):
        (folder / table.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / table.parent.name / "classes.json").write_text(table.read_text())
    (folder / "transforms.json").write_text(json.dumps(meta, indent=1))
    return folder


def measure(data: Path, steps: int, preset_name: str, run_dir: Path) -> Dict:
    """Train a fresh run on ``data`` for ``steps`` steps in this process; time and memory as described above."""
    import torch
    from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation

    from plift_nerfstudio import method_config
    from plift_nerfstudio.bench.harness import run_config

    presets = {spec.config.method_name: spec.config for spec in vars(method_config).values()
               if hasattr(spec, "config") and hasattr(spec.config, "method_name")}
    if preset_name not in presets:
        raise SystemExit(f"--preset {preset_name!r} is not one of {sorted(presets)}")
    config = run_config(presets[preset_name], data, run_dir, data.name)
    config.max_num_iterations = steps
    config.steps_per_save = steps
    config.steps_per_eval_batch = config.steps_per_eval_image = config.steps_per_eval_all_images = steps + 1
    config.logging.local_writer.enable = False
    torch.manual_seed(0)
    start = time.perf_counter()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    load_seconds = time.perf_counter() - start
    stamps: List[float] = []
    trainer.callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                                              lambda step: stamps.append(time.perf_counter()), update_every_num_iters=1))
    trainer.train()
    step_times = [b - a for a, b in zip(stamps[:-1], stamps[1:])][10:] or [b - a for a, b in zip(stamps[:-1], stamps[1:])]
    datamanager = trainer.pipeline.datamanager
    images = datamanager.train_image_dataloader.cached_collated_batch["image"]  # type: ignore[attr-defined]
    return {
        "data": str(data),
        "train_frames": len(datamanager.train_dataset),
        "load_s": load_seconds,
        "step_s": statistics.median(step_times),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,  # KiB on Linux
        # (getattr: --measure also times older checkouts of the package, put first on PYTHONPATH)
        "labels_mb": getattr(datamanager.labels, "nbytes", float("nan")) / 2**20,
        "image_cache_mb": images.numel() * images.element_size() / 2**20,
    }


def plot(rows: List[Dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for size in sorted({r["size"] for r in rows}, key=lambda s: parse_size(s)[0]):
        part = sorted((r for r in rows if r["size"] == size), key=lambda r: r["frames"])
        n = [r["frames"] for r in part]
        axes[0].plot(n, [r["peak_rss_gb"] for r in part], "o-", label=size)
        axes[1].plot(n, [r["load_s"] for r in part], "o-", label=size)
        axes[2].plot(n, [r["step_s"] * 1000 for r in part], "o-", label=size)
    for ax, title, target in zip(axes, ("peak RSS (GB)", "loading (s)", "median step (ms)"),
                                 (TARGETS["peak_rss_gb"], TARGETS["load_s"], None)):
        ax.set_title(title), ax.set_xlabel("frames"), ax.grid(alpha=0.3)
        if target is not None:
            ax.axhline(target, color="red", linestyle="--", linewidth=1, label="target")
        ax.set_ylim(bottom=0)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(opts: ScaleOptions) -> Dict:
    opts = opts.resolved()
    console = Console()
    if opts.measure is not None:
        print("RESULT " + json.dumps(measure(opts.measure, opts.steps, opts.preset, opts.run_dir)), flush=True)
        return {}
    opts.output_dir.mkdir(parents=True, exist_ok=True)
    rows: List[Dict] = []
    for size in opts.sizes:
        width, height = parse_size(size)
        rendered = make_frames(opts.output_dir / "scenes" / f"{size}-rendered{opts.distinct_frames}", width, height,
                               opts.distinct_frames, console)
        for num_frames in sorted(opts.frames):
            data = repeated_dataset(rendered, opts.output_dir / "scenes" / f"{size}-{num_frames}", num_frames)
            console.print(f"[bold]measuring[/] {size}, {num_frames} frames, {opts.steps} steps of {opts.preset}")
            command = [sys.executable, "-m", "plift_nerfstudio.bench.scale", "--measure", str(data), "--steps", str(opts.steps), "--preset",
                       opts.preset, "--run-dir", str(opts.output_dir / "runs")]
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode != 0 or not lines:
                console.print(done.stdout[-3000:], done.stderr[-3000:])
                raise SystemExit(f"measuring {data} failed (exit code {done.returncode})")
            row = {"size": size, "frames": num_frames, **json.loads(lines[-1][len("RESULT "):])}
            rows.append(row)
            console.print(f"  peak RSS {row['peak_rss_gb']:.2f} GB, loading {row['load_s']:.1f} s, "
                          f"step {row['step_s'] * 1000:.0f} ms")

    table = Table(title=f"{opts.preset}: {opts.steps} training steps per dataset, one process each")
    for column in ("size", "frames (train)", "peak RSS GB", "labels MB", "image cache MB", "loading s", "median step ms"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["size"], f"{r['frames']} ({r['train_frames']})", f"{r['peak_rss_gb']:.2f}",
                      f"{r['labels_mb']:.0f}", f"{r['image_cache_mb']:.0f}", f"{r['load_s']:.1f}",
                      f"{r['step_s'] * 1000:.0f}")
    console.print(table)
    largest = max(rows, key=lambda r: (parse_size(r["size"])[0] * parse_size(r["size"])[1], r["frames"]))
    verdicts = {name: {"value": largest[name], "target": target, "met": largest[name] <= target}
                for name, target in TARGETS.items()}
    spreads = {}
    for size in opts.sizes:
        times = [r["step_s"] for r in rows if r["size"] == size]
        spreads[size] = max(times) / min(times)
    verdicts["step_spread"] = {"value": max(spreads.values()), "target": STEP_SPREAD_TARGET,
                               "met": max(spreads.values()) <= STEP_SPREAD_TARGET}
    for name, v in verdicts.items():
        console.print(f"{name} at {largest['size']} x {largest['frames']} frames: {v['value']:.2f} "
                      f"(target <= {v['target']}): {'met' if v['met'] else 'MISSED'}")
    plot(rows, opts.output_dir / "scale.png")
    report = {"options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
              "rows": rows, "targets": verdicts}
    (opts.output_dir / "results.json").write_text(json.dumps(report, indent=2))
    console.print(f"wrote {opts.output_dir / 'results.json'} and {opts.output_dir / 'scale.png'}")
    return report


if __name__ == "__main__":  # the per-dataset measurement runs as ``python -m plift_nerfstudio.bench.scale --measure``
    import tyro

    main(tyro.cli(ScaleOptions, description=(__doc__ or "").split("\n\n")[0]))
