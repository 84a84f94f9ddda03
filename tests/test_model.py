"""The field and model on random rays: bounded outputs, and gradient blocking between heads and geometry."""

from __future__ import annotations

import pytest
import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.scene_box import SceneBox

from plift_nerfstudio.labels.class_table import scannet21_class_table
from plift_nerfstudio.model import CLASS_TABLE_METADATA_KEY, PanopticLiftingModelConfig, resolution_at_step


def make_model(**overrides):
    options = dict(
        init_resolution=16,
        final_resolution=24,
        upsampling_iters=(10, 20),
        num_samples=32,
        density_components=4,
        color_components=4,
        semantic_mlp_layers=2,
        semantic_mlp_width=16,
        instance_mlp_layers=2,
        instance_mlp_width=16,
        num_surrogate_ids=6,
        density_shift=0.0,  # dense from the start, so that every head sees weighted samples
        weight_threshold=0.0,
        implementation="torch",
    )
    config = PanopticLiftingModelConfig(**{**options, **overrides})
    box = SceneBox(aabb=torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))
    return config.setup(scene_box=box, num_train_data=4, metadata={CLASS_TABLE_METADATA_KEY: scannet21_class_table()})


def random_rays(n: int = 64) -> RayBundle:
    origins = torch.rand(n, 3) * 0.4 - 0.2
    directions = torch.nn.functional.normalize(torch.randn(n, 3), dim=-1)
    return RayBundle(
        origins=origins,
        directions=directions,
        pixel_area=torch.full((n, 1), 1e-4),
        camera_indices=torch.zeros(n, 1, dtype=torch.long),
    )


def test_rendered_probabilities_sum_to_at_most_one() -> None:
    model = make_model()
    model.train()
    out = model(random_rays())
    for key in ("semantic_probs", "instance_probs"):
        sums = out[key].sum(-1)
        assert (sums <= 1.0 + 1e-5).all(), key
        assert torch.allclose(sums, out["accumulation"][:, 0], atol=1e-4)  # opacity of the ray


def _grad_norm(params) -> float:
    return sum(float(p.grad.abs().sum()) for p in params if p.grad is not None)


@pytest.mark.parametrize("head", ["semantic_probs", "instance_probs"])
def test_segmentation_loss_leaves_density_gradients_at_zero(head: str) -> None:
    model = make_model()
    model.train()
    out = model(random_rays())
    loss = -torch.log(out[head][:, 0] + 1e-6).mean()
    loss.backward()
    grids = list(model.field.density_encoding.parameters()) + list(model.field.color_encoding.parameters())
    assert _grad_norm(grids) == 0.0
    head_module = model.field.semantic_head if head == "semantic_probs" else model.field.instance_head
    assert _grad_norm(head_module.parameters()) > 0.0


def test_without_gradient_blocking_segmentation_moves_density() -> None:
    model = make_model(block_segmentation_gradients=False)
    model.train()
    out = model(random_rays())
    (-torch.log(out["semantic_probs"][:, 0] + 1e-6).mean()).backward()
    assert _grad_norm(model.field.density_encoding.parameters()) > 0.0


def test_unbounded_ablation_renders_a_distribution_from_logits() -> None:
    model = make_model(bounded_fields=False)
    model.train()
    out = model(random_rays())
    assert torch.allclose(out["semantic_probs"].sum(-1), torch.ones(64), atol=1e-5)


def test_rendering_outputs_one_value_per_ray_for_viewer() -> None:
    model = make_model()
    model.eval()
    with torch.no_grad():
        out = model(random_rays(10))
    for key in ("rgb", "semantics", "instances", "panoptic"):
        assert out[key].shape == (10, 3) and out[key].min() >= 0 and out[key].max() <= 1, key
    for key in ("depth", "accumulation", "semantic_id", "instance_id"):
        assert out[key].shape == (10, 1), key
    assert "semantic_probs" not in out  # per-class vectors would be shown by PCA in the viewer
    thing = torch.tensor([False, *scannet21_class_table().is_thing])
    stuff_rays = ~thing[out["semantic_id"][:, 0].long()]
    assert (out["instance_id"][stuff_rays] == 0).all()


def test_grid_resolution_follows_the_upsampling_schedule() -> None:
    model = make_model()
    config = model.config
    assert resolution_at_step(config, 9) == 16
    assert resolution_at_step(config, 10) > 16
    assert resolution_at_step(config, 25) == 24
    model.update_to_step(25)
    assert model.field.grid_resolution == 24
    assert model.field.density_encoding.plane_coef.shape[-1] == 24
