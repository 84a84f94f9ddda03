"""Timing for the benchmarks: each call timed alone (the device synchronised around it), the median reported."""

from __future__ import annotations

import statistics
import time
from typing import Callable, List, Optional

import torch


def synchronise(device: Optional[torch.device]) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; nothing to wait for on the CPU)."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_calls(fn: Callable[[], object], repeats: int, device: Optional[torch.device] = None,
                warm_up: bool = False) -> List[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` (after one untimed call with ``warm_up``)."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        synchronise(device)
        start = time.perf_counter()
        fn()
        synchronise(device)
        times.append(time.perf_counter() - start)
    return times


def median_seconds(fn: Callable[[], object], repeats: int, device: Optional[torch.device] = None,
                   warm_up: bool = False) -> float:
    """The median of :func:`timed_calls`."""
    return statistics.median(timed_calls(fn, repeats, device, warm_up))
