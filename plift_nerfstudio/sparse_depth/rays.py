"""Training rays through triangulated points, each with the distance at which it should end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch
from jaxtyping import Float, Int
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from torch import Tensor

from plift_nerfstudio.sparse_depth.points import SparseDepthPoints


@dataclass
class SparseDepthRays:
    """Observations of triangulated points by training cameras, in nerfstudio's frame, ready to sample."""

    cameras: Cameras
    camera_index: Int[Tensor, "M"]
    pixel_yx: Float[Tensor, "M 2"]  # in the training images' (maybe downscaled) pixels, top-left corner at 0
    point: Float[Tensor, "M 3"]  # nerfstudio's frame (dataparser transform and scale applied)

    @property
    def num_observations(self) -> int:
        return len(self.camera_index)

    @classmethod
    def build(
        cls,
        points: SparseDepthPoints,
        camera_of_frame: Int[np.ndarray, "F"],
        cameras: Cameras,
        dataparser_transform: Float[Tensor, "3 4"],
        dataparser_scale: float,
        full_widths: Float[np.ndarray, "C"],
        device: torch.device | str = "cpu",
    ) -> "SparseDepthRays":
        """``camera_of_frame``: the training camera of each of the file's frames (-1: not a training image, its
        observations are dropped); ``full_widths``: each camera's image width in the pixels the points file uses
        (transforms.json's), so observations follow a dataparser's downscaling."""
        camera = camera_of_frame[points.observation_frame]
        used = camera >= 0
        camera = camera[used]
        scale_to_image = cameras.width.flatten().numpy()[camera] / np.asarray(full_widths, dtype=np.float64)[camera]
        uv = points.observation_uv[used] * scale_to_image[:, None]
        transform = dataparser_transform.double().cpu().numpy()
        xyz = points.points_xyz[points.observation_point[used]]
        in_nerfstudio = dataparser_scale * (xyz @ transform[:3, :3].T + transform[:3, 3])
        return cls(
            cameras=cameras.to(device),
            camera_index=torch.as_tensor(camera, dtype=torch.long, device=device),
            pixel_yx=torch.as_tensor(uv[:, ::-1].copy(), dtype=torch.float32, device=device),
            point=torch.as_tensor(in_nerfstudio, dtype=torch.float32, device=device),
        )

    def sample(self, count: int, generator: Optional[torch.Generator] = None) -> Tuple[RayBundle, Float[Tensor, "N"]]:
        """``count`` observations drawn uniformly (with replacement): their rays and the distance along each ray
        to its point."""
        if self.num_observations == 0:
            raise ValueError("the sparse depth file has no observation in a training image")
        chosen = torch.randint(self.num_observations, (count,), generator=generator).to(self.camera_index.device)
        return self.rays_of(chosen)

    def rays_of(self, chosen: Int[Tensor, "N"]) -> Tuple[RayBundle, Float[Tensor, "N"]]:
        """The rays of the observations ``chosen`` and the distance along each ray to its point."""
        rays = self.cameras.generate_rays(camera_indices=self.camera_index[chosen, None], coords=self.pixel_yx[chosen])
        distance = ((self.point[chosen] - rays.origins) * rays.directions).sum(-1)
        return rays, distance


def concatenate_ray_bundles(first: RayBundle, second: RayBundle) -> RayBundle:
    """One flat bundle with ``first``'s rays then ``second``'s (nears/fars are left to the collider)."""
    def cat(a: Optional[Tensor], b: Optional[Tensor]) -> Optional[Tensor]:
        if a is None and b is None:
            return None
        if a is None or b is None:
            raise ValueError("ray bundles differ in which fields they carry")
        return torch.cat([a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]).to(a.device)])

    metadata = {key: cat(first.metadata[key], second.metadata.get(key)) for key in first.metadata}
    return RayBundle(
        origins=cat(first.origins, second.origins),  # type: ignore[arg-type]
        directions=cat(first.directions, second.directions),  # type: ignore[arg-type]
        pixel_area=cat(first.pixel_area, second.pixel_area),  # type: ignore[arg-type]
        camera_indices=cat(first.camera_indices, second.camera_indices),
        times=cat(first.times, second.times),
        metadata=metadata,  # type: ignore[arg-type]
    )
