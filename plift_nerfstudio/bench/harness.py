"""Train and evaluate a preset in-process (benchmarks, tests): nerfstudio's own Trainer, no subprocess.

:func:`benchmark_schedule` is ``method_config.stretch_schedule`` (the step count, the learning-rate decay, the grid
upsampling steps and the loss start steps move together) for a run that a benchmark scores itself: it is saved and
evaluated by nerfstudio only at its end.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple

from nerfstudio.engine.trainer import TrainerConfig

from plift_nerfstudio.evaluation.eval_views import EvaluationResult, evaluate_pipeline
from plift_nerfstudio.method_config import stretch_schedule
from plift_nerfstudio.core.runs import load_trained_pipeline


def benchmark_schedule(config: TrainerConfig, steps: int) -> TrainerConfig:
    """A copy of ``config`` whose whole schedule is stretched to ``steps`` training steps (``stretch_schedule``),
    saved and evaluated only at the end (benchmarks score the run themselves)."""
    config = stretch_schedule(config, steps)
    config.steps_per_save = steps
    config.steps_per_eval_batch = steps + 1
    config.steps_per_eval_image = steps + 1
    config.steps_per_eval_all_images = steps + 1
    return config


def run_config(
    preset: TrainerConfig,
    data: Path,
    output_dir: Path,
    experiment_name: str,
    steps: Optional[int] = None,
    model_overrides: Optional[Dict[str, Any]] = None,
    rays_per_batch: Optional[tuple] = None,
    seed: int = 42,
    datamanager_overrides: Optional[Dict[str, Any]] = None,
) -> TrainerConfig:
    """The preset pointed at ``data``, with its schedule rescaled and some model and datamanager options changed."""
    config = benchmark_schedule(preset, steps) if steps else copy.deepcopy(preset)
    config.pipeline.datamanager.data = data
    config.pipeline.datamanager.dataparser.data = data  # type: ignore[attr-defined]
    if rays_per_batch is not None:
        config.pipeline.datamanager.train_num_rays_per_batch = rays_per_batch[0]  # type: ignore[attr-defined]
        config.pipeline.datamanager.single_image_num_rays = rays_per_batch[1]  # type: ignore[attr-defined]
    for part, overrides in ((config.pipeline.model, model_overrides), (config.pipeline.datamanager, datamanager_overrides)):
        for key, value in (overrides or {}).items():
            if not hasattr(part, key):
                raise ValueError(f"the {type(part).__name__} has no option {key!r}")
            setattr(part, key, value)
    config.output_dir = output_dir
    config.experiment_name = experiment_name
    config.vis = "tensorboard"
    config.machine.seed = seed
    config.set_timestamp()
    return config


def seeded_trainer(config: TrainerConfig):
    """Seed Python, NumPy and torch with ``config.machine.seed`` as ``ns-train`` does, save the config and return the
    set-up Trainer: without the seeding, a benchmark's run draws its initial weights and rays from an unseeded
    generator and does not repeat."""
    import random

    import numpy as np
    import torch

    seed = config.machine.seed
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


@dataclass
class ProgressPoint:
    step: int
    train_seconds: float
    """Training time up to this step, without the time spent evaluating."""
    metrics: Dict[str, Optional[float]]
    """``evaluation.flat_metrics`` of the test views at this step."""


@dataclass
class RunResult:
    config_path: Path
    train_seconds: float
    evaluation: EvaluationResult
    progress: List[ProgressPoint] = dataclasses.field(default_factory=list)


def train_and_evaluate(config: TrainerConfig, keep_renders: int = 0, progress_steps: Sequence[int] = ()) -> RunResult:
    """Train with nerfstudio's Trainer, reload the last checkpoint in test mode and score the test views.

    ``progress_steps``: also score the test views during training after these steps (quality against training
    time); the time spent scoring is left out of ``train_seconds``.
    """
    import random

    import numpy as np
    import torch
    from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation

    from plift_nerfstudio.evaluation.eval_views import flat_metrics

    trainer = seeded_trainer(config)
    progress: List[ProgressPoint] = []
    clock = {"start": 0.0, "paused": 0.0}

    def score(step: int) -> None:
        paused = time.perf_counter()
        trained = paused - clock["start"] - clock["paused"]
        rng_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
        with torch.no_grad():
            result = evaluate_pipeline(trainer.pipeline, keep_renders=0)
        trainer.pipeline.train()
        torch.set_rng_state(rng_state[0]), np.random.set_state(rng_state[1]), random.setstate(rng_state[2])
        progress.append(ProgressPoint(step + 1, trained, flat_metrics(result)))
        flat = progress[-1].metrics
        print(f"step {step + 1}: {trained / 60:.1f} min of training; " + ", ".join(
            f"{k} {flat[k]:.1f}" for k in ("panopticapi_scene_pq", "panopticapi_pq", "panopticapi_miou", "psnr")
            if flat.get(k) is not None), flush=True)
        clock["paused"] += time.perf_counter() - paused

    wanted = tuple(sorted({s - 1 for s in progress_steps if 0 < s <= config.max_num_iterations}))  # steps count from 0
    if wanted:
        trainer.callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], score, iters=wanted))
    clock["start"] = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - clock["start"] - clock["paused"]
    config_path = config.get_base_dir() / "config.yml"
    del trainer
    _, pipeline, _, _ = load_trained_pipeline(config_path, test_mode="test")
    return RunResult(config_path, seconds, evaluate_pipeline(pipeline, keep_renders=keep_renders), progress)


@dataclass
class DemoRunOptions:
    """The run a demo-scene benchmark scores: its own training, or a given run."""

    quick: bool = False
    """CI mode: a small scene (24 frames of 64x48) trained 150 steps; checks that everything runs."""
    load_config: Optional[Path] = None
    """A trained run of a plift-synth dataset (default: train one)."""
    steps: int = 3000
    """Training steps when training."""


def ensure_sparse_depth_points(data: Path) -> None:
    """COLMAP triangulates the dataset's training images (plift-sparse-depth) unless its points file exists."""
    from plift_nerfstudio.cli.sparse_depth import SparseDepthOptions
    from plift_nerfstudio.cli.sparse_depth import main as triangulate
    from plift_nerfstudio.sparse_depth.points import SPARSE_DEPTH_FILE

    if not (data / SPARSE_DEPTH_FILE).is_file():
        triangulate(SparseDepthOptions(data=data))


def sparse_depth_overrides(data: Path) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Model and datamanager options that add the sparse depth loss at ``panoptic-lifting-cpu``'s settings to another
    preset; COLMAP first triangulates the dataset's training images (plift-sparse-depth) unless its points file
    exists."""
    from plift_nerfstudio.method_config import cpu_sparse_depth_settings

    ensure_sparse_depth_points(data)
    return cpu_sparse_depth_settings()


DemoPreset = Literal["lite", "cpu"]


def quick_frame_size(sparse_depth: bool) -> Tuple[int, int]:
    """(width, height) of a quick (CI) scene's frames: 64x48, or 128x96 with sparse depth, as COLMAP finds too few
    features in 64x48 frames."""
    return (128, 96) if sparse_depth else (64, 48)


def train_demo_run(out: Path, quick: bool, steps: int, experiment: str, sparse_depth: bool = False,
                   seed: int = 42, preset: DemoPreset = "lite") -> Path:
    """Train ``panoptic-lifting-lite`` (``preset`` "cpu": ``panoptic-lifting-cpu``) on the moderate-noise demo scene
    written under ``out/scene`` (a 24-frame small room in ``quick`` mode, 150 steps) and return the run's config.yml
    (the benchmarks' own run).

    ``sparse_depth``: first triangulate the training images with COLMAP (plift-sparse-depth) and train with the
    sparse depth loss at ``panoptic-lifting-cpu``'s settings (its own; without it, that preset trains with the loss
    off); the quick scene is then 128x96, as COLMAP finds too few features in 64x48 frames."""
    from plift_nerfstudio.method_config import panoptic_lifting_cpu, panoptic_lifting_lite
    from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset

    scene = out / "scene"
    if not (scene / "transforms.json").is_file():
        width, height = quick_frame_size(sparse_depth)
        size = dict(num_frames=24, width=width, height=height, scene="small-room", test_every=4) if quick else {}
        write_dataset(SynthOptions(output=scene, seed=0, noise="moderate", **size))
    model_overrides, datamanager_overrides = (sparse_depth_overrides(scene) if sparse_depth else
                                              ({"sparse_depth_loss_mult": 0.0}, {"sparse_depth_num_rays": 0}))
    steps = 150 if quick else steps
    spec = {"lite": panoptic_lifting_lite, "cpu": panoptic_lifting_cpu}[preset]
    config = run_config(spec.config, scene, out / "runs", experiment, steps=steps, seed=seed,
                        model_overrides=model_overrides, datamanager_overrides=datamanager_overrides)
    config.max_num_iterations = steps
    config.steps_per_save = steps
    seeded_trainer(config).train()
    return config.get_base_dir() / "config.yml"
