"""Labelled surface points of a trained scene: pixel-lattice rays of the training views, each ray that stops on a
surface (accumulation above ``min_accumulation``) gives the point at its median depth with the colour, class and
surrogate id the renders show there and their probabilities. Only what the cameras saw is exported: the inside of
walls and furniture (solid, but with classes nobody trained) and fog (low accumulation) stay out."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Optional

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras

from plift_nerfstudio.model_components.marching import pixel_lattice


@dataclass
class SurfacePoints:
    """N labelled points, model frame unless said otherwise."""

    positions: np.ndarray  # [N, 3] float64
    colours: np.ndarray  # [N, 3] float32 in [0, 1]
    class_id: np.ndarray  # [N] int64, 1..C
    class_prob: np.ndarray  # [N] float32: the rendered probability of class_id
    instance_id: np.ndarray  # [N] int64, 1..K for things, 0 for stuff
    instance_prob: np.ndarray  # [N] float32: the rendered probability of the surrogate id (0 for stuff)
    camera_index: np.ndarray  # [N] int64: the training view the point was seen from
    pixel: np.ndarray  # [N, 2] int64: (row, column) of its ray in that view

    def __len__(self) -> int:
        return len(self.positions)

    def subset(self, index: np.ndarray) -> "SurfacePoints":
        """The points selected by a boolean mask or an index array."""
        return SurfacePoints(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concatenate(parts: "list[SurfacePoints]") -> "SurfacePoints":
        return SurfacePoints(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(SurfacePoints)})


@torch.no_grad()
def render_surface_points(
    model,
    cameras: Cameras,
    num_rays: int,
    min_accumulation: float = 0.9,
    seed: int = 0,
    chunk: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> SurfacePoints:
    """Surface points from about ``num_rays`` rays on a pixel lattice over all ``cameras`` (the model's edits, if
    any, apply). ``progress(done, total)`` is called after each chunk of rays."""
    camera_index, coords = pixel_lattice(cameras, num_rays, seed)
    device = model.device
    cameras = cameras.to(device)
    chunk = chunk or model.config.eval_num_rays_per_chunk
    was_training = model.training
    model.eval()
    parts = []
    try:
        for start in range(0, len(camera_index), chunk):
            index = camera_index[start : start + chunk]
            pixel = coords[start : start + chunk]
            bundle = cameras.generate_rays(camera_indices=index[:, None].to(device), coords=pixel.to(device))
            out = model.render_surface(bundle)
            accumulation = out["accumulation"][:, 0]
            hit = (accumulation >= min_accumulation) & (out["semantic_id"] > 0)
            class_id, instance_id = out["semantic_id"][hit], out["instance_id"][hit]
            acc = accumulation[hit].clamp_min(1e-6)
            class_prob = out["semantic_probs"][hit].gather(1, (class_id - 1)[:, None])[:, 0] / acc
            instance_prob = out["instance_probs"][hit].gather(1, (instance_id - 1).clamp_min(0)[:, None])[:, 0] / acc
            instance_prob = torch.where(instance_id > 0, instance_prob, torch.zeros_like(instance_prob))
            positions = bundle.origins[hit] + bundle.directions[hit] * out["depth_median"][hit]
            parts.append(SurfacePoints(
                positions=positions.double().cpu().numpy(),
                colours=out["rgb"][hit].clamp(0, 1).float().cpu().numpy(),
                class_id=class_id.cpu().numpy().astype(np.int64),
                class_prob=class_prob.clamp(0, 1).float().cpu().numpy(),
                instance_id=instance_id.cpu().numpy().astype(np.int64),
                instance_prob=instance_prob.clamp(0, 1).float().cpu().numpy(),
                camera_index=index[hit.cpu()].numpy().astype(np.int64),
                pixel=pixel[hit.cpu()].floor().long().numpy(),
            ))
            if progress is not None:
                progress(min(start + chunk, len(camera_index)), len(camera_index))
    finally:
        model.train(was_training)
    return SurfacePoints.concatenate(parts)
