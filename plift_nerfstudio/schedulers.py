"""Learning-rate schedule whose state holds plain Python floats.

nerfstudio's ExponentialDecayScheduler computes rates with numpy, so checkpoints hold numpy scalars, and with
torch >= 2.6 (``torch.load(weights_only=True)`` by default) ``ns-render``, ``ns-eval`` and ``ns-viewer`` refuse to
load them. This schedule decays log-linearly from the initial rate to ``lr_final`` in ``max_steps`` with floats only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Type

from nerfstudio.engine.schedulers import Scheduler, SchedulerConfig
from torch.optim import Optimizer, lr_scheduler


@dataclass
class FloatExponentialDecaySchedulerConfig(SchedulerConfig):
    """Exponential decay from the optimiser's rate to lr_final over max_steps (then constant)."""

    _target: Type = field(default_factory=lambda: FloatExponentialDecayScheduler)
    lr_final: float = 1e-4
    """Learning rate reached at max_steps."""
    max_steps: int = 30000
    """Steps over which the rate decays."""


def decay_factor(step: int, lr_init: float, lr_final: float, max_steps: int) -> float:
    """Multiplier of the initial rate at ``step`` (1 at step 0, lr_final / lr_init from max_steps on)."""
    progress = min(max(step, 0) / max(max_steps, 1), 1.0)
    return float((lr_final / lr_init) ** progress)


class FloatExponentialDecayScheduler(Scheduler):
    config: FloatExponentialDecaySchedulerConfig

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> lr_scheduler.LRScheduler:
        cfg = self.config
        return lr_scheduler.LambdaLR(optimizer, lambda step: decay_factor(step, lr_init, cfg.lr_final, cfg.max_steps))
