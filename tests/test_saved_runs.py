"""A run saved by an earlier version still loads through nerfstudio's loaders and renders what it rendered then
(``tests/fixtures/run_before_refactor``: import paths in config.yml, attribute names in the checkpoint)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
import yaml
from nerfstudio.utils.eval_utils import eval_setup

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run_before_refactor"


def test_a_run_saved_before_the_refactor_loads_and_renders_the_same_image(tiny_scene_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    config = yaml.load((run / "config.yml").read_text(), Loader=yaml.Loader)  # as nerfstudio reads it
    config.pipeline.datamanager.data = config.pipeline.datamanager.dataparser.data = tiny_scene_dir
    config.relative_model_dir = run / "nerfstudio_models"  # absolute: the checkpoints of this copy
    (run / "config.yml").write_text(yaml.dump(config), "utf8")

    _, pipeline, checkpoint, step = eval_setup(run / "config.yml", test_mode="inference")
    assert checkpoint.parent == run / "nerfstudio_models" and step == 299
    with torch.no_grad():
        rendered = pipeline.model.get_outputs_for_camera(pipeline.datamanager.train_dataset.cameras[0:1])
    expected = np.load(FIXTURE / "expected_render.npz")
    for key in ("semantic_id", "instance_id"):
        np.testing.assert_array_equal(rendered[key].cpu().numpy(), expected[key], err_msg=key)
    for key in ("rgb", "depth", "accumulation"):
        np.testing.assert_allclose(rendered[key].cpu().numpy(), expected[key], atol=1e-5, rtol=0, err_msg=key)
    assert (expected["instance_id"] > 0).any() and expected["accumulation"].mean() > 0.5  # a scene, not an empty box
