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

from typing import Dict, List, Literal

from nerfstudio.engine.optimizers import Optimizers
from nerfstudio.engine.trainer import Trainer
from nerfstudio.utils.rich_utils import CONSOLE
from torch.nn import Parameter

from plift_nerfstudio.cli_utils import print_user_error
from plift_nerfstudio.errors import BAD_INPUT_EXIT_CODE, UserFileError
from plift_nerfstudio.runs import CHECKPOINT_LOAD_ERRORS, checkpoint_to_load, unloadable_checkpoint


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


class PanopticTrainer(Trainer):
    """Trainer whose resumed optimisers hold the model's regrown grids; bad input exits with code 2."""

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        try:
            super().setup(test_mode)
        except UserFileError as err:
            print_user_error("ns-train", err)
            raise SystemExit(BAD_INPUT_EXIT_CODE) from err

    def _load_checkpoint(self) -> None:
        config = self.config
        path = checkpoint_to_load(config.load_dir, config.load_step, config.load_checkpoint)
        try:
            super()._load_checkpoint()
        except CHECKPOINT_LOAD_ERRORS as err:
            if path is None or isinstance(err, UserFileError):
                raise
            raise unloadable_checkpoint(path, err, choose=" (choose one with --load-step)") from err
        if path is not None:
            rebound = rebind_param_groups(self.optimizers, self.pipeline.get_param_groups())
            if rebound:
                CONSOLE.print(f"[dim]optimisers of {', '.join(rebound)} now hold the checkpoint's regrown tensors")
