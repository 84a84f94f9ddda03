"""Finding and loading a trained run's checkpoint, with errors that name the file (config.yml, checkpoint).

nerfstudio picks the newest ``step-NNNNNNNNN.ckpt`` of a run's checkpoint folder (or the one ``--load-step``
names); a missing folder, an empty one or a file that ``torch.load`` cannot read would otherwise stop with an
assertion, an IndexError or a zip-reader message that names nothing.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import List, Literal, Optional, Tuple

import torch

from plift_nerfstudio.core.errors import CheckpointError

CHECKPOINT_LOAD_ERRORS = (RuntimeError, EOFError, OSError, KeyError, ValueError, pickle.UnpicklingError)
"""What torch.load and nerfstudio's loading raise for a truncated, foreign or mismatched checkpoint."""


def checkpoint_steps(folder: Path) -> List[int]:
    """Steps of the ``step-NNNNNNNNN.ckpt`` files in ``folder`` (other files are ignored)."""
    steps = []
    for name in os.listdir(folder):
        stem, ext = os.path.splitext(name)
        if ext == ".ckpt" and stem.startswith("step-") and stem[5:].isdigit():
            steps.append(int(stem[5:]))
    return sorted(steps)


def checkpoint_to_load(load_dir: Optional[Path], load_step: Optional[int], load_checkpoint: Optional[Path]) -> Optional[Path]:
    """The checkpoint file nerfstudio loads for these options (None: none asked for, training from scratch).

    Raises CheckpointError naming the folder or file when there is none to load.
    """
    if load_dir is not None:
        load_dir = Path(load_dir)
        if not load_dir.is_dir():
            raise CheckpointError(load_dir, "is not a folder of checkpoints (a run's nerfstudio_models/)")
        steps = checkpoint_steps(load_dir)
        if not steps:
            raise CheckpointError(load_dir, "holds no checkpoint (step-NNNNNNNNN.ckpt): did the run save one?")
        step = load_step if load_step is not None else steps[-1]
        path = load_dir / f"step-{step:09d}.ckpt"
        if not path.is_file():
            raise CheckpointError(path, f"no such checkpoint (step {step}); this folder has steps {steps}")
        return path
    if load_checkpoint is not None:
        if not Path(load_checkpoint).is_file():
            raise CheckpointError(load_checkpoint, "checkpoint does not exist")
        return Path(load_checkpoint)
    return None


def unloadable_checkpoint(path: Path, err: Exception, choose: str = "") -> CheckpointError:
    """The error for a checkpoint that exists but cannot be loaded, with the other checkpoints beside it."""
    unreadable = isinstance(err, (EOFError, pickle.UnpicklingError)) or "PytorchStreamReader" in str(err)
    why = ("it is truncated or not a checkpoint (a run killed while saving leaves such a file)" if unreadable
           else "it does not fit this run's model")
    others = [s for s in checkpoint_steps(path.parent) if path.name != f"step-{s:09d}.ckpt"]
    hint = f"other checkpoints in its folder: steps {others}{choose}" if others else "no other checkpoint is in its folder"
    message = str(err).strip()
    first_line = message.splitlines()[0][:300] if message else ""
    return CheckpointError(path, f"cannot be loaded: {why} ({type(err).__name__}: {first_line}); {hint}. "
                                 "Nothing was changed.")


def load_trained_pipeline(config_path: Path, test_mode: Literal["test", "val", "inference"] = "test") -> Tuple:
    """nerfstudio's ``eval_setup`` for a run's config.yml: (config, pipeline, checkpoint path, step), with a bad
    config, a run without a checkpoint or an unreadable checkpoint refused by a CheckpointError naming the file."""
    import yaml
    from nerfstudio.engine.trainer import TrainerConfig
    from nerfstudio.utils.eval_utils import eval_setup

    config_path = Path(config_path)
    if not config_path.is_file():
        raise CheckpointError(config_path, "run config does not exist (give a run's config.yml with --load-config)")
    try:
        config = yaml.load(config_path.read_text(), Loader=yaml.Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError, ImportError) as err:
        raise CheckpointError(config_path, f"is not a readable run config ({type(err).__name__}: {err})") from None
    if not isinstance(config, TrainerConfig):
        raise CheckpointError(config_path, "is not a nerfstudio run config (the config.yml ns-train writes)")
    checkpoint = checkpoint_to_load(config.get_checkpoint_dir(), None, None)
    assert checkpoint is not None
    try:
        torch.load(checkpoint, map_location="cpu")
    except CHECKPOINT_LOAD_ERRORS as err:
        raise unloadable_checkpoint(checkpoint, err) from None
    try:
        return eval_setup(config_path, test_mode=test_mode)
    except RuntimeError as err:
        if "state_dict" in str(err):
            raise unloadable_checkpoint(checkpoint, err) from None
        raise
