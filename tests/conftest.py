"""Shared test data: tiny procedural scenes written by the project's own generator (nothing is downloaded)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_scene_dir(tmp_path_factory) -> Path:
    """A labelled 12-frame, 48x36 demo scene (read-only: copy it before changing files)."""
    out = tmp_path_factory.mktemp("scenes") / "tiny"
    write_dataset(SynthOptions(output=out, seed=3, num_frames=12, width=48, height=36, scene="small-room", test_every=4))
    return out


@pytest.fixture
def tiny_scene_copy(tiny_scene_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny scene that a test may damage."""
    dst = tmp_path / "scene"
    shutil.copytree(tiny_scene_dir, dst)
    return dst


@pytest.fixture(scope="session")
def trained_tiny_run(tiny_scene_dir: Path, tmp_path_factory) -> Path:
    """config.yml of the tiny scene trained 300 steps (long enough for its heads to show thing instances); read-only."""
    from test_training import tiny_config

    config = tiny_config(tiny_scene_dir, tmp_path_factory.mktemp("trained") / "outputs")
    config.max_num_iterations = config.steps_per_save = 300
    config.save_config()
    import random

    import numpy as np

    random.seed(0), np.random.seed(0), torch.manual_seed(0)  # as ns-train seeds
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.train()
    return config.get_base_dir() / "config.yml"
