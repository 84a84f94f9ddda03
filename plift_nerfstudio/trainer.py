"""nerfstudio's Trainer with two repairs for this method: resuming after grid upsampling, and clear input errors.

Resuming: nerfstudio builds the optimisers before it loads a checkpoint, and loading regrows the VM grids to the
checkpoint's size (``PanopticLiftingModel.update_to_step``), which makes new Parameter objects. The optimiser would
keep the old ones (and load the checkpoint's Adam state into them), so the grids would silently stop learning.
After loading, ``model_components.grid_schedule.rebind_param_groups`` points every optimiser at the model's current
parameters and moves each old tensor's state (Adam's moments and step count, as loaded from the checkpoint) to its
replacement. In distributed training the pipeline then wraps the regrown model again.

Errors: bad input found while ``ns-train`` sets up (label files, transforms.json, a checkpoint that cannot be
loaded) is printed as one line naming the file, and the process exits with code 2, as the ``plift-*`` commands do.
"""

from __future__ import annotations

from typing import Literal

from nerfstudio.engine.trainer import Trainer
from nerfstudio.utils.rich_utils import CONSOLE

from plift_nerfstudio.cli.runner import print_user_error
from plift_nerfstudio.core.errors import BAD_INPUT_EXIT_CODE, UserFileError
from plift_nerfstudio.model_components.grid_schedule import rebind_param_groups
from plift_nerfstudio.core.runs import CHECKPOINT_LOAD_ERRORS, checkpoint_to_load, unloadable_checkpoint


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
            # distributed training: the DDP wrapper was built over the tensors the checkpoint replaced
            sync_replicas = getattr(self.pipeline, "sync_replicas", None)
            if sync_replicas is not None:
                sync_replicas()
