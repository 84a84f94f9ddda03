"""The box shrink: a box around what the cameras see, grids resampled without changing the field, heads unmoved."""

from __future__ import annotations

import math

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.field_components.encodings import TensorVMEncoding

from plift_nerfstudio.fields.scene_bounds import (
    LINE_AXIS,
    PLANE_AXES,
    box_around_points,
    ray_surface_points,
    resample_vm_into_box,
)
from test_model import make_model

CUBE = torch.tensor([[-2.0, -2.0, -2.0], [2.0, 2.0, 2.0]])


def linear_vm(resolution: int, components: int) -> TensorVMEncoding:
    """A VM encoding whose planes and lines are linear in their coordinates: bilinear resampling is then exact."""
    enc = TensorVMEncoding(resolution=resolution, num_components=components)
    nodes = torch.linspace(-1, 1, resolution)
    coef = torch.randn(3, components, 3)
    with torch.no_grad():
        for k in range(3):
            for c in range(components):
                a, b, d = coef[k, c]
                # plane[k, c, h, w]: w runs along the first axis of PLANE_AXES[k], h along the second
                enc.plane_coef[k, c] = a * nodes[None, :] + b * nodes[:, None] + 1.0
                enc.line_coef[k, c, :, 0] = d * nodes + 2.0
    return enc


def test_resampling_into_a_smaller_box_keeps_the_values_at_every_world_point() -> None:
    enc = linear_vm(resolution=9, components=3)
    new_box = torch.tensor([[-1.2, -0.5, -1.9], [1.6, 0.3, -0.2]])
    world = new_box[0] + torch.rand(500, 3) * (new_box[1] - new_box[0])
    before = enc((world - CUBE[0]) / (CUBE[1] - CUBE[0]) * 2 - 1)
    resample_vm_into_box(enc, CUBE, new_box)
    after = enc((world - new_box[0]) / (new_box[1] - new_box[0]) * 2 - 1)
    assert torch.allclose(before, after, atol=1e-4)
    assert enc.plane_coef.shape == (3, 3, 9, 9) and enc.line_coef.shape == (3, 3, 9, 1)
    assert (PLANE_AXES, LINE_AXIS) == (((0, 1), (0, 2), (1, 2)), (2, 1, 0))


def test_box_around_points_is_tight_with_a_margin_and_ignores_a_few_strays() -> None:
    points = torch.rand(5000, 3) * torch.tensor([2.0, 1.0, 0.5]) - torch.tensor([1.0, 0.2, 0.3])
    points[:3] = torch.tensor([1.9, 1.9, 1.9])  # three stray rays
    box = box_around_points(points, CUBE, margin=0.1)
    lo, hi = torch.tensor([-1.0, -0.2, -0.3]), torch.tensor([1.0, 0.8, 0.2])
    pad = (hi - lo) * 0.1
    assert torch.allclose(box[0], lo - pad, atol=0.02) and torch.allclose(box[1], hi + pad, atol=0.02)
    # never outside the limit
    wide = box_around_points(torch.randn(100, 3) * 10, CUBE)
    assert (wide[0] >= CUBE[0]).all() and (wide[1] <= CUBE[1]).all()


def test_opaque_rays_see_the_back_of_their_weight_and_transparent_rays_see_nothing() -> None:
    t_mid = torch.linspace(0.05, 3.95, 40).expand(3, -1)
    weights = torch.zeros(3, 40)
    weights[0, 19] = 0.95  # an opaque surface at t = 1.95
    weights[1, 5:10] = 0.02  # haze in front of ...
    weights[1, 30] = 0.9  # ... a surface at t = 3.05: the point is the surface, not the haze
    weights[2, 10] = 0.1  # a faint haze only: sees nothing
    origins = torch.zeros(3, 3)
    directions = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    points = ray_surface_points(origins, directions, weights, t_mid)
    assert points.shape == (2, 3)
    assert torch.allclose(points[0], torch.tensor([t_mid[0, 19].item(), 0.0, 0.0]))
    assert torch.allclose(points[1], torch.tensor([0.0, t_mid[0, 30].item(), 0.0]))


def cameras_at_origin(n: int = 24) -> Cameras:
    """Cameras in the middle of a room, looking every way."""
    poses = []
    for k in range(n):
        yaw, pitch = 2 * math.pi * k / n, 0.6 * math.sin(k)
        forward = torch.tensor([math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), math.sin(pitch)])
        right = torch.nn.functional.normalize(torch.linalg.cross(forward, torch.tensor([0.0, 0.0, 1.0])), dim=0)
        up = torch.linalg.cross(right, forward)
        poses.append(torch.cat([torch.stack([right, up, -forward], dim=1), torch.zeros(3, 1)], dim=1))
    return Cameras(camera_to_worlds=torch.stack(poses), fx=20.0, fy=20.0, cx=16.0, cy=12.0, width=32, height=24)


def test_the_box_shrinks_to_the_walls_the_cameras_see_and_heads_do_not_move() -> None:
    model = make_model(init_resolution=16, box_shrink_margin=0.05, num_samples=96)
    model.field.aabb.copy_(CUBE)
    model.field.head_aabb.copy_(CUBE)
    walls = torch.tensor([0.8, 0.6, 0.5])  # an opaque shell: a room 1.6 x 1.2 x 1.0 inside the 4-unit cube

    def shell_density(unit):
        world = model.field.aabb[0] + (unit + 1) * 0.5 * (model.field.aabb[1] - model.field.aabb[0])
        on_wall = ((world.abs() / walls).amax(dim=-1) > 0.97) & ((world.abs() / walls).amax(dim=-1) < 1.03)
        return on_wall.float()[:, None] * 200.0

    model.field.density = shell_density
    world = torch.rand(200, 3) * 1.2 - 0.6
    heads_before = model.field.semantic_scores(model.field.normalise_positions(world))
    model.shrink_box(cameras_at_origin())
    box = model.field.aabb
    assert torch.allclose(box[1], walls * 1.1, atol=0.05) and torch.allclose(box[0], -walls * 1.1, atol=0.05)
    # the same world points give the same class scores: the heads still see the original box
    assert torch.allclose(model.field.semantic_scores(model.field.normalise_positions(world)), heads_before, atol=1e-5)
    # rays now end at the shrunk box
    coords = torch.rand(5, 2) * 20

    def some_rays():
        return cameras_at_origin().generate_rays(camera_indices=torch.arange(5)[:, None], coords=coords)

    rays = some_rays()
    fars = model.collider(rays).fars[..., 0]
    assert (fars <= walls.norm() * 1.1 + 0.05).all()

    # the shrunk box reloads with the weights, and so does the collider's
    reloaded = make_model(init_resolution=16)
    reloaded.load_state_dict(model.state_dict())
    assert torch.equal(reloaded.field.aabb, box) and torch.equal(reloaded.field.head_aabb, CUBE)
    assert torch.equal(reloaded.collider(some_rays()).fars[..., 0], fars)


def test_a_checkpoint_from_before_the_shrink_loads_with_the_heads_on_its_box() -> None:
    model = make_model()
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("head_aabb")}
    reloaded = make_model()
    reloaded.load_state_dict(state)
    assert torch.equal(reloaded.field.head_aabb, model.field.aabb)
