"""The field and model on random rays: bounded outputs, and gradient blocking between heads and geometry."""

from __future__ import annotations

import pytest
import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.scene_box import SceneBox

from plift_nerfstudio.labels.class_table import scannet21_class_table
from plift_nerfstudio.metadata import CLASS_TABLE_METADATA_KEY
from plift_nerfstudio.model import PanopticLiftingModelConfig
from plift_nerfstudio.model_components.grid_schedule import resolution_at_step, samples_at_resolution


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


def half_opaque_model(**overrides):
    """A thin medium everywhere: the random rays end with accumulation well below 1, so a rendered distribution
    that sums to the opacity (bounded) and one that sums to 1 (unbounded) differ by far more than float error."""
    return make_model(density_shift=-4.0, density_scale=1.0, **overrides)


def test_rendered_probabilities_sum_to_the_ray_opacity() -> None:
    torch.manual_seed(0)
    model = half_opaque_model()
    model.train()
    out = model(random_rays())
    accumulation = out["accumulation"][:, 0]
    assert accumulation.max() < 0.9 and accumulation.min() > 0.01  # partly opaque rays, none empty
    for key in ("semantic_probs", "instance_probs"):
        torch.testing.assert_close(out[key].sum(-1), accumulation, atol=1e-4, rtol=0, msg=key)


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


def test_heads_with_grids_of_their_own_learn_from_their_loss_only_and_leave_density_alone() -> None:
    torch.manual_seed(0)
    model = make_model(segmentation_grid_components=2)
    model.train()
    field = model.field
    assert field.semantic_head.grid is not None and field.instance_head.grid is not None
    groups = model.get_param_groups()
    # each grid is trained at the grids' rate, once: not also in its head's MLP group
    assert {id(p) for p in field.semantic_head.grid.parameters()} <= {id(p) for p in groups["encodings"]}
    assert not {id(p) for p in field.semantic_head.grid.parameters()} & {id(p) for p in groups["semantic_head"]}
    out = model(random_rays())
    (-torch.log(out["semantic_probs"][:, 0] + 1e-6).mean()).backward()
    assert _grad_norm(field.semantic_head.grid.parameters()) > 0.0
    assert _grad_norm(field.instance_head.grid.parameters()) == 0.0
    assert _grad_norm(list(field.density_encoding.parameters()) + list(field.color_encoding.parameters())) == 0.0
    # the head grids grow with the density grids
    field.upsample_grids(24)
    assert field.semantic_head.grid.resolution == field.instance_head.grid.resolution == field.grid_resolution == 24


def test_finer_head_grids_keep_their_scale_of_the_density_grids_as_these_grow() -> None:
    torch.manual_seed(0)
    model = make_model(segmentation_grid_components=2, segmentation_grid_scale=1.5)
    field = model.field
    start = field.grid_resolution
    assert field.semantic_head.grid.resolution == field.instance_head.grid.resolution == round(1.5 * start)
    field.upsample_grids(24)
    assert field.grid_resolution == 24 and field.density_encoding.resolution == field.color_encoding.resolution == 24
    assert field.semantic_head.grid.resolution == field.instance_head.grid.resolution == 36
    model.train()
    (-torch.log(model(random_rays())["instance_probs"][:, 0] + 1e-6).mean()).backward()
    assert _grad_norm(field.instance_head.grid.parameters()) > 0.0
    assert _grad_norm(field.density_encoding.parameters()) == 0.0


def test_without_gradient_blocking_segmentation_moves_density() -> None:
    model = make_model(block_segmentation_gradients=False)
    model.train()
    out = model(random_rays())
    (-torch.log(out["semantic_probs"][:, 0] + 1e-6).mean()).backward()
    assert _grad_norm(model.field.density_encoding.parameters()) > 0.0


def test_unbounded_ablation_renders_a_distribution_from_logits() -> None:
    rays = random_rays()
    torch.manual_seed(0)
    bounded = half_opaque_model()
    torch.manual_seed(0)
    unbounded = half_opaque_model(bounded_fields=False)
    for model in (bounded, unbounded):
        model.train()
    bounded_sums = bounded(rays)["semantic_probs"].sum(-1)
    unbounded_sums = unbounded(rays)["semantic_probs"].sum(-1)
    torch.testing.assert_close(unbounded_sums, torch.ones(64), atol=1e-5, rtol=0)  # softmax after rendering
    assert (1 - bounded_sums).min() > 0.1  # probabilities per sample: never more than the ray's opacity


def test_rays_that_render_nothing_are_void() -> None:
    model = make_model(density_shift=-30.0)  # empty scene: accumulation ~0 on every ray
    model.eval()
    with torch.no_grad():
        out = model(random_rays(16))
    assert out["accumulation"].max() < model.config.void_accumulation
    assert (out["semantic_id"] == 0).all() and (out["instance_id"] == 0).all()
    dense = make_model()
    dense.eval()
    with torch.no_grad():
        assert (dense(random_rays(16))["semantic_id"] > 0).all()  # opaque rays get a class


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


def test_samples_per_ray_follow_the_grid_resolution_when_asked() -> None:
    """With samples_follow_resolution a coarse grid is rendered with proportionally fewer samples and shaded
    samples; from the last upsampling on (and in a checkpoint reloaded there) the configured counts hold."""
    assert samples_at_resolution(96, 16, 48, 96) == (48, 8)
    assert samples_at_resolution(96, 0, 48, 96) == (48, 0)  # no cap stays no cap
    assert samples_at_resolution(12, 16, 1, 96) == (8, 1)  # never fewer than 8 samples or 1 shaded
    model = make_model(samples_follow_resolution=True, max_kept_samples_per_ray=6)
    assert (model.sampler.num_samples, model.max_kept_samples) == (21, 4)  # 16^3 of 24^3: 32 * 2/3, 6 * 2/3
    samples = model.sampler(model.collider(random_rays(8)))
    assert samples.shape[1] == 21
    outputs = model(random_rays(8))
    assert outputs["rgb"].shape == (8, 3) and torch.isfinite(outputs["rgb"]).all()
    model.update_to_step(25)
    assert (model.sampler.num_samples, model.max_kept_samples) == (32, 6)
    fixed = make_model(max_kept_samples_per_ray=6)
    assert (fixed.sampler.num_samples, fixed.max_kept_samples) == (32, 6)  # off: the configured counts throughout


def labelled_batch(semantics: torch.Tensor, instances: torch.Tensor, is_single_image_ray: torch.Tensor) -> dict:
    """A training batch of len(semantics) rays with one-hot class targets at full confidence (ScanNet 21 classes)."""
    table = scannet21_class_table()
    n = len(semantics)
    return {
        "image": torch.rand(n, 3), "semantics": semantics, "instances": instances,
        "class_probs": torch.nn.functional.one_hot(semantics - 1, table.num_classes).float(),
        "confidence": torch.ones(n), "is_thing": torch.tensor([False, *table.is_thing])[semantics],
        "is_single_image_ray": is_single_image_ray, "is_instance_ray": torch.zeros(n, dtype=torch.bool),
    }


def test_instance_loss_through_get_loss_dict_trains_the_instance_head_not_density() -> None:
    torch.manual_seed(0)
    model = make_model(instance_loss_start_step=0)
    model.train()
    rays = random_rays(64)
    table = scannet21_class_table()
    chair, wall = table.names.index("chair") + 1, table.names.index("wall") + 1
    semantics = torch.where(torch.arange(64) < 40, chair, wall)
    instances = torch.where(torch.arange(64) < 20, 1, torch.where(torch.arange(64) < 40, 2, 0))
    batch = labelled_batch(semantics, instances, is_single_image_ray=torch.arange(64) >= 8)
    losses = model.get_loss_dict(model(rays), batch, {})
    assert losses["instance_loss"] > 0
    losses["instance_loss"].backward()
    grids = list(model.field.density_encoding.parameters()) + list(model.field.color_encoding.parameters())
    assert _grad_norm(grids) == 0.0
    assert _grad_norm(model.field.instance_head.parameters()) > 0.0
    assert _grad_norm(model.field.semantic_head.parameters()) == 0.0


def test_tinycudann_is_used_only_where_it_can_run(monkeypatch) -> None:
    import sys
    import types

    from plift_nerfstudio.fields.panoptic_field import resolve_implementation

    monkeypatch.setitem(sys.modules, "tinycudann", None)  # not installed: import fails
    assert resolve_implementation("auto") == "torch"
    with pytest.raises(ValueError, match="implementation tcnn needs tinycudann"):
        resolve_implementation("tcnn")
    monkeypatch.setitem(sys.modules, "tinycudann", types.ModuleType("tinycudann"))  # installed
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_implementation("auto") == "torch"
    with pytest.raises(ValueError, match="needs CUDA"):
        resolve_implementation("tcnn")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_implementation("auto") == "tcnn" and resolve_implementation("torch") == "torch"


def test_distortion_loss_through_get_loss_dict_gathers_density_and_leaves_the_heads_alone() -> None:
    torch.manual_seed(0)
    model = half_opaque_model(distortion_loss_mult=0.01)
    model.train()
    rays = random_rays(64)
    table = scannet21_class_table()
    semantics = torch.full((64,), table.names.index("wall") + 1)
    no_instance, no_single_image_ray = torch.zeros(64, dtype=torch.long), torch.zeros(64, dtype=torch.bool)
    batch = labelled_batch(semantics, no_instance, is_single_image_ray=no_single_image_ray)
    first = model.get_loss_dict(model(rays), batch, {})["distortion_loss"]
    first.backward()
    assert _grad_norm(model.field.density_encoding.parameters()) > 0.0
    for head in (model.field.semantic_head, model.field.instance_head):
        assert _grad_norm(head.parameters()) == 0.0
    optimiser = torch.optim.Adam(model.field.density_encoding.parameters(), lr=0.05)
    for _ in range(30):  # the loss alone, on the density grid alone: each ray's weight gathers into tighter intervals
        optimiser.zero_grad()
        model.get_loss_dict(model(rays), batch, {})["distortion_loss"].backward()
        optimiser.step()
    assert model.get_loss_dict(model(rays), batch, {})["distortion_loss"] < 0.5 * first.detach()


def test_self_training_takes_over_part_of_the_semantic_target_from_its_step_on() -> None:
    """Before self_training_start_step the semantic loss follows the labels alone; from it on, the targets merge the
    labels with the field's own class (detached), and the loss still cannot move density."""
    from plift_nerfstudio.losses import self_training_targets, semantic_loss

    torch.manual_seed(0)
    model = make_model(self_training_start_step=5, self_training_share=0.5)
    model.train()
    rays = random_rays(32)
    table = scannet21_class_table()
    semantics = torch.full((32,), table.names.index("wall") + 1)
    batch = labelled_batch(semantics, torch.zeros(32, dtype=torch.long), is_single_image_ray=torch.zeros(32, dtype=torch.bool))
    outputs = model(rays)
    model.step = 4
    before = model.get_loss_dict(outputs, batch, {})["semantic_loss"]
    assert before.item() == pytest.approx(semantic_loss(outputs["semantic_probs"], batch["class_probs"],
                                                        batch["confidence"]).item(), rel=1e-6)
    model.step = 5
    after = model.get_loss_dict(outputs, batch, {})["semantic_loss"]
    merged = self_training_targets(outputs["semantic_probs"], batch["class_probs"], 0.5)
    assert after.item() == pytest.approx(semantic_loss(outputs["semantic_probs"], merged, batch["confidence"]).item(), rel=1e-6)
    assert after.item() != pytest.approx(before.item(), rel=1e-3)  # an untrained field's class is not the label's
    after.backward()
    assert _grad_norm(model.field.density_encoding.parameters()) == 0.0
    assert _grad_norm(model.field.semantic_head.parameters()) > 0.0
