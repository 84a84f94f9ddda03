"""Distributed training on the CPU: two gloo processes through the project's launcher (nerfstudio's without its CUDA
asserts) stay bitwise identical through grid upsampling, the box shrink and the occupancy and visibility updates;
they draw different rays; only rank 0 writes checkpoints, and one process resumes from it to the same tensors.
One step on two ranks with B rays each equals one step of one process on the 2B rays for the RGB and semantic
losses."""

from __future__ import annotations

import functools
import socket
from pathlib import Path
from typing import Dict, Optional, Tuple

import pytest
import torch
import torch.multiprocessing as mp

from distributed_probe import equivalence_worker, probe_train_loop
from plift_nerfstudio.distributed import launch, wrap_model
from test_model import labelled_batch, make_model, random_rays
from test_resume import resume_config, set_up

STEPS = 32
# upsampling at 10 and 20, occupancy from 16 every 4 (visibility with it at 16), the box shrink at 24, the last step;
# each rank measures occupancy at its own random points, so only a broadcast keeps the grids equal
EVENTS = (0, 10, 16, 20, 24, 28, STEPS - 1)


def mismatches(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """Tensors that differ between two ranks' states, with the largest absolute difference (inf: shape or key)."""
    out = {}
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x is None or y is None or x.shape != y.shape:
            out[key] = float("inf")
        elif not torch.equal(x, y):
            out[key] = float((x.double() - y.double()).abs().max()) if x.is_floating_point() else float("inf")
    return out


def run_two_ranks(data: Path, root: Path, sync: bool = True) -> Path:
    config = resume_config(data, root / "outputs", STEPS)
    config.machine.num_devices, config.machine.device_type = 2, "cpu"
    probe = root / "probe"
    probe.mkdir(parents=True)
    launch(functools.partial(probe_train_loop, probe_dir=str(probe), steps=EVENTS, sync=sync), 2, config=config,
           device_type="cpu")
    return probe


@pytest.fixture(scope="module")
def two_rank_run(tiny_scene_dir: Path, tmp_path_factory) -> Tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("distributed")
    return run_two_ranks(tiny_scene_dir, root), root / "outputs", tiny_scene_dir


def state(probe: Path, rank: int, step: int) -> dict:
    return torch.load(probe / f"rank{rank}_step{step}.pt", weights_only=False)


def test_ranks_hold_identical_tensors_after_every_structure_change(two_rank_run) -> None:
    probe, _, _ = two_rank_run
    first = state(probe, 0, 0)["tensors"]
    for step in EVENTS:
        s0, s1 = state(probe, 0, step), state(probe, 1, step)
        assert not mismatches(s0["tensors"], s1["tensors"]), f"ranks differ after step {step}"
        assert s0["resolution"] == s1["resolution"]
    # the events happened: grids grew twice, the box shrank, cells were skipped, and Adam state exists throughout
    last = state(probe, 0, STEPS - 1)
    assert state(probe, 0, 0)["resolution"] < state(probe, 0, 10)["resolution"] < last["resolution"] == 32
    # the box shrink at 24 resampled the grids into new tensors (this small room fills its box, so the box stays):
    # the grid optimiser was built again there, its Adam step count restarted, while the MLPs' went on
    at_28 = state(probe, 0, 28)["tensors"]
    assert int(at_28["optimizer/encodings/0/step"]) == 4 and int(at_28["optimizer/fields/0/step"]) == 29
    assert bool((last["tensors"]["model/field.aabb"] == first["model/field.aabb"]).all())
    assert 0 < float(last["tensors"]["model/occupancy.occupied"].float().mean()) < 1
    assert not bool(state(probe, 0, 16)["tensors"]["model/occupancy.visible"].all())
    assert any(k.startswith("optimizer/encodings/") for k in last["tensors"])
    # and training went on between them: the MLPs moved
    heads = [k for k in first if k.startswith("model/field.semantic_head")]
    assert heads and all(not torch.equal(first[k], last["tensors"][k]) for k in heads)


def test_ranks_draw_their_own_rays(two_rank_run) -> None:
    probe, _, _ = two_rank_run
    r0, r1 = (torch.load(probe / f"rays_rank{r}.pt") for r in (0, 1))
    assert r0["indices"].shape == r1["indices"].shape
    assert not torch.equal(r0["indices"], r1["indices"])
    # the single image's rays (after the scene-wide ones) come from each rank's own image, or at least other pixels
    assert not torch.equal(r0["indices"][-64:], r1["indices"][-64:])


def test_only_rank_zero_writes_checkpoints_and_one_process_resumes_to_its_tensors(two_rank_run, tmp_path) -> None:
    probe, outputs, data = two_rank_run
    assert not list((outputs / "rank1").rglob("*.ckpt"))
    checkpoints = list((outputs / "rank0").rglob("*.ckpt"))
    assert [c.name for c in checkpoints] == [f"step-{STEPS - 1:09d}.ckpt"]
    config = resume_config(data, tmp_path / "resumed", 1)
    trainer = set_up(config, load_dir=checkpoints[0].parent)
    from distributed_probe import snapshot

    resumed = snapshot(trainer)["tensors"]
    final = state(probe, 0, STEPS - 1)["tensors"]
    assert not mismatches(final, resumed)


# ------------------------------------------------------------------------------------------ 1 rank vs 2 ranks
def one_step(rays: int, part: Optional[Tuple[int, int]] = None, with_instances: bool = False) -> Dict[str, torch.Tensor]:
    """One SGD step of a small model on a fixed batch of ``rays`` rays (all labelled, so each rank's semantic mean
    runs over as many rays as the other's); with ``part=(rank, world_size)`` on that rank's share through DDP."""
    torch.manual_seed(0)
    model = make_model(instance_loss_start_step=0 if with_instances else 10**6,
                       use_segment_consistency=False, instance_loss_mult=1.0)
    model.sampler.train_stratified = False  # no jitter: a ray's samples do not depend on the others in its batch
    model.train()
    torch.manual_seed(1)
    bundle = random_rays(rays)
    semantics = torch.randint(1, 21, (rays,))
    instances = torch.randint(1, 4, (rays,))
    batch = labelled_batch(semantics, instances, is_single_image_ray=torch.ones(rays, dtype=torch.bool)
                           if with_instances else torch.zeros(rays, dtype=torch.bool))
    if part is not None:
        rank, world = part
        share = slice(rank * rays // world, (rank + 1) * rays // world)
        bundle = bundle[share]
        batch = {k: v[share] for k, v in batch.items()}
    forward = wrap_model(model) if part is not None else model
    # plain SGD with lr 1: the update is the gradient itself (Adam's first step, g / |g|, would turn float rounding
    # of near-zero gradients into full-size steps of either sign)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    outputs = forward(bundle)
    losses = model.get_loss_dict(outputs, batch, model.get_metrics_dict(outputs, batch))
    sum(losses.values()).backward()
    optimizer.step()
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _two_rank_step(tmp_path: Path, rays: int, with_instances: bool) -> Dict[str, torch.Tensor]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(equivalence_worker, nprocs=2, join=True,
             args=(2, f"tcp://127.0.0.1:{port}", str(tmp_path), rays, with_instances))
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert not mismatches(r0, r1)
    return r0


def test_two_ranks_of_b_rays_step_like_one_process_of_2b_rays(tmp_path: Path) -> None:
    """RGB and semantic losses are means over rays: DDP's average of two halves' gradients is the whole batch's.
    The instance loss is not: each rank assigns surrogate ids on its own single image (two images, two linear
    assignments), so a step differs by construction from one assignment over both halves; the consistency loss
    likewise groups rays by the segments of one image."""
    rays = 128
    single = one_step(rays)
    two = _two_rank_step(tmp_path, rays, with_instances=False)
    torch.manual_seed(0)
    before = dict(make_model().named_parameters())
    moved = [k for k in single if not torch.equal(single[k], before[k])]
    assert any("encoding" in k for k in moved) and any("semantic" in k for k in moved) and any("color" in k for k in moved)
    for key in single:
        torch.testing.assert_close(two[key], single[key], rtol=1e-5, atol=1e-6, msg=lambda m: f"{key}: {m}")
