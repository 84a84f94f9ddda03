"""Effects of 2D panoptic networks that both label noise models apply (``procedural/noise.py``,
``realistic/label_noise.py``)."""

from __future__ import annotations

from typing import List

import numpy as np
from jaxtyping import Bool


def split_in_two(mask: Bool[np.ndarray, "H W"], rng: np.random.Generator) -> List[Bool[np.ndarray, "H W"]]:
    """A large thing segment predicted as two: ``mask`` cut by a line through its centroid at a random angle."""
    ys, xs = np.nonzero(mask)
    angle = rng.uniform(0, np.pi)
    side = (xs - xs.mean()) * np.cos(angle) + (ys - ys.mean()) * np.sin(angle) > 0
    first = np.zeros_like(mask)
    first[ys[side], xs[side]] = True
    return [first, mask & ~first]
