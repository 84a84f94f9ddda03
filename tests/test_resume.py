"""Resuming a run after its grids were upsampled: every parameter group keeps learning, as if never stopped.

nerfstudio builds the optimisers before it loads a checkpoint, and loading regrows the VM grids (new Parameter
objects). Unless the optimiser is rebound to them, the grids stop learning silently while the MLPs go on.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from test_training import tiny_config

CHECKPOINT_STEP = 29  # after both upsamplings (steps 10 and 20)
MORE_STEPS = 10


def resume_config(data: Path, output_dir: Path, steps: int):
    config = tiny_config(data, output_dir)
    model = config.pipeline.model
    model.upsampling_iters = (10, 20)
    model.occupancy_warmup_steps, model.occupancy_update_every = 16, 4  # the occupancy grid is state too
    model.box_shrink_step = 24  # and so is the shrunk scene box (the grids are resampled into it)
    model.segmentation_grid_components = 2  # the heads' own grids are regrown and resampled with the others
    model.instance_loss_start_step, model.consistency_loss_start_step = 3, 6
    config.max_num_iterations = steps
    config.steps_per_save = 1000  # only the final checkpoint (the step a killed run last saved)
    config.machine.seed = 7
    return config


def set_up(config, load_dir: Optional[Path] = None):
    seed = config.machine.seed
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)  # as ns-train does
    config.load_dir = load_dir
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


def train(config):
    trainer = set_up(config)
    trainer.train()
    return trainer


def grids(trainer) -> dict:
    return {k: v.detach().clone() for k, v in trainer.pipeline.model.state_dict().items()
            if k.endswith(("plane_coef", "line_coef"))}


def test_resumed_grids_train_like_an_uninterrupted_run(tiny_scene_dir: Path, tmp_path: Path) -> None:
    interrupted = train(resume_config(tiny_scene_dir, tmp_path / "a", CHECKPOINT_STEP + 1))
    rng_state = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    at_checkpoint = grids(interrupted)
    checkpoint_dir = interrupted.checkpoint_dir
    box_at_checkpoint = interrupted.pipeline.model.field.aabb.clone()
    assert interrupted.pipeline.model.field.grid_resolution == 32  # upsampled twice before the checkpoint
    assert 0 < float(interrupted.pipeline.model.occupancy.occupied.float().mean()) < 0.5  # skipping is on
    saved = torch.load(checkpoint_dir / f"step-{CHECKPOINT_STEP:09d}.ckpt", map_location="cpu", weights_only=False)
    del interrupted

    resumed = set_up(resume_config(tiny_scene_dir, tmp_path / "b", MORE_STEPS), load_dir=checkpoint_dir)
    model = resumed.pipeline.model
    assert torch.equal(model.field.aabb, box_at_checkpoint)
    # the optimiser holds the model's own grid tensors, with the checkpoint's Adam state (not a fresh one)
    encodings = resumed.optimizers.optimizers["encodings"]
    grid_params = [p for encoding in model.field.grid_encodings() for p in encoding.parameters()]
    assert len(grid_params) == 8  # density, colour and both heads' grids
    assert [id(p) for p in encodings.param_groups[0]["params"]] == [id(p) for p in grid_params]
    assert [id(p) for p in resumed.optimizers.parameters["encodings"]] == [id(p) for p in grid_params]
    saved_state = saved["optimizers"]["encodings"]["state"]
    for index, param in enumerate(grid_params):
        state = encodings.state[param]
        assert state["exp_avg"].shape == param.shape
        torch.testing.assert_close(state["exp_avg"], saved_state[index]["exp_avg"])
        torch.testing.assert_close(state["exp_avg_sq"], saved_state[index]["exp_avg_sq"])
    assert resumed.optimizers.schedulers["encodings"].last_epoch == saved["schedulers"]["encodings"]["last_epoch"]

    # nerfstudio's checkpoints do not hold the random state: give the resumed run the one the interrupted run had
    # when it stopped, so that it draws the same rays as the uninterrupted run
    torch.set_rng_state(rng_state[0]), np.random.set_state(rng_state[1]), random.setstate(rng_state[2])
    resumed.train()
    after_resume = grids(resumed)
    for name, value in after_resume.items():
        assert not torch.equal(value, at_checkpoint[name]), f"{name} did not change after resuming"

    uninterrupted = train(resume_config(tiny_scene_dir, tmp_path / "c", CHECKPOINT_STEP + 1 + MORE_STEPS))
    expected = grids(uninterrupted)
    for name, value in after_resume.items():
        # same seed, same rays, same Adam state: only float summation order could differ
        torch.testing.assert_close(value, expected[name], rtol=1e-4, atol=1e-6, msg=name)
