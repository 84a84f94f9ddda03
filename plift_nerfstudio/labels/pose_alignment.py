"""How far estimated camera centres are from the true ones, up to the similarity SfM cannot recover."""

from __future__ import annotations

import numpy as np
from jaxtyping import Float


def similarity_aligned_errors(
    estimated_n3: Float[np.ndarray, "N 3"], true_n3: Float[np.ndarray, "N 3"]
) -> Float[np.ndarray, "N"]:
    """Distance of each estimated point to its true point after the least-squares similarity (rotation, uniform
    scale, translation; Umeyama 1991) mapping the estimates onto the truth. Units: those of ``true_n3``."""
    est, true = np.asarray(estimated_n3, np.float64), np.asarray(true_n3, np.float64)
    if est.shape != true.shape or est.ndim != 2 or est.shape[1] != 3 or len(est) < 3:
        raise ValueError(f"need two [N, 3] arrays with N >= 3, got {est.shape} and {true.shape}")
    s, t = est - est.mean(0), true - true.mean(0)
    u, sigma, vt = np.linalg.svd(t.T @ s / len(s))
    reflect = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ reflect @ vt
    scale = np.trace(np.diag(sigma) @ reflect) / s.var(0).sum()
    return np.linalg.norm(scale * s @ rotation.T - t, axis=1)
