"""The GPU check (``bash scripts/gpu_check.sh``): what a person with one or more GPUs runs, and what this project runs
whenever a GPU is lent. Under 10 minutes on one H100.

1. the device: GPUs, CUDA, and whether tinycudann imports and the field uses it;
2. speed: the paper preset's training step and a 2048-ray render against nerfstudio's TensoRF on the same GPU
   (``benchmark_speed.py``: the lite preset after its warm-up, the paper preset untrained);
3. quality at GPU scale: the paper preset (with sparse depth) trained on a shipped realistic room for a fixed
   number of steps, scored on its test views against the 2D labels (panopticapi protocol);
4. with 2+ GPUs: the paper preset's step time on one GPU and on two (``--machine.num-devices 2``, DDP through
   :mod:`plift_nerfstudio.distributed`), and the rays per second each gives.

Writes ``results.json`` and ``results.md`` to ``--output-dir``. Without a GPU it says so and stops (exit 0).
``--rehearsal`` runs every GPU branch on the CPU at small sizes (a tiny procedural scene, tiny grids, a few
steps, two gloo processes for the multi-device branch): the test suite runs it so that the branches are exercised
where no GPU is; its numbers mean nothing.
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import tyro
from rich.console import Console

ROOM_STEPS = 5000
MULTI_STEPS, MULTI_TIMED_FROM = 120, 40


@dataclass
class GpuCheckOptions:
    """The GPU check: device, speed against TensoRF, a realistic room at GPU scale, and 2-GPU step time."""

    output_dir: Path = Path("benchmarks/gpu_check")
    """Where results.json, results.md and the runs go."""
    room: Path = Path("data/realistic/bedroom-living-0")
    """The realistic room trained at GPU scale (it ships its sparse depth points)."""
    room_steps: int = ROOM_STEPS
    """Training steps of the paper preset on the room (its schedule rescaled to them)."""
    rehearsal: bool = False
    """Run every GPU branch on the CPU at small sizes (for the test suite; the numbers mean nothing)."""


def device_report(rehearsal: bool) -> Dict[str, Any]:
    """GPUs, CUDA, tinycudann: whether it imports, and which implementation the field resolves to."""
    from plift_nerfstudio.fields.panoptic_field import resolve_implementation

    report: Dict[str, Any] = {"cuda": torch.cuda.is_available(), "torch": torch.__version__,
                              "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
                              "cuda_version": torch.version.cuda, "rehearsal": rehearsal}
    try:
        import tinycudann  # noqa: F401

        report["tinycudann"] = getattr(tinycudann, "__version__", "installed")
    except (ImportError, OSError, EnvironmentError) as err:
        report["tinycudann"] = None
        report["tinycudann_error"] = str(err).splitlines()[0] if str(err) else type(err).__name__
    report["field_implementation"] = resolve_implementation("auto")
    report["tinycudann_used"] = report["field_implementation"] == "tcnn"
    return report


def speed_check(out: Path, rehearsal: bool) -> Dict[str, Any]:
    from plift_nerfstudio.bench.speed import SpeedOptions
    from plift_nerfstudio.bench.speed import main as speed_main

    opts = SpeedOptions(output_dir=out / "speed")
    if rehearsal:
        opts = SpeedOptions(output_dir=out / "speed", rays=256, warmup_steps=12, schedule_steps=40, repeats=1,
                            num_frames=12, width=48, height=36)
    report = speed_main(opts)
    return {"rows": report["rows"], "device": report["device"], "occupied_fraction": report["occupied_fraction"]}


def _paper_config(data: Path, output_dir: Path, name: str, steps: Optional[int], rehearsal: bool, sparse_depth: bool):
    """The paper preset (``panoptic-lifting``) pointed at ``data``; in a rehearsal with tiny grids and batches."""
    from plift_nerfstudio.bench.harness import run_config, sparse_depth_overrides
    from plift_nerfstudio.method_config import panoptic_lifting

    model, datamanager = sparse_depth_overrides(data) if sparse_depth else ({"sparse_depth_loss_mult": 0.0},
                                                                             {"sparse_depth_num_rays": 0})
    rays = None
    if rehearsal:
        model = {**model, "init_resolution": 16, "final_resolution": 24, "num_samples": 32,
                 "occupancy_grid_resolution": 16}
        rays = (128, 64)
    config = run_config(panoptic_lifting.config, data, output_dir, name, steps=steps, model_overrides=model,
                        datamanager_overrides=datamanager, rays_per_batch=rays)
    config.logging.local_writer.enable = False
    if steps is not None:
        config.steps_per_save = config.max_num_iterations = steps
    return config


def _rehearsal_scene(out: Path) -> Path:
    from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset

    scene = out / "rehearsal-scene"
    if not (scene / "transforms.json").is_file():
        write_dataset(SynthOptions(output=scene, seed=3, num_frames=12, width=48, height=36, scene="small-room",
                                   test_every=4))
    return scene


def room_check(opts: GpuCheckOptions, out: Path) -> Dict[str, Any]:
    """The paper preset with sparse depth on the room for ``room_steps`` steps, scored on its test views."""
    from plift_nerfstudio.bench.harness import train_and_evaluate
    from plift_nerfstudio.evaluation.eval_views import flat_metrics

    data = _rehearsal_scene(out) if opts.rehearsal else opts.room
    steps = 20 if opts.rehearsal else opts.room_steps
    config = _paper_config(data, out / "runs", f"gpu-{data.name}", steps, opts.rehearsal,
                           sparse_depth=not opts.rehearsal)
    result = train_and_evaluate(config)
    flat = flat_metrics(result.evaluation)
    keys = ("panopticapi_scene_pq", "panopticapi_pq", "panopticapi_miou", "psnr", "labels_panopticapi_pq",
            "labels_panopticapi_miou")
    return {"room": str(data), "steps": steps, "train_minutes": result.train_seconds / 60,
            **{k: flat.get(k) for k in keys}, "config": str(result.config_path)}


def timed_train_loop(local_rank: int, world_size: int, config, global_rank: int = 0, *, result_file: str,
                     timed_from: int) -> None:
    """nerfstudio's train_loop that times each step (GPU synchronised) from ``timed_from`` on; rank 0 writes the
    median step time."""
    import random

    import numpy as np
    from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation

    seed = config.machine.seed + global_rank
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    trainer = config.setup(local_rank=local_rank, world_size=world_size)
    trainer.setup()
    starts: Dict[int, float] = {}
    times: List[float] = []

    def sync() -> None:
        if torch.cuda.is_available() and config.machine.device_type == "cuda":
            torch.cuda.synchronize()

    def start(step: int) -> None:
        sync()
        starts[step] = time.perf_counter()

    def stop(step: int) -> None:
        sync()
        if step >= timed_from:
            times.append(time.perf_counter() - starts[step])

    trainer.callbacks.insert(0, TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], start,
                                                 update_every_num_iters=1))
    trainer.callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], stop,
                                              update_every_num_iters=1))
    trainer.train()
    if global_rank == 0:
        rays = trainer.pipeline.datamanager.get_train_rays_per_batch()
        Path(result_file).write_text(json.dumps({"median_step_s": statistics.median(times), "steps_timed": len(times),
                                                 "rays_per_rank": rays, "world_size": world_size}))


def multi_device_check(opts: GpuCheckOptions, out: Path) -> Dict[str, Any]:
    """The paper preset's step time on one device and on two (DDP), on the room (a rehearsal: two CPU processes)."""
    from plift_nerfstudio.distributed import launch

    data = _rehearsal_scene(out) if opts.rehearsal else opts.room
    steps, timed_from = (12, 4) if opts.rehearsal else (MULTI_STEPS, MULTI_TIMED_FROM)
    report: Dict[str, Any] = {}
    for devices in (1, 2):
        config = _paper_config(data, out / "runs", f"multi-{devices}", steps, opts.rehearsal,
                               sparse_depth=not opts.rehearsal)
        config.machine.num_devices = devices
        config.steps_per_save = 10**9  # nothing to keep
        config.set_timestamp()
        result_file = out / f"multi-{devices}.json"
        launch(functools.partial(timed_train_loop, result_file=str(result_file), timed_from=timed_from), devices,
               config=config, device_type=config.machine.device_type)
        timing = json.loads(result_file.read_text())
        timing["rays_per_s"] = devices * timing["rays_per_rank"] / timing["median_step_s"]
        report[f"{devices}_devices"] = timing
    report["speedup_rays_per_s"] = report["2_devices"]["rays_per_s"] / report["1_devices"]["rays_per_s"]
    return report


def markdown(results: Dict[str, Any]) -> str:
    d = results["device"]
    lines = ["# GPU check", "", f"- device: {', '.join(d['gpus']) or 'none'} (CUDA {d['cuda_version']}, torch "
             f"{d['torch']}){' - REHEARSAL on the CPU: numbers mean nothing' if d['rehearsal'] else ''}",
             f"- tinycudann: {d['tinycudann'] or 'not importable: ' + d.get('tinycudann_error', '')}; the field uses "
             f"{d['field_implementation']}", "", "## Speed against nerfstudio's TensoRF (same device, same rays)", "",
             "| measure | ours | TensoRF | ratio | target |", "|---|---|---|---|---|"]
    for name, row in results["speed"]["rows"].items():
        lines.append(f"| {name} | {row['ours']:.4f} | {row['tensorf']:.4f} | {row['ratio']:.2f} | "
                     f"{'' if row['target'] is None else '<= ' + str(row['target'])} |")
    r = results["room"]

    def f(v: Optional[float]) -> str:
        return "n/a" if v is None else f"{v:.1f}"

    lines += ["", f"## The paper preset on {r['room']} ({r['steps']} steps)", "",
              "| labels PQ / mIoU | ours PQscene / PQ / mIoU | PSNR | training min |", "|---|---|---|---|",
              f"| {f(r['labels_panopticapi_pq'])} / {f(r['labels_panopticapi_miou'])} | {f(r['panopticapi_scene_pq'])} / "
              f"{f(r['panopticapi_pq'])} / {f(r['panopticapi_miou'])} | {f(r['psnr'])} | {r['train_minutes']:.1f} |"]
    m = results.get("multi_device")
    if m:
        lines += ["", "## One device and two (DDP), the paper preset's step", "",
                  "| devices | median step (s) | rays per step per device | rays per second |", "|---|---|---|---|"]
        for n in (1, 2):
            t = m[f"{n}_devices"]
            lines.append(f"| {n} | {t['median_step_s']:.4f} | {t['rays_per_rank']} | {t['rays_per_s']:.0f} |")
        lines.append(f"\nTwo devices give {m['speedup_rays_per_s']:.2f}x the rays per second of one.")
    else:
        lines += ["", "One GPU: the two-device step time was not measured."]
    return "\n".join(lines) + "\n"


def main(opts: GpuCheckOptions) -> Optional[Dict[str, Any]]:
    console = Console()
    if not opts.rehearsal and not torch.cuda.is_available():
        console.print("gpu_check: no GPU (torch.cuda.is_available() is False): nothing to check on this machine.")
        return None
    out = Path(opts.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results: Dict[str, Any] = {"options": {k: str(v) for k, v in asdict(opts).items()},
                               "device": device_report(opts.rehearsal)}
    console.print(f"[bold]device[/]: {results['device']}")
    if not opts.rehearsal and not results["device"]["tinycudann_used"]:
        console.print("[yellow]tinycudann is not used[/]: the timings below are of the plain-torch field")
    results["speed"] = speed_check(out, opts.rehearsal)
    results["room"] = room_check(opts, out)
    if opts.rehearsal or torch.cuda.device_count() >= 2:
        results["multi_device"] = multi_device_check(opts, out)
    results["seconds"] = time.perf_counter() - start
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown(results))
    console.print(markdown(results))
    console.print(f"gpu_check: {results['seconds'] / 60:.1f} min; wrote {out / 'results.json'} and results.md")
    return results


def entrypoint() -> None:
    main(tyro.cli(GpuCheckOptions))


if __name__ == "__main__":
    entrypoint()
