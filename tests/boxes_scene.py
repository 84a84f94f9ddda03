"""A hand-made field whose geometry is known exactly, for the editing tests: a floor, a back wall, a chair and a sofa
(each a solid box with one class, one surrogate id and one colour), and a camera looking at them.

Solids are ``(lo, hi, class id, instance id, colour)`` in the model's [-1, 1]^3 box, with an optional sixth entry,
their density (default 200: opaque within a voxel).
"""

from __future__ import annotations

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.scene_box import SceneBox
from torch import nn

from plift_nerfstudio.editing.dataset_frame import DatasetFrame
from plift_nerfstudio.labels.class_table import scannet21_class_table
from plift_nerfstudio.metadata import CLASS_TABLE_METADATA_KEY, DATASET_FRAME_METADATA_KEY
from plift_nerfstudio.model import PanopticLiftingModelConfig

TABLE = scannet21_class_table()
WALL, FLOOR = TABLE.names.index("wall") + 1, TABLE.names.index("floor") + 1
CHAIR, SOFA = TABLE.names.index("chair") + 1, TABLE.names.index("sofa") + 1
K = 6  # surrogate ids
CHAIR_INSTANCE, SOFA_INSTANCE = 2, 4

# (lo, hi, class id, instance id, colour) in the model's [-1, 1]^3 box
SOLIDS = [
    ((-1.0, -1.0, -1.0), (1.0, 1.0, -0.7), FLOOR, 0, (0.2, 0.6, 0.2)),
    ((-1.0, 0.7, -0.7), (1.0, 1.0, 1.0), WALL, 0, (0.8, 0.8, 0.8)),
    ((-0.45, -0.05, -0.7), (-0.2, 0.2, -0.35), CHAIR, CHAIR_INSTANCE, (0.9, 0.1, 0.1)),
    ((0.1, 0.0, -0.7), (0.5, 0.3, -0.45), SOFA, SOFA_INSTANCE, (0.1, 0.1, 0.9)),
]


class BoxesField(nn.Module):
    """The field's interface (density, colour, class and surrogate-id scores on box-normalised positions) for solid
    boxes in the box [-1, 1]^3; empty space is air of class 'wall' with surrogate id 1."""

    def __init__(self, solids=SOLIDS) -> None:
        super().__init__()
        self.solids = list(solids)
        self.register_buffer("aabb", torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))

    def normalise_positions(self, positions):
        lo, hi = self.aabb[0], self.aabb[1]
        return (positions - lo) / (hi - lo) * 2.0 - 1.0

    def _which(self, unit):
        index = torch.full((len(unit),), -1, dtype=torch.long)
        for i, (lo, hi, *_rest) in enumerate(self.solids):
            inside = ((unit >= torch.tensor(lo)) & (unit <= torch.tensor(hi))).all(-1)
            index = torch.where(inside & (index < 0), torch.full_like(index, i), index)
        return index

    def density(self, unit):
        densities = torch.tensor([s[5] if len(s) > 5 else 200.0 for s in self.solids] + [0.0])
        return densities[self._which(unit)][:, None]

    def rgb(self, unit, directions):
        colours = torch.tensor([s[4] for s in self.solids] + [(0.0, 0.0, 0.0)])
        return colours[self._which(unit)]

    def semantic_scores(self, unit):
        classes = torch.tensor([s[2] for s in self.solids] + [WALL])
        return 10.0 * nn.functional.one_hot(classes[self._which(unit)] - 1, TABLE.num_classes).float()

    def instance_scores(self, unit):
        ids = torch.tensor([max(s[3], 1) for s in self.solids] + [1])
        return 10.0 * nn.functional.one_hot(ids[self._which(unit)] - 1, K).float()


def make_model(frame: DatasetFrame = DatasetFrame.identity(), occupancy: int = 32, solids=SOLIDS, **options):
    config = PanopticLiftingModelConfig(
        init_resolution=8, final_resolution=8, upsampling_iters=(), num_samples=192, density_components=2,
        color_components=2, semantic_mlp_layers=1, semantic_mlp_width=8, instance_mlp_layers=1, instance_mlp_width=8,
        num_surrogate_ids=K, implementation="torch", occupancy_grid_resolution=occupancy, background_color="black",
        edit_region_resolution=64, **options,
    )
    box = SceneBox(aabb=torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))
    metadata = {CLASS_TABLE_METADATA_KEY: TABLE, DATASET_FRAME_METADATA_KEY: frame}
    model = config.setup(scene_box=box, num_train_data=1, metadata=metadata)
    model.field = BoxesField(solids)
    model.view_cameras = camera()  # instance regions from what this view sees (the pipeline sets the training views)
    if model.occupancy is not None:  # as after training: cells without density are skipped
        model.occupancy.update(model.field.density, 2.0 / 192, 1e-3)
        assert 0.2 < float(model.occupancy.occupied.float().mean()) < 0.8
    model.eval()
    return model


def camera() -> Cameras:
    """Looking from the front, above the floor, down onto the chair and the sofa, the wall behind them."""
    position = np.array([0.0, -0.95, 0.3])
    forward = np.array([0.0, 0.6, -0.55]) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    c2w = torch.tensor(np.stack([right, up, -forward, position], axis=1), dtype=torch.float32)
    return Cameras(camera_to_worlds=c2w[None], fx=40.0, fy=40.0, cx=32.0, cy=24.0, width=64, height=48,
                   camera_type=CameraType.PERSPECTIVE)


def render(model):
    with torch.no_grad():
        out = model.get_outputs_for_camera(camera())
    bundle = camera().generate_rays(camera_indices=0)
    points = bundle.origins + bundle.directions * out["depth"]
    return out, points


def inside(points: torch.Tensor, lo, hi, pad: float = 0.03) -> torch.Tensor:
    return ((points >= torch.tensor(lo) - pad) & (points <= torch.tensor(hi) + pad)).all(-1)


def edits(*entries) -> dict:
    return {"version": 1, "up": [0, 0, 1], "edits": list(entries)}


def ray_to(target) -> tuple:
    origin = np.array([0.0, -0.95, 0.3])
    direction = np.asarray(target, dtype=np.float64) - origin
    return tuple(origin), tuple(direction / np.linalg.norm(direction))


CHAIR_CENTRE = (-0.325, 0.075, -0.5)
