"""Training on several processes (GPUs, machines, or CPU processes for tests) with DistributedDataParallel.

``ns-train panoptic-lifting --machine.num-devices N`` spawns one process per GPU (nerfstudio's launcher, NCCL), seeds
each with ``seed + rank`` and builds the pipeline with ``world_size`` and ``local_rank``. The pipeline
(:class:`plift_nerfstudio.pipeline.PanopticPipeline`) wraps the model here, not in nerfstudio's ``VanillaPipeline``,
because this model changes its own structure while it trains. What is kept identical on every rank, and how:

- **Parameters and optimiser state**: DDP averages the gradients of every parameter across ranks in the backward
  pass; identical gradients give identical Adam steps and moments.
- **Replaced parameters** (grid upsampling, the box shrink's resampled grids, grids regrown when a checkpoint is
  loaded): DDP holds the tensors it was built over, so the wrapper is built again over the new ones
  (:meth:`Replicas.after_step`), which also copies rank 0's values to every rank. The grid optimiser is rebuilt
  empty on every rank at the same step.
- **Space skipping** (occupancy grid, visibility, scene box): each rank computes them from its own random points and
  rays; rank 0's result is then broadcast to every rank (rank 0's view of space wins), after every update. DDP's
  own per-forward buffer broadcast is off (it would send the occupancy grid every step, and make a forward on one
  rank alone, as evaluation does, wait for the others).
- **Rays are not shared**: each rank draws its own scene-wide rays, its own single image (with its thing rays: the
  linear assignment runs per rank on its own image, as the paper does per batch) and its own sparse-depth rays.
  With N ranks a step sees N times the rays and N single images.

Checkpoints, evaluation images and the viewer are rank 0's (nerfstudio's ``check_main_thread``); a checkpoint of a
distributed run loads in one process.

nerfstudio 1.1.5's launcher asserts CUDA, and its pipeline passes ``device_ids=[local_rank]`` to DDP, which a CPU
module refuses. :func:`launch` mirrors nerfstudio's launcher with the gloo backend where CUDA is missing (tests, and
CPU machines), and hands over to nerfstudio's own otherwise.
"""

from __future__ import annotations

import gc
import inspect
import os
from datetime import timedelta
from typing import Any, Callable, List, Literal, Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

DEFAULT_TIMEOUT = timedelta(minutes=30)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def wrap_model(model: nn.Module) -> DDP:
    """``model`` in DDP: ``device_ids`` only for a CUDA module (a CPU module refuses them), unused parameters allowed
    (a head without a loss yet), no per-forward buffer broadcast (see the module docstring); rank 0's parameters
    and buffers are copied to every rank."""
    device = next(model.parameters()).device
    device_ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    no_forward_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
                       else {"broadcast_buffers": False})  # torch renamed it (2.14 warns about the old name)
    wrapped = DDP(model, device_ids=device_ids, find_unused_parameters=True, **no_forward_sync)
    broadcast_buffers(model)
    return wrapped


@torch.no_grad()
def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (occupancy grid, visibility, scene box, ...) to every rank, in place."""
    for buffer in module.buffers():
        dist.broadcast(buffer, src)


class Replicas:
    """Keeps a DDP-wrapped model's replicas identical through the model's own structure changes.

    ``structure_version`` (an int the model bumps whenever it changes its space-skipping state) and the identity of
    its parameters are checked after every training step: replaced parameters get a new wrapper, other changes a
    buffer broadcast from rank 0."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.wrapper: Optional[DDP] = None
        self._wrapped_ids: List[int] = []
        self._version = -1

    def wrap(self) -> DDP:
        if self.wrapper is not None:  # drop the old reducer (and its hooks on the parameters that stay) first
            self.wrapper = None
            gc.collect()
        self.wrapper = wrap_model(self.model)
        self._wrapped_ids = [id(p) for p in self.model.parameters()]
        self._version = getattr(self.model, "structure_version", 0)
        return self.wrapper

    def parameters_replaced(self) -> bool:
        return [id(p) for p in self.model.parameters()] != self._wrapped_ids

    def after_step(self) -> Optional[DDP]:
        """A new wrapper when parameters were replaced (None otherwise); buffers broadcast when the model's
        structure changed. Every rank must call it at the same step."""
        if self.parameters_replaced():
            return self.wrap()
        version = getattr(self.model, "structure_version", 0)
        if version != self._version:
            broadcast_buffers(self.model)
            self._version = version
        return None


# ---------------------------------------------------------------------------------------------------- launcher
def _distributed_worker(
    local_rank: int,
    main_func: Callable,
    world_size: int,
    num_devices_per_machine: int,
    machine_rank: int,
    dist_url: str,
    config: Any,
    timeout: timedelta = DEFAULT_TIMEOUT,
    threads_per_process: int = 1,
) -> Any:
    """nerfstudio's ``_distributed_worker`` (``nerfstudio/scripts/train.py``) for CPU processes: gloo instead of
    NCCL, no CUDA asserts, and each process limited to its share of the CPU threads (two processes with all threads
    each thrash)."""
    from nerfstudio.utils import comms

    torch.set_num_threads(threads_per_process)
    global_rank = machine_rank * num_devices_per_machine + local_rank
    dist.init_process_group(backend="gloo", init_method=dist_url, world_size=world_size, rank=global_rank,
                            timeout=timeout)
    assert comms.LOCAL_PROCESS_GROUP is None
    num_machines = world_size // num_devices_per_machine
    for i in range(num_machines):
        ranks_on_i = list(range(i * num_devices_per_machine, (i + 1) * num_devices_per_machine))
        group = dist.new_group(ranks_on_i)
        if i == machine_rank:
            comms.LOCAL_PROCESS_GROUP = group
    try:
        return main_func(local_rank, world_size, config, global_rank)
    finally:
        comms.synchronize()
        dist.destroy_process_group()


def launch(
    main_func: Callable,
    num_devices_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str = "auto",
    config: Any = None,
    timeout: timedelta = DEFAULT_TIMEOUT,
    device_type: Literal["cpu", "cuda", "mps"] = "cuda",
) -> None:
    """nerfstudio's ``launch`` where CUDA is used; CPU processes with the gloo backend otherwise.

    ``main_func(local_rank, world_size, config, global_rank)`` runs in each process (nerfstudio's ``train_loop``
    for training). A failure in any process raises here."""
    if device_type == "cuda":
        from nerfstudio.scripts.train import launch as nerfstudio_launch

        nerfstudio_launch(main_func, num_devices_per_machine, num_machines, machine_rank, dist_url, config, timeout,
                          device_type)
        return
    world_size = num_machines * num_devices_per_machine
    if world_size < 1:
        raise ValueError("world_size cannot be 0")
    if world_size == 1:
        main_func(0, 1, config, 0)
        return
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError("dist_url=auto is for one machine; give --machine.dist-url tcp://<host>:<port>")
        from nerfstudio.scripts.train import _find_free_port

        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cpus // num_devices_per_machine)
    mp.spawn(_distributed_worker, nprocs=num_devices_per_machine, join=True,
             args=(main_func, world_size, num_devices_per_machine, machine_rank, dist_url, config, timeout, threads))


def train(config: Any) -> None:
    """What ``ns-train`` does with a TrainerConfig, through :func:`launch` (so it also runs several CPU processes)."""
    from nerfstudio.scripts.train import train_loop

    config.set_timestamp()
    config.save_config()
    launch(train_loop, config.machine.num_devices, config.machine.num_machines, config.machine.machine_rank,
           config.machine.dist_url, config, device_type=config.machine.device_type)
