"""Speed benchmark: our training step and render against nerfstudio's own TensoRF, side by side in one process.

Both models get the same ray bundles (the same pixels of the same scene), the same thread count and the same
machine. Ours is first trained for --warmup-steps so that its occupancy grid knows where the scene is (the cost of
a step depends on it); TensoRF's cost does not depend on training (fixed 200 uniform + 50 importance samples), so
it is timed as built, at its initial 128^3 grids. TensoRF is built offline: its LPIPS metric (which downloads
weights when constructed) is replaced by a placeholder that refuses to run; no training step uses it.

Timed: a training step (forward, losses, backward, optimiser step), the render of 2048 rays (no gradients),
the peak memory of a step, and inside our step the linear assignment and each loss. Measurements alternate
between the two models, and the median of --repeats is reported.

  python scripts/benchmark_speed.py            # default demo scene, 1600 warm-up steps
  python scripts/benchmark_speed.py --quick    # CI: tiny scene, short warm-up, few repeats
"""

from __future__ import annotations

import gc
import json
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional

import torch
from rich.console import Console
from rich.table import Table

from plift_nerfstudio.bench.timing import timed_calls
from plift_nerfstudio.bench.harness import quick_frame_size, run_config, sparse_depth_overrides
from plift_nerfstudio.method_config import panoptic_lifting, panoptic_lifting_lite
from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset

TARGETS = {"train step": 0.12, "render 2048 rays": 0.08}  # ours / TensoRF at most (issue 15)
PAPER_TARGET = 1.0  # the paper-scale preset / TensoRF at most, step and render
ASSIGNMENT_TARGET = 0.05  # linear assignment: share of our step at most


@dataclass
class SpeedOptions:
    """Options of the speed benchmark."""

    output_dir: Path = Path("benchmarks/speed")
    """Where the scene, the warm-up run and results.json go."""
    quick: bool = False
    """CI mode: a tiny scene (24 frames of 64x48), 300 warm-up steps of a 500-step schedule, 3 repeats."""
    rays: int = 2048
    """Rays per training step for both models (ours: 3/4 scene-wide, 1/4 from one image)."""
    warmup_steps: int = 1600
    """Training steps of ours before timing (past the last grid upsampling; the occupancy grid knows the scene)."""
    schedule_steps: int = 3000
    """Length of the preset's schedule the warm-up runs in (the preset's own: 3000)."""
    repeats: int = 10
    """Timed repetitions of each measurement (median reported)."""
    load_config: Optional[Path] = None
    """Time an already trained run (its config.yml) instead of warming up a new one on the demo scene."""
    num_frames: int = 100
    width: int = 160
    height: int = 120
    sparse_depth: bool = False
    """Warm up with COLMAP's points of the training images (plift-sparse-depth) and the sparse depth loss at
    panoptic-lifting-cpu's settings (needs colmap on PATH); the timed steps leave the depth rays out, as above."""

    def resolved(self) -> "SpeedOptions":
        if not self.quick:
            return self
        return SpeedOptions(self.output_dir, True, self.rays, 300, 500, 3, None, 24, *quick_frame_size(self.sparse_depth),
                            self.sparse_depth)


def release_free_memory() -> None:
    """Give freed heap memory back to the OS (glibc), so that a step's working memory shows up as RSS growth."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory above the level at entry: CUDA allocator statistics, or the process RSS sampled every ms
    (after returning freed heap memory to the OS)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        gc.collect()
        release_free_memory()
        self._base = self._rss()
        self._stop = threading.Event()
        self._max = self._base

        def sample() -> None:
            while not self._stop.is_set():
                self._max = max(self._max, self._rss())
                time.sleep(0.001)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._base
            return
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self._max, self._rss()) - self._base


def build_tensorf(scene_box, num_train_data: int, device: torch.device):
    """nerfstudio's TensoRF model with its method config's defaults, built without downloading LPIPS weights."""
    import torchmetrics.image.lpip as lpip
    from nerfstudio.configs.method_configs import method_configs

    class LpipsNotBuilt(torch.nn.Module):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__()

        def forward(self, *args, **kwargs):
            raise RuntimeError("LPIPS is not built in the speed benchmark (it would download weights)")

    config = method_configs["tensorf"]
    original = lpip.LearnedPerceptualImagePatchSimilarity
    lpip.LearnedPerceptualImagePatchSimilarity = LpipsNotBuilt  # type: ignore[misc]
    try:
        model = config.pipeline.model.setup(scene_box=scene_box, num_train_data=num_train_data, metadata={})
    finally:
        lpip.LearnedPerceptualImagePatchSimilarity = original  # type: ignore[misc]
    model.to(device)
    groups = model.get_param_groups()
    optimiser = torch.optim.Adam(
        [{"params": groups[name], "lr": config.optimizers[name]["optimizer"].lr} for name in ("fields", "encodings") if groups.get(name)]
    )
    return model, optimiser


@torch.no_grad()
def samples_per_ray(model, ray_bundle) -> Dict[str, float]:
    """Samples per ray of a render: placed, queried for density (occupied, before termination), shaded."""
    from plift_nerfstudio.model_components.sparse_render import samples_to_shade

    model.eval()
    queried = {"n": 0}
    density = model.field.density

    def counting(positions):
        queried["n"] += len(positions)
        return density(positions)

    model.field.density = counting
    try:
        weights, _ = model.ray_weights(ray_bundle)
    finally:
        del model.field.density  # back to the method
    shaded = samples_to_shade(weights, model.config.weight_threshold, model.max_kept_samples)
    rays = weights.shape[0]
    return {"samples": weights.shape[1], "queried": queried["n"] / rays, "shaded": float(shaded.sum()) / rays}


# exactly --rays rays per step, as TensoRF gets: the preset's extra thing rays for the instance loss (at most
# instance_num_rays per step, fewer where an image has few thing pixels) and the sparse depth loss's rays through
# COLMAP's points (panoptic-lifting-cpu, runs trained with sparse depth) are off here
EQUAL_RAYS = {"instance_num_rays": 0, "sparse_depth_num_rays": 0}


def main(opts: SpeedOptions) -> Dict:
    opts = opts.resolved()
    console = Console()
    opts.output_dir.mkdir(parents=True, exist_ok=True)
    image_rays = opts.rays // 4
    if opts.load_config is None:
        scene = opts.output_dir / "scenes" / f"moderate-0-{opts.num_frames}x{opts.width}x{opts.height}"
        if not (scene / "transforms.json").is_file():
            write_dataset(SynthOptions(output=scene, seed=0, num_frames=opts.num_frames, width=opts.width, height=opts.height))
        model_overrides, depth_rays = sparse_depth_overrides(scene) if opts.sparse_depth else ({}, {})
        config = run_config(panoptic_lifting_lite.config, scene, opts.output_dir / "runs", "speed-warmup",
                            steps=opts.schedule_steps, rays_per_batch=(opts.rays - image_rays, image_rays),
                            model_overrides=model_overrides, datamanager_overrides={**EQUAL_RAYS, **depth_rays})
        config.max_num_iterations = opts.warmup_steps
        config.logging.local_writer.enable = False
        torch.manual_seed(0)
        console.print(f"[bold]warm-up[/]: {opts.warmup_steps} training steps of ours ({opts.rays} rays per step)")
        trainer = config.setup(local_rank=0, world_size=1)
        trainer.setup()
        start = time.perf_counter()
        trainer.train()
        warmup_seconds = time.perf_counter() - start
        pipeline, optimizers, step = trainer.pipeline, trainer.optimizers, opts.warmup_steps
        method = config.method_name
    else:
        from nerfstudio.engine.optimizers import Optimizers
        from plift_nerfstudio.core.runs import load_trained_pipeline

        loaded_config, pipeline, _, step = load_trained_pipeline(opts.load_config, test_mode="val")
        method = loaded_config.method_name
        datamanager_config = pipeline.datamanager.config
        datamanager_config.train_num_rays_per_batch, datamanager_config.single_image_num_rays = opts.rays - image_rays, image_rays
        for key, value in EQUAL_RAYS.items():
            setattr(datamanager_config, key, value)
        pipeline.datamanager.setup_train()  # the pixel sampler takes the batch size from the config
        optimizers = Optimizers(loaded_config.optimizers, pipeline.get_param_groups())
        warmup_seconds = 0.0
        if pipeline.model.occupancy is not None:  # a checkpoint from before the grid existed: measure it now
            model = pipeline.model
            for i in range(8):
                model.update_occupancy(model.config.occupancy_warmup_steps + i * model.config.occupancy_update_every)
    pipeline.datamanager.sparse_depth = None  # the timed steps carry no depth rays (EQUAL_RAYS)
    ours = pipeline.model
    device = ours.device
    ours.step = step  # all losses on (instance and consistency start earlier)
    occupied = float(ours.occupancy.occupied.float().mean()) if ours.occupancy is not None else 1.0

    datamanager = pipeline.datamanager
    batches = [datamanager.next_train(opts.warmup_steps + i) for i in range(opts.repeats + 1)]
    tensorf, tensorf_optimiser = build_tensorf(datamanager.train_dataset.scene_box, len(datamanager.train_dataset), device)
    # the paper-scale preset, untrained: TensoRF's grid sizes plus two heads and four losses; its occupancy grid has
    # not been measured yet, so every sample is queried (the worst case for it)
    from nerfstudio.engine.optimizers import Optimizers as _Optimizers

    paper = panoptic_lifting.config.pipeline.model.setup(
        scene_box=datamanager.train_dataset.scene_box, num_train_data=len(datamanager.train_dataset),
        metadata=ours.kwargs["metadata"], device=device,
    ).to(device)
    paper.step = 10**9  # every loss on
    paper_optimisers = _Optimizers(panoptic_lifting.config.optimizers, paper.get_param_groups())

    def paper_step(i: int) -> None:
        ray_bundle, batch = batches[i]
        paper.train()
        outputs = paper(ray_bundle)
        loss = sum(paper.get_loss_dict(outputs, batch, paper.get_metrics_dict(outputs, batch)).values())
        paper_optimisers.zero_grad_all()
        loss.backward()  # type: ignore[union-attr]
        paper_optimisers.optimizer_step_all()

    def our_step(i: int) -> None:
        ray_bundle, batch = batches[i]
        ours.train()
        outputs = ours(ray_bundle)
        metrics = ours.get_metrics_dict(outputs, batch)
        loss = sum(ours.get_loss_dict(outputs, batch, metrics).values())
        optimizers.zero_grad_all()
        loss.backward()  # type: ignore[union-attr]
        optimizers.optimizer_step_all()

    def tensorf_step(i: int) -> None:
        ray_bundle, batch = batches[i]
        tensorf.train()
        outputs = tensorf(ray_bundle)
        loss = sum(tensorf.get_loss_dict(outputs, batch, {}).values())
        tensorf_optimiser.zero_grad()
        loss.backward()
        tensorf_optimiser.step()

    eval_camera = datamanager.eval_dataset.cameras[0:1].to(device)
    render_bundle = eval_camera.generate_rays(camera_indices=0, keep_shape=False)
    render_bundle = render_bundle[torch.randperm(len(render_bundle), generator=torch.Generator().manual_seed(0))[:2048]]

    @torch.no_grad()
    def render(model) -> None:
        model.eval()
        model(render_bundle)

    our_step(0), tensorf_step(0), paper_step(0), render(ours), render(tensorf), render(paper)  # allocate; not timed
    step_times: Dict[str, List[float]] = {"ours": [], "tensorf": [], "paper": []}
    render_times: Dict[str, List[float]] = {"ours": [], "tensorf": [], "paper": []}
    peak: Dict[str, int] = {"ours": 0, "tensorf": 0, "paper": 0}
    ours.loss_timings = {}
    with console.status("timing (alternating ours / TensoRF / the paper preset)"):
        for i in range(1, opts.repeats + 1):
            for name, step_fn in (("ours", our_step), ("tensorf", tensorf_step), ("paper", paper_step)):
                if name == "paper":
                    ours.loss_timings, saved = None, ours.loss_timings
                with PeakMemory(device) as memory:
                    step_times[name] += timed_calls(lambda: step_fn(i), 1, device)
                peak[name] = max(peak[name], memory.peak_bytes)
                if name == "paper":
                    ours.loss_timings = saved
            for name, model in (("ours", ours), ("tensorf", tensorf), ("paper", paper)):
                render_times[name] += timed_calls(lambda: render(model), 1, device)
    loss_seconds = {k: v / opts.repeats for k, v in ours.loss_timings.items()}
    ours.loss_timings = None

    med = {k: statistics.median(v) for k, v in step_times.items()}
    rmed = {k: statistics.median(v) for k, v in render_times.items()}
    rows = [
        ("train step (s)", med["ours"], med["tensorf"], TARGETS["train step"]),
        ("render 2048 rays (s)", rmed["ours"], rmed["tensorf"], TARGETS["render 2048 rays"]),
        ("peak step memory (MB)", peak["ours"] / 2**20, peak["tensorf"] / 2**20, None),
        ("paper preset, untrained: train step (s)", med["paper"], med["tensorf"], PAPER_TARGET),
        ("paper preset, untrained: render 2048 rays (s)", rmed["paper"], rmed["tensorf"], PAPER_TARGET),
        ("paper preset, untrained: peak step memory (MB)", peak["paper"] / 2**20, peak["tensorf"] / 2**20, None),
    ]
    table = Table(title=f"ours ({method}) vs nerfstudio tensorf: {opts.rays} rays, {torch.get_num_threads()} "
                        f"threads, {device}, median of {opts.repeats}")
    for column in ("measure", "ours", "TensoRF", "ours / TensoRF", "target"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    report: Dict = {"options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
                    "threads": torch.get_num_threads(), "device": str(device), "warmup_seconds": warmup_seconds,
                    "occupied_fraction": occupied, "rows": {}, "our_step_parts_s": loss_seconds}
    for name, a, b, target in rows:
        ratio = a / b if b > 0 else float("nan")
        verdict = "" if target is None else (f"<= {target}: " + ("met" if ratio <= target else "MISSED"))
        table.add_row(name, f"{a:.3f}" if a < 100 else f"{a:.0f}", f"{b:.3f}" if b < 100 else f"{b:.0f}", f"{ratio:.2f}", verdict)
        report["rows"][name] = {"ours": a, "tensorf": b, "ratio": ratio, "target": target}
    console.print(table)
    parts = Table(title="inside our training step (median step %.3f s)" % med["ours"])
    for column in ("part", "ms", "share of step"):
        parts.add_column(column, justify="left" if column == "part" else "right")
    for name, seconds in sorted(loss_seconds.items(), key=lambda kv: -kv[1]):
        share = seconds / med["ours"]
        note = f" (target < {ASSIGNMENT_TARGET:.0%}: {'met' if share < ASSIGNMENT_TARGET else 'MISSED'})" if name == "linear_assignment" else ""
        parts.add_row(name, f"{seconds * 1000:.2f}", f"{share:.1%}{note}")
    console.print(parts)
    samples = samples_per_ray(ours, render_bundle)
    report["samples_per_ray"] = samples
    console.print(f"per ray of a test view: {samples['samples']:.0f} samples, {samples['queried']:.1f} queried (density), "
                  f"{samples['shaded']:.1f} shaded (colour and segmentation heads)")
    console.print(f"occupancy grid: {occupied:.1%} of cells occupied at step {step}"
                  + (f" ({warmup_seconds:.0f} s of warm-up)" if warmup_seconds else f" of {opts.load_config}"))
    (opts.output_dir / "results.json").write_text(json.dumps(report, indent=2))
    return report
