"""nerfstudio's Trainer with two repairs for this method: resuming after grid upsampling, and clear input errors.

Resuming: nerfstudio builds the optimisers before it loads a checkpoint, and loading regrows the VM grids to the
checkpoint's size (``PanopticLiftingModel.update_to_step``), which makes new Parameter objects. The optimiser would
keep the old ones (and load the checkpoint's Adam state into them), so the grids would silently stop learning.
After loading, :func:`rebind_param_groups` points every optimiser at the model's current parameters and moves
each old tensor's state (Adam's moments and step count, as loaded from the checkpoint) to its replacement.

Errors: bad input found while ``ns-train`` sets up (label files, transforms.json, a checkpoint that cannot be
loaded) is printed as one line naming the file, and the process exits with code 2, as the ``plift-*`` commands do.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Dict, List, Literal, Optional

from nerfstudio.engine.optimizers import Optimizers
from nerfstudio.engine.trainer import Trainer
from nerfstudio.utils.rich_utils import CONSOLE
from torch.nn import Parameter

from plift_nerfstudio.errors import BAD_INPUT_EXIT_CODE, CheckpointError, UserFileError


def rebind_param_groups(optimizers: Optimizers, param_groups: Dict[str, List[Parameter]]) -> List[str]:
    """Point each group's optimiser at ``param_groups[name]`` (same order and shapes), keeping its state.

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


def checkpoint_to_load(load_dir: Optional[Path], load_step: Optional[int], load_checkpoint: Optional[Path]) -> Optional[Path]:
    """The checkpoint file nerfstudio's Trainer will load for these options (None: training from scratch).

    Raises CheckpointError naming the folder or file when there is none to load.
    """
    if load_dir is not None:
        load_dir = Path(load_dir)
        if not load_dir.is_dir():
            raise CheckpointError(load_dir, "--load-dir is not a folder of checkpoints")
        steps = sorted(checkpoint_steps(load_dir))
        if not steps:
            raise CheckpointError(load_dir, "--load-dir holds no checkpoint (step-NNNNNNNNN.ckpt)")
        step = load_step if load_step is not None else steps[-1]
        path = load_dir / f"step-{step:09d}.ckpt"
        if not path.is_file():
            raise CheckpointError(path, f"no such checkpoint (--load-step {step}); this folder has steps {steps}")
        return path
    if load_checkpoint is not None:
        if not Path(load_checkpoint).is_file():
            raise CheckpointError(load_checkpoint, "--load-checkpoint does not exist")
        return Path(load_checkpoint)
    return None


def checkpoint_steps(folder: Path) -> List[int]:
    """Steps of the ``step-NNNNNNNNN.ckpt`` files in ``folder`` (other files are ignored)."""
    steps = []
    for name in os.listdir(folder):
        stem, ext = os.path.splitext(name)
        if ext == ".ckpt" and stem.startswith("step-") and stem[5:].isdigit():
            steps.append(int(stem[5:]))
    return steps


CHECKPOINT_LOAD_ERRORS = (RuntimeError, EOFError, OSError, KeyError, ValueError, pickle.UnpicklingError)
"""What torch.load and nerfstudio's loading raise for a truncated, foreign or mismatched checkpoint."""


def unloadable_checkpoint(path: Path, err: Exception) -> CheckpointError:
    """The error for a checkpoint that exists but cannot be loaded, with the other checkpoints beside it."""
    unreadable = isinstance(err, (EOFError, pickle.UnpicklingError)) or "PytorchStreamReader" in str(err)
    why = ("it is truncated or not a checkpoint (a run killed while saving leaves such a file)" if unreadable
           else "it does not fit this run's model")
    others = sorted(s for s in checkpoint_steps(path.parent) if path.name != f"step-{s:09d}.ckpt")
    hint = (f"other checkpoints in its folder: steps {others} (choose one with --load-step)" if others
            else "there is no other checkpoint in its folder")
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return CheckpointError(path, f"cannot be loaded: {why} ({type(err).__name__}: {first_line[:300]}); {hint}. "
                                 "Nothing was changed.")


class PanopticTrainer(Trainer):
    """Trainer whose resumed optimisers hold the model's regrown grids; bad input exits with code 2."""

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        try:
            super().setup(test_mode)
        except UserFileError as err:
            CONSOLE.print(f"[bold red]ns-train: {err}")
            raise SystemExit(BAD_INPUT_EXIT_CODE) from err

    def _load_checkpoint(self) -> None:
        config = self.config
        path = checkpoint_to_load(config.load_dir, config.load_step, config.load_checkpoint)
        try:
            super()._load_checkpoint()
        except CHECKPOINT_LOAD_ERRORS as err:
            if path is None or isinstance(err, UserFileError):
                raise
            raise unloadable_checkpoint(path, err) from err
        if path is not None:
            rebound = rebind_param_groups(self.optimizers, self.pipeline.get_param_groups())
            if rebound:
                CONSOLE.print(f"[dim]optimisers of {', '.join(rebound)} now hold the checkpoint's regrown tensors")
