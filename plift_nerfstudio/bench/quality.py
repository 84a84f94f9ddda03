"""Quality benchmark: train the CPU preset on demo scenes and print the paper's Table 1 and Table 2 for them.

Table 1: the machine 2D labels against ours (test views, scored against ground truth) per scene (seed, noise).
Table 2: the robustness components switched off one at a time (segment consistency, TTA confidences and soft
class distributions, bounded fields, segmentation gradient blocking) on the ablation scenes, plus a row with the
speed-ups (occupancy grid, early ray termination) off and one with the instance loss's own thing rays off: quality
with and without them, side by side. Every table is printed under both evaluation protocols (metrics.py).

  python scripts/benchmark_quality.py                 # full: 2 seeds x 2 noise presets, 5 ablations (hours on CPU)
  python scripts/benchmark_quality.py --quick         # CI: one tiny scene, short runs (a few minutes)
  python scripts/benchmark_quality.py --realistic     # the shipped Blender rooms (data/realistic/): labels vs ours,
                                                      # diagnostics, PQscene vs time (about 30 min per room)
  python scripts/benchmark_quality.py --realistic --quick   # CI: one shipped room, 100 steps
  python scripts/benchmark_quality.py --realistic --realistic-root heldout   # rooms you made (plift-realistic-scene
                                                      # + plift-sparse-depth) and never tuned on

Results go to --output-dir as results.json and results.md; scenes are generated there once and reused.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Literal, Optional, Tuple

import numpy as np
from rich.console import Console

from plift_nerfstudio.evaluation.eval_views import flat_metrics
from plift_nerfstudio.bench.harness import run_config, train_and_evaluate
from plift_nerfstudio.method_config import panoptic_lifting_lite
from plift_nerfstudio.evaluation.metrics import PROTOCOL_NOTES, PROTOCOLS
from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset
from plift_nerfstudio.core.report import fmt, print_markdown_table

# Table 2 (paper): each robustness component off in turn; the overrides are PanopticLiftingModelConfig options.
# The last row is not the paper's: the speed-ups (occupancy grid, early ray termination) off, which shows that they
# change quality no more than noise and what they save in training time.
ABLATIONS: Dict[str, Dict[str, Any]] = {
    "full method": {},
    "w/o segment consistency": {"use_segment_consistency": False},
    "w/o TTA confidences": {"use_confidence": False},
    "w/o bounded fields": {"bounded_fields": False},
    "w/o gradient blocking": {"block_segmentation_gradients": False},
    "w/o empty-space skipping": {"occupancy_grid_resolution": 0, "termination_transmittance": 0.0},
}
# The thing-ray change of the instance loss, off: its rays are the thing pixels among the uniform single-image rays.
DATAMANAGER_ABLATIONS: Dict[str, Dict[str, Any]] = {"w/o thing rays for the instance loss": {"instance_num_rays": 0}}
METRICS = (("scene_pq", "PQscene"), ("pq", "PQ"), ("miou", "mIoU"))


@dataclass
class BenchmarkOptions:
    """Options of the quality benchmark."""

    output_dir: Path = Path("benchmarks/quality")
    """Where scenes, runs, results.json and results.md go."""
    quick: bool = False
    """CI mode: one tiny scene (32 frames of 64x48), 150 steps of 512 + 256 rays per run."""
    seeds: Tuple[int, ...] = (0, 1)
    """Scene seeds of Table 1."""
    noise: Tuple[str, ...] = ("moderate", "hard")
    """Label noise presets of Table 1."""
    ablation_scenes: Tuple[str, ...] = ("moderate-0",)
    """Scenes ('<noise>-<seed>') of Table 2."""
    variants: Tuple[str, ...] = ()
    """Rows of Table 2 to run (default: all), e.g. 'full method' 'w/o thing rays for the instance loss'."""
    steps: Optional[int] = None
    """Training steps per run (default: the preset's 3000; the whole schedule is rescaled)."""
    num_frames: int = 100
    """Frames per scene."""
    width: int = 160
    """Image width."""
    height: int = 120
    """Image height."""
    realistic: bool = False
    """Run the realistic-room benchmark instead (plift_nerfstudio/bench/realistic.py): the shipped Blender-rendered rooms
    under data/realistic/, the CPU preset against the 2D labels, with diagnostics."""
    realistic_scenes: Tuple[str, ...] = ()
    """With --realistic: the rooms to run (folder names under data/realistic/, or under --realistic-root; default
    all)."""
    realistic_root: Optional[Path] = None
    """With --realistic: run the rooms under this folder instead of the shipped ones (each a sub-folder with a
    transforms.json, made by plift-realistic-scene and completed by plift-sparse-depth): rooms held out from any
    tuning. Results go to benchmarks/realistic-<folder name> unless --output-dir is given."""
    training_seeds: Tuple[int, ...] = (42,)
    """With --realistic: train each room once per seed and add a table of the spread (42 is nerfstudio's default)."""
    label_forms: Tuple[Literal["distributions", "coco"], ...] = ("distributions",)
    """With --realistic: the forms of the machine labels to train on: 'distributions' (the room's labels, with a class
    distribution and a confidence per pixel) and/or 'coco' (the room's COCO panoptic variant, one class and a score
    per segment, imported with plift-import-labels into a copy of the room)."""
    preset: str = "panoptic-lifting-cpu"
    """With --realistic: the preset to train (panoptic-lifting-cpu, panoptic-lifting-lite or panoptic-lifting-quick)."""
    model_settings: Tuple[str, ...] = ()
    """With --realistic: model options set on top of the preset, as name=value (e.g. position_frequencies=4): a lever
    measured against the preset on the same rooms."""

    def resolved(self) -> "BenchmarkOptions":
        if not self.quick:
            return self
        return BenchmarkOptions(
            output_dir=self.output_dir, quick=True, seeds=(0,), noise=("moderate",), ablation_scenes=("moderate-0",),
            variants=self.variants, steps=self.steps or 150, num_frames=32, width=64, height=48,
        )


@dataclass
class Row:
    scene: str
    variant: str
    ours: Dict[str, Optional[float]]
    labels: Dict[str, Optional[float]]
    train_seconds: float
    config: str


@dataclass
class Results:
    options: dict
    table1: List[Row] = field(default_factory=list)
    table2: List[Row] = field(default_factory=list)


def scene_dir(opts: BenchmarkOptions, name: str) -> Path:
    """Generate the scene '<noise>-<seed>' once (deterministic per seed), reuse it afterwards."""
    noise, seed = name.rsplit("-", 1)
    root = opts.output_dir / "scenes" / f"{name}-{opts.num_frames}x{opts.width}x{opts.height}"
    if not (root / "transforms.json").is_file():
        write_dataset(SynthOptions(output=root, seed=int(seed), num_frames=opts.num_frames, width=opts.width,
                                   height=opts.height, noise=noise))  # type: ignore[arg-type]
    return root


def run_one(opts: BenchmarkOptions, scene: str, variant: str, console: Console) -> Row:
    data = scene_dir(opts, scene)
    rays = (512, 256) if opts.quick else None
    config = run_config(panoptic_lifting_lite.config, data, opts.output_dir / "runs", f"{scene}-{variant.replace('w/o ', 'without-').replace(' ', '-')}",
                        steps=opts.steps, model_overrides=ABLATIONS.get(variant, {}), rays_per_batch=rays,
                        datamanager_overrides=DATAMANAGER_ABLATIONS.get(variant, {}))
    config.logging.local_writer.enable = False  # one status line per run instead of nerfstudio's step table
    console.print(f"[bold]training[/] {scene} / {variant} ({config.max_num_iterations} steps)")
    result = train_and_evaluate(config)
    flat = flat_metrics(result.evaluation)
    ours = {k: v for k, v in flat.items() if not k.startswith("labels_")}
    labels = {k[len("labels_"):]: v for k, v in flat.items() if k.startswith("labels_")}
    for key in [f"{p}_{k}" for p in PROTOCOLS for k, _ in METRICS] + ["psnr"]:
        value = ours[key]
        if value is None or not np.isfinite(value):
            raise RuntimeError(f"{scene} / {variant}: metric {key} is {value}")
    console.print(f"  done in {result.train_seconds:.0f} s: " + ", ".join(
        f"{n} {ours[f'{p}_{k}']:.1f} ({p})" for p in PROTOCOLS for k, n in METRICS) + f", PSNR {ours['psnr']:.1f}")
    return Row(scene, variant, ours, labels, result.train_seconds, str(result.config_path))


def table1_markdown(rows: List[Row], protocol: str) -> List[str]:
    """Labels as they are and merged as our renders are (the level comparison), then ours."""
    lines = ["| scene | labels PQ | labels mIoU | labels merged PQ | labels merged mIoU | ours PQscene | ours PQ | "
             "ours mIoU | ours PSNR | train s |", "|---|---|---|---|---|---|---|---|---|---|"]

    def cells(labels: Callable[[str], Optional[float]], ours: Callable[[str], Optional[float]]) -> str:
        return (f"{fmt(labels(f'{protocol}_pq'), 1)} | {fmt(labels(f'{protocol}_miou'), 1)} | "
                f"{fmt(labels(f'merged_{protocol}_pq'), 1)} | {fmt(labels(f'merged_{protocol}_miou'), 1)} | "
                f"{fmt(ours(f'{protocol}_scene_pq'), 1)} | "
                f"{fmt(ours(f'{protocol}_pq'), 1)} | {fmt(ours(f'{protocol}_miou'), 1)} | {fmt(ours('psnr'), 1)}")

    for r in rows:
        lines.append(f"| {r.scene} | {cells(r.labels.get, r.ours.get)} | {r.train_seconds:.0f} |")
    if len(rows) > 1:
        def mean_of(get: Callable[[Row], Dict[str, Optional[float]]]) -> Callable[[str], Optional[float]]:
            return lambda key: (None if any(get(r).get(key) is None for r in rows)
                                else float(np.mean([get(r)[key] for r in rows])))
        lines.append(f"| mean | {cells(mean_of(lambda r: r.labels), mean_of(lambda r: r.ours))} | |")
    return lines


def table2_markdown(rows: List[Row], protocol: str) -> List[str]:
    lines = ["| variant | scenes | PQscene | PQ | mIoU | PSNR | ΔPQscene | ΔmIoU | train s |",
             "|---|---|---|---|---|---|---|---|---|"]
    by_variant: Dict[str, List[Row]] = {}
    for r in rows:
        by_variant.setdefault(r.variant, []).append(r)
    keys = [f"{protocol}_{k}" for k, _ in METRICS] + ["psnr"]
    full = by_variant.get("full method")
    ref = {k: float(np.mean([r.ours[k] for r in full])) for k in keys} if full else None
    for variant, rs in by_variant.items():
        m = {k: float(np.mean([r.ours[k] for r in rs])) for k in keys}
        delta = (lambda k: f"{m[k] - ref[k]:+.1f}") if ref else (lambda k: "n/a")  # noqa: E731
        lines.append(f"| {variant} | {len(rs)} | {m[f'{protocol}_scene_pq']:.1f} | {m[f'{protocol}_pq']:.1f} | "
                     f"{m[f'{protocol}_miou']:.1f} | {m['psnr']:.1f} | {delta(f'{protocol}_scene_pq')} | "
                     f"{delta(f'{protocol}_miou')} | {np.mean([r.train_seconds for r in rs]):.0f} |")
    return lines


def main(opts: BenchmarkOptions) -> Results:
    if opts.realistic:
        from plift_nerfstudio.bench.realistic import PRESETS, SHIPPED, RealisticOptions, parse_model_settings, run_realistic

        if opts.preset not in PRESETS:
            raise SystemExit(f"unknown --preset {opts.preset!r}; choose one of {sorted(PRESETS)}")
        default_dir = Path("benchmarks/realistic" + (f"-{opts.realistic_root.name}" if opts.realistic_root else ""))
        output_dir = opts.output_dir if opts.output_dir != Path("benchmarks/quality") else default_dir
        root = opts.realistic_root if opts.realistic_root is not None else SHIPPED
        rows = run_realistic(RealisticOptions(scenes=opts.realistic_scenes, root=root, preset=opts.preset, steps=opts.steps,
                                              quick=opts.quick, training_seeds=opts.training_seeds,
                                              label_forms=opts.label_forms,
                                              model_settings=parse_model_settings(opts.model_settings, opts.preset)),
                             output_dir, print_markdown_table)
        return Results(options={"realistic": [asdict(r) for r in rows]})
    opts = opts.resolved()
    console = Console()
    opts.output_dir.mkdir(parents=True, exist_ok=True)
    results = Results(options={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()})
    start = time.perf_counter()
    table1_scenes = [f"{noise}-{seed}" for noise in opts.noise for seed in opts.seeds]
    done: Dict[Tuple[str, str], Row] = {}
    for scene in table1_scenes:
        done[(scene, "full method")] = row = run_one(opts, scene, "full method", console)
        results.table1.append(row)
    for scene in opts.ablation_scenes:
        all_variants = [*ABLATIONS, *DATAMANAGER_ABLATIONS]
        unknown = sorted(set(opts.variants) - set(all_variants))
        if unknown:
            raise SystemExit(f"unknown --variants {unknown}; choose from {all_variants}")
        for variant in [v for v in all_variants if not opts.variants or v in opts.variants]:
            if (scene, variant) not in done:
                done[(scene, variant)] = run_one(opts, scene, variant, console)
            results.table2.append(done[(scene, variant)])
    steps = opts.steps or panoptic_lifting_lite.config.max_num_iterations
    head = (f"panoptic-lifting-lite, {steps} steps, scenes of {opts.num_frames} frames at {opts.width}x{opts.height}; "
            "test views against ground truth (PQ/mIoU in %, PSNR in dB); labels and ours under the same rules")
    md = ["# Quality benchmark", "", head, ""]
    for protocol in PROTOCOLS:
        t1, t2 = table1_markdown(results.table1, protocol), table2_markdown(results.table2, protocol)
        md += [f"## Table 1 ({protocol} protocol): 2D machine labels vs ours", "", PROTOCOL_NOTES[protocol] + ".", "",
               *t1, "", f"## Table 2 ({protocol} protocol): components switched off", "", *t2, ""]
        print_markdown_table(console, f"Table 1 ({protocol}): 2D machine labels vs ours", t1)
        print_markdown_table(console, f"Table 2 ({protocol}): components switched off", t2)
    (opts.output_dir / "results.md").write_text("\n".join(md))
    (opts.output_dir / "results.json").write_text(json.dumps(asdict(results), indent=2))
    console.print(f"{head}\nTotal {time.perf_counter() - start:.0f} s; wrote {opts.output_dir / 'results.md'} and results.json")
    return results
