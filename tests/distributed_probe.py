"""What the distributed tests run inside each spawned process (importable by the children: tests/ is on their path).

``probe_train_loop`` is nerfstudio's ``train_loop`` with a probe: after each listed step every rank writes its whole
state (model parameters and buffers, each optimiser's state per parameter) and, at step 0, the rays it drew.
``equivalence_worker`` takes one optimiser step on its half of a fixed batch through DDP.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import torch
import torch.distributed as dist
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation


def snapshot(trainer) -> Dict[str, Dict[str, torch.Tensor]]:
    """Every tensor a rank holds that must match the other ranks': the model's state dict (parameters, occupancy,
    visibility, box) and each optimiser's state, per parameter position."""
    model = trainer.pipeline.model
    state = {f"model/{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    for name, optimizer in trainer.optimizers.optimizers.items():
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for index, param in enumerate(params):
            for key, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value):
                    state[f"optimizer/{name}/{index}/{key}"] = value.detach().cpu().clone()
    return {"tensors": state, "resolution": model.field.grid_resolution,
            "structure_version": model.structure_version}


def probe_train_loop(local_rank: int, world_size: int, config, global_rank: int = 0, *, probe_dir: str,
                     steps: Sequence[int], sync: bool = True) -> None:
    """nerfstudio's train_loop (seed + rank) with each rank's state written after ``steps``; ``sync=False`` turns
    the pipeline's replica synchronisation off (to measure what diverges without it)."""
    probe = Path(probe_dir)
    seed = config.machine.seed + global_rank
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    config.output_dir = Path(config.output_dir) / f"rank{global_rank}"  # whatever a rank writes lands apart
    trainer = config.setup(local_rank=local_rank, world_size=world_size)
    trainer.setup()
    if not sync:  # the pipeline's synchronisation is its last callback (it runs after the model's)
        trainer.callbacks = trainer.callbacks[:-1]
    datamanager = trainer.pipeline.datamanager
    draw = datamanager.next_train

    def recording_draw(step: int):
        bundle, batch = draw(step)
        if step == 0:
            torch.save({"indices": batch["indices"].cpu(), "origins": bundle.origins.cpu(),
                        "directions": bundle.directions.cpu()}, probe / f"rays_rank{global_rank}.pt")
        return bundle, batch

    datamanager.next_train = recording_draw

    def write_state(step: int) -> None:
        torch.save(snapshot(trainer), probe / f"rank{global_rank}_step{step}.pt")

    trainer.callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], write_state,
                                              iters=tuple(steps)))
    trainer.train()


def equivalence_worker(rank: int, world_size: int, dist_url: str, out: str, rays: int, with_instances: bool) -> None:
    """One SGD step of the test model on this rank's share of a fixed batch, through DDP (gloo)."""
    from test_distributed import one_step

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=dist_url, world_size=world_size, rank=rank,
                            timeout=timedelta(minutes=5))
    try:
        params = one_step(rays, part=(rank, world_size), with_instances=with_instances)
        torch.save(params, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()
