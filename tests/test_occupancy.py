"""The occupancy grid skips empty space without changing what is rendered, and old checkpoints still load."""

from __future__ import annotations

import math

import torch

from plift_nerfstudio.fields.occupancy import OccupancyGrid, cells_seen
from test_model import make_model, random_rays


def ball_density(positions: torch.Tensor) -> torch.Tensor:
    """Density 40 inside a ball of radius 0.5 around (0.3, 0, 0), falling off smoothly (like a field) outside."""
    outside = ((positions - torch.tensor([0.3, 0.0, 0.0])).norm(dim=-1, keepdim=True) - 0.5).clamp(min=0.0)
    return 40.0 * torch.exp(-((outside / 0.05) ** 2))


def test_grid_marks_only_cells_with_density() -> None:
    grid = OccupancyGrid(32)
    assert grid.lookup(torch.tensor([[0.9, 0.9, 0.9]])).all()  # before the first update nothing is skipped
    fraction = grid.update(ball_density, step_size=0.05, alpha_threshold=1e-3)
    # occupied where 1 - exp(-density * 0.05) > 1e-3, i.e. out to this radius, plus one cell (2 / 32) around it
    radius = 0.5 + 0.05 * math.sqrt(-math.log(-math.log(1 - 1e-3) / 0.05 / 40.0)) + 2 / 32
    expected = 4 / 3 * math.pi * radius**3 / 8.0  # share of the box
    assert 0.7 * expected < fraction < 1.3 * expected
    assert grid.lookup(torch.tensor([[0.3, 0.0, 0.0], [0.3, 0.4, 0.0]])).all()
    assert not grid.lookup(torch.tensor([[-0.9, 0.9, 0.9], [0.3, 0.0, 1.5]])).any()  # empty; outside the box


def test_rendering_with_the_grid_matches_rendering_without_and_queries_less() -> None:
    torch.manual_seed(0)
    model = make_model(density_shift=-10.0, occupancy_grid_resolution=32, occupancy_warmup_steps=0)
    model.eval()
    queried = []

    def density(positions):
        queried.append(len(positions))
        return ball_density(positions)

    model.field.density = density
    rays = random_rays(256)
    torch.manual_seed(1)
    model.occupancy.occupied.fill_(True)
    dense = model(rays)
    dense_queries = sum(queried)
    for step in range(0, 10 * model.config.occupancy_update_every, model.config.occupancy_update_every):
        model.update_occupancy(step)  # as in training: refreshed every few steps
    assert not model.occupancy.occupied.all()
    queried.clear()
    torch.manual_seed(1)
    skipping = model(rays)
    assert sum(queried) < 0.75 * dense_queries  # the ball fills about half of what the rays cross
    for key in ("rgb", "accumulation", "depth", "semantic_id", "instance_id"):
        assert torch.allclose(dense[key], skipping[key], atol=2e-3), key


def test_checkpoint_without_grid_loads_with_everything_occupied() -> None:
    old = make_model(occupancy_grid_resolution=0).state_dict()
    model = make_model(occupancy_grid_resolution=16)
    model.occupancy.occupied.fill_(False)
    model.load_state_dict(old)
    assert model.occupancy.occupied.all()


def test_grid_survives_nerfstudios_two_pass_checkpoint_loading() -> None:
    """nerfstudio's pipeline loads the model's keys, then its own (without the model's); the grid stays loaded."""
    from nerfstudio.pipelines.base_pipeline import Pipeline

    trained = make_model(occupancy_grid_resolution=16)
    trained.occupancy.occupied[:8].fill_(False)
    trained.occupancy.density_max.fill_(0.5)
    state = {f"_model.{k}": v for k, v in trained.state_dict().items()}
    pipeline = Pipeline()
    pipeline._model = make_model(occupancy_grid_resolution=16)
    pipeline.load_state_dict(state)
    assert torch.equal(pipeline.model.occupancy.occupied, trained.occupancy.occupied)
    assert torch.equal(pipeline.model.occupancy.density_max, trained.occupancy.density_max)


def test_early_termination_renders_the_same_and_queries_less() -> None:
    torch.manual_seed(0)
    queried = []

    def density(positions):
        queried.append(len(positions))
        return 4.0 * ball_density(positions)  # opaque: rays entering the ball stop inside it

    model = make_model(density_shift=-10.0, occupancy_grid_resolution=0)
    model.eval()
    model.field.density = density
    renders = {}
    for transmittance in (0.0, 1e-4):
        model.config.termination_transmittance = transmittance
        queried.clear()
        torch.manual_seed(1)
        renders[transmittance] = (model(random_rays(256)), sum(queried))
    (full, full_queries), (stopped, stopped_queries) = renders[0.0], renders[1e-4]
    assert stopped_queries < 0.8 * full_queries
    for key in ("rgb", "accumulation", "depth", "semantic_id", "instance_id"):
        assert torch.allclose(full[key], stopped[key], atol=1e-3), key


def test_cells_seen_are_those_a_ray_reaches_before_it_is_blocked() -> None:
    # one ray along x through the middle of an 8^3 grid over [-1, 1]^3; a wall at x = 0 blocks it
    x = torch.linspace(-0.99, 0.99, 64)
    positions = torch.stack([x, torch.full_like(x, 0.05), torch.full_like(x, 0.05)], dim=-1)[None]
    transmittance = torch.where(x < 0.0, torch.ones_like(x), torch.full_like(x, 1e-6))[None]
    seen = cells_seen(positions, transmittance, resolution=8, threshold=1e-4)
    # cells 0-3 along x hold lit samples; the one-cell growth adds x cell 4 and the neighbouring y/z cells
    assert seen[:5, 3:6, 3:6].all()
    assert not seen[5:].any()
    assert not seen[:, :2].any() and not seen[:, :, 6:].any()


def test_visibility_skips_what_no_camera_sees_and_renders_the_same_from_the_cameras() -> None:
    from test_scene_bounds import CUBE, cameras_at_origin

    torch.manual_seed(0)
    model = make_model(density_shift=-10.0, occupancy_grid_resolution=24, occupancy_warmup_steps=0, num_samples=96,
                       visibility_update_every=1, visibility_rays=4096)
    model.field.aabb.copy_(CUBE)
    model.field.head_aabb.copy_(CUBE)
    model.eval()
    walls = torch.tensor([0.8, 0.6, 0.5])  # an opaque shell inside the 4-unit cube, cameras in its middle
    queried = []

    def shell_and_junk_density(unit):
        queried.append(len(unit))
        world = model.field.aabb[0] + (unit + 1) * 0.5 * (model.field.aabb[1] - model.field.aabb[0])
        ratio = (world.abs() / walls).amax(dim=-1)
        wall = ((ratio > 0.97) & (ratio < 1.15)).float() * 200.0  # thick enough to stop every ray
        junk = (ratio > 1.5).float() * 5.0  # density behind the walls, which no camera can see
        return (wall + junk)[:, None]

    model.field.density = shell_and_junk_density
    cameras = cameras_at_origin()
    model.update_occupancy(0)  # density only: the junk behind the walls counts as occupied
    before = float(model.occupancy.occupied.float().mean())
    rays = cameras.generate_rays(camera_indices=torch.arange(24)[:, None], coords=torch.rand(24, 2) * 20)
    queried.clear()
    dense = model(rays)
    dense_queries = sum(queried)
    visible = model.update_visibility(cameras)
    model.update_occupancy(0)
    after = float(model.occupancy.occupied.float().mean())
    # the shell (1.6 x 1.2 x 1.0) fills 3% of the cube; what is seen is the room plus a cell or two around it
    assert visible < 0.15 and after < 0.5 * before
    inside = model.field.normalise_positions(torch.tensor([[0.0, 0.0, 0.0], [0.7, 0.5, 0.4]]))
    behind = model.field.normalise_positions(torch.tensor([[1.8, 1.8, 1.8], [-1.9, 0.0, 0.0]]))
    assert model.occupancy.visible.view(-1)[model.occupancy.cell_index(inside)].all()
    assert not model.occupancy.lookup(behind).any()
    queried.clear()
    skipping = model(rays)
    assert sum(queried) <= dense_queries
    for key in ("rgb", "accumulation", "depth"):
        assert torch.allclose(dense[key], skipping[key], atol=2e-3), key
    # the visibility reloads with the checkpoint; one written before it existed loads with everything visible
    reloaded = make_model(occupancy_grid_resolution=24)
    reloaded.load_state_dict(model.state_dict())
    assert torch.equal(reloaded.occupancy.visible, model.occupancy.visible)
    old = {k: v for k, v in model.state_dict().items() if not k.endswith("occupancy.visible")}
    reloaded.load_state_dict(old)
    assert reloaded.occupancy.visible.all()
