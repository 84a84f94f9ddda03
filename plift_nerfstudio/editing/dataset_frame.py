"""The dataset's frame (transforms.json) and nerfstudio's model frame: ``x_model = scale * (R x + t)``.

nerfstudio's dataparser centres and orients the poses (``dataparser_transform``, 3x4) and scales them
(``dataparser_scale``); edit lists and exports are in the dataset's frame so that they line up with the user's poses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DatasetFrame:
    transform: np.ndarray  # [3, 4] dataparser transform
    scale: float = 1.0

    @classmethod
    def identity(cls) -> "DatasetFrame":
        return cls(np.eye(4)[:3], 1.0)

    @property
    def model_from_dataset(self) -> np.ndarray:
        """4x4 matrix of the map dataset -> model."""
        out = np.eye(4)
        out[:3] = np.asarray(self.transform, dtype=np.float64)
        out[:3] *= self.scale
        return out

    def points_to_model(self, points: np.ndarray) -> np.ndarray:
        m = self.model_from_dataset
        return np.asarray(points, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]

    def points_to_dataset(self, points: np.ndarray) -> np.ndarray:
        m = np.linalg.inv(self.model_from_dataset)
        return np.asarray(points, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]

    def matrix_to_model(self, dataset_matrix: np.ndarray) -> np.ndarray:
        """A 4x4 map of dataset-frame points, expressed on model-frame points."""
        m = self.model_from_dataset
        return m @ dataset_matrix @ np.linalg.inv(m)

    def model_up_in_dataset(self) -> np.ndarray:
        """The dataset-frame direction that is +z (up in nerfstudio's viewer) in the model frame."""
        rotation = np.asarray(self.transform, dtype=np.float64)[:, :3]
        up = rotation.T @ np.array([0.0, 0.0, 1.0])
        return up / np.linalg.norm(up)
