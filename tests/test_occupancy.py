"""The occupancy grid skips empty space without changing what is rendered, and old checkpoints still load."""

from __future__ import annotations

import math

import torch

from plift_nerfstudio.fields.occupancy import OccupancyGrid
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
