"""How the VM grids grow during training, and the optimisers that must follow them.

The grids start at ``init_resolution`` voxels per side and are upsampled after each of ``upsampling_iters`` to
log-spaced resolutions up to ``final_resolution`` (TensoRF's schedule). Upsampling (and the box shrink, which
resamples the grids) makes new Parameter objects: the optimiser of the ``encodings`` group is then built again over
them (:func:`rebuild_grid_optimiser`), and a resumed run's optimisers, built before the checkpoint regrew the grids,
are pointed at the regrown tensors with their loaded state (:func:`rebind_param_groups`). With
``samples_follow_resolution`` the samples per ray and the cap on shaded samples grow with the grids.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.engine.optimizers import Optimizers
from nerfstudio.utils.rich_utils import CONSOLE
from torch.nn import Parameter


def upsampling_resolutions(init_resolution: int, final_resolution: int, num_upsamples: int) -> List[int]:
    """Log-spaced grid resolutions reached after each upsampling step."""
    res = np.exp(np.linspace(np.log(init_resolution), np.log(final_resolution), num_upsamples + 1))
    return [int(r) for r in np.round(res)[1:]]


def resolution_at_step(config, step: int) -> int:
    """Grid resolution (of a model ``config``) after the upsamplings done at or before ``step``."""
    done = sum(1 for it in config.upsampling_iters if it <= step)
    if done == 0:
        return config.init_resolution
    return upsampling_resolutions(config.init_resolution, config.final_resolution, len(config.upsampling_iters))[
        done - 1
    ]


def samples_at_resolution(
    num_samples: int, max_kept: int, resolution: int, final_resolution: int
) -> Tuple[int, int]:
    """(samples per ray, cap on shaded samples) at grid ``resolution`` when both are set for ``final_resolution``
    and scale with the voxel size; a cap of 0 (no cap) stays 0."""
    share = min(resolution / final_resolution, 1.0)
    samples = max(8, round(num_samples * share))
    kept = max(1, round(max_kept * share)) if max_kept > 0 else 0
    return samples, kept


def set_sample_counts(model) -> None:
    """Samples per ray and the shaded-sample cap of ``model`` for its grids' current resolution
    (``samples_follow_resolution``; otherwise the configured counts)."""
    cfg = model.config
    if not cfg.samples_follow_resolution:
        return
    model.sampler.num_samples, model.max_kept_samples = samples_at_resolution(
        cfg.num_samples, cfg.max_kept_samples_per_ray, model.field.grid_resolution, cfg.final_resolution
    )


def update_to_step(model, step: int) -> None:
    """Grow ``model``'s grids to the size they had at ``step`` (before a checkpoint of that step is loaded)."""
    model.step = step
    resolution = resolution_at_step(model.config, step)
    if resolution != model.field.grid_resolution:
        model.field.upsample_grids(resolution)
    set_sample_counts(model)


def rebuild_grid_optimiser(attributes: TrainingCallbackAttributes) -> None:
    """Build the ``encodings`` optimiser (and its scheduler) again over the pipeline's current grid tensors."""
    optimizers, pipeline = attributes.optimizers, attributes.pipeline
    assert optimizers is not None and pipeline is not None
    group = optimizers.config["encodings"]
    params = pipeline.get_param_groups()["encodings"]
    optimizers.optimizers["encodings"] = group["optimizer"].setup(params=params)
    optimizers.parameters["encodings"] = params
    if group["scheduler"]:
        optimizers.schedulers["encodings"] = (
            group["scheduler"].setup().get_scheduler(optimizer=optimizers.optimizers["encodings"], lr_init=group["optimizer"].lr)
        )


def upsampling_callback(model, attributes: TrainingCallbackAttributes) -> TrainingCallback:
    """After each of ``upsampling_iters``: upsample the grids, set the sample counts, rebuild the grid optimiser."""

    def upsample(step: int) -> None:
        model.field.upsample_grids(resolution_at_step(model.config, step))
        model.structure_version += 1
        set_sample_counts(model)
        rebuild_grid_optimiser(attributes)
        counts = (f", {model.sampler.num_samples} samples per ray, at most {model.max_kept_samples} shaded"
                  if model.config.samples_follow_resolution else "")
        CONSOLE.print(f"[dim]step {step}: grids upsampled to {model.field.grid_resolution}^3{counts}")

    return TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], upsample,
                            iters=tuple(model.config.upsampling_iters))


def rebind_param_groups(optimizers: Optimizers, param_groups: Dict[str, List[Parameter]]) -> List[str]:
    """Point each group's optimiser at ``param_groups[name]`` (same order and shapes), keeping its state: each old
    tensor's state (Adam's moments and step count, as loaded from a checkpoint) moves to its replacement.

    Returns the names of the groups whose tensors had been replaced.
    """
    rebound = []
    for name, params in param_groups.items():
        optimizer = optimizers.optimizers[name]
        held = [p for group in optimizer.param_groups for p in group["params"]]
        if [id(p) for p in held] == [id(p) for p in params]:
            continue
        if len(held) != len(params):
            raise RuntimeError(f"optimiser '{name}' holds {len(held)} tensors, the model has {len(params)}")
        replacement = {id(old): new for old, new in zip(held, params)}
        for old, new in zip(held, params):
            state = optimizer.state.pop(old, None)
            if state is None:
                continue
            for key, value in state.items():
                if getattr(value, "dim", lambda: 0)() > 0 and value.shape != new.shape:
                    raise RuntimeError(f"optimiser '{name}': state '{key}' of shape {tuple(value.shape)} does not fit "
                                       f"the model's tensor of shape {tuple(new.shape)}")
            optimizer.state[new] = state
        for group in optimizer.param_groups:
            group["params"] = [replacement[id(p)] for p in group["params"]]
        optimizers.parameters[name] = list(params)
        rebound.append(name)
    return rebound
