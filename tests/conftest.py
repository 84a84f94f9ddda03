"""Shared test data: tiny procedural scenes written by the project's own generator (nothing is downloaded)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from plift_nerfstudio.synth.dataset import SynthOptions, write_dataset


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
