"""The losses of Eq. 3-7 on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from plift_nerfstudio.losses import (
    assign_surrogate_ids,
    instance_loss,
    normalise_rendered,
    segment_consistency_loss,
    segment_ids_of,
    self_training_targets,
    semantic_loss,
)


def test_semantic_loss_matches_hand_computed_value() -> None:
    rendered = torch.tensor([[0.4, 0.4, 0.0], [0.1, 0.2, 0.7]])  # first ray has opacity 0.8
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    confidence = torch.tensor([1.0, 0.5])
    expected = (-math.log(0.5) + 0.5 * -(0.5 * math.log(0.2) + 0.5 * math.log(0.7))) / 2
    assert semantic_loss(rendered, target, confidence).item() == pytest.approx(expected, rel=1e-5)


def test_semantic_loss_ignores_void_and_zero_confidence() -> None:
    rendered = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    target = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # second ray is void
    loss = semantic_loss(rendered, target, torch.tensor([1.0, 0.0]))
    assert loss.item() == pytest.approx(-math.log(0.9), rel=1e-5)
    assert semantic_loss(rendered, target, torch.zeros(2)).item() == 0.0


def test_renormalisation_makes_loss_independent_of_opacity() -> None:
    probs = torch.tensor([[0.2, 0.5, 0.3]])
    target = torch.tensor([[0.0, 1.0, 0.0]])
    full = semantic_loss(probs, target, torch.ones(1))
    faint = semantic_loss(probs * 0.1, target, torch.ones(1))
    assert full.item() == pytest.approx(faint.item(), rel=1e-4)
    assert torch.allclose(normalise_rendered(probs * 0.1), probs, atol=1e-6)


def test_self_training_targets_merge_labels_with_the_fields_class_and_keep_void_rays_void() -> None:
    rendered = torch.tensor([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]], requires_grad=True)
    labels = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.8, 0.0], [0.0, 0.0, 0.0]])  # the third ray is void
    merged = self_training_targets(rendered, labels, share=0.25)
    assert torch.allclose(merged, torch.tensor([[0.75, 0.25, 0.0], [0.4, 0.6, 0.0], [0.0, 0.0, 0.0]]))
    assert not merged.requires_grad  # the field's class is a target: no gradient flows through it
    # where a view's label disagrees with the field, the loss pulls less towards the label's class
    plain = semantic_loss(rendered, labels, torch.ones(3))
    merged_loss = semantic_loss(rendered, merged, torch.ones(3))
    assert merged_loss.item() < plain.item()
    assert torch.equal(self_training_targets(rendered, labels, share=0.0), labels)


def _image_rays():
    # three 2D instances with ids 7, 3, 12 (arbitrary per-frame ids), four rays each, predicting ids 2, 0, 1
    ids = torch.tensor([7] * 4 + [3] * 4 + [12] * 4)
    probs = torch.full((12, 4), 0.05)
    probs[:4, 2] = 0.85
    probs[4:8, 0] = 0.85
    probs[8:, 1] = 0.85
    return probs, ids


def test_assignment_is_a_permutation_following_the_predictions() -> None:
    probs, ids = _image_rays()
    result = assign_surrogate_ids(probs, ids)
    assert result.num_instances == 3 and result.num_unassigned == 0
    per_instance = {int(i): set(result.target[ids == i].tolist()) for i in ids.unique()}
    assert all(len(v) == 1 for v in per_instance.values())  # one id per 2D instance
    assigned = [next(iter(v)) for v in per_instance.values()]
    assert len(set(assigned)) == 3  # injective
    assert per_instance == {7: {2}, 3: {0}, 12: {1}}


def test_instance_loss_is_invariant_to_renumbering_2d_ids() -> None:
    probs, ids = _image_rays()
    conf = torch.linspace(0.5, 1.0, 12)
    renumbered = torch.tensor([101, 5, 64])[torch.unique(ids, return_inverse=True)[1]]
    loss_a = instance_loss(probs, assign_surrogate_ids(probs, ids).target, conf)
    loss_b = instance_loss(probs, assign_surrogate_ids(probs, renumbered).target, conf)
    assert loss_a.item() == pytest.approx(loss_b.item(), rel=1e-6)
    assert loss_a.item() == pytest.approx(-(conf * math.log(0.85 / 1.0)).mean().item() * 1.0, rel=1e-2)


def test_more_instances_than_ids_are_counted_not_merged() -> None:
    ids = torch.arange(1, 7).repeat_interleave(3)  # six instances
    probs = torch.softmax(torch.randn(18, 4), dim=-1)  # four surrogate ids
    result = assign_surrogate_ids(probs, ids)
    assert result.num_instances == 6 and result.num_unassigned == 2
    assigned = result.target[result.target >= 0]
    per_instance = {int(i): result.target[ids == i][0].item() for i in ids.unique()}
    used = [v for v in per_instance.values() if v >= 0]
    assert len(used) == 4 and len(set(used)) == 4  # four instances, four different ids
    assert (result.target == -1).sum() == 6  # the two left-out instances' rays carry no target
    assert assigned.numel() == 12


def test_instance_loss_decreases_under_gradient_descent() -> None:
    torch.manual_seed(0)
    ids = torch.tensor([4] * 10 + [9] * 10 + [2] * 10)
    logits = torch.randn(30, 5, requires_grad=True)
    optim = torch.optim.Adam([logits], lr=0.1)
    losses = []
    for _ in range(30):
        probs = torch.softmax(logits, dim=-1)
        loss = instance_loss(probs, assign_surrogate_ids(probs, ids).target, torch.ones(30))
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    final = assign_surrogate_ids(torch.softmax(logits, -1), ids).target
    assert len({final[ids == i][0].item() for i in (4, 9, 2)}) == 3


def test_segment_ids_split_things_by_instance_and_stuff_by_class() -> None:
    semantics = torch.tensor([5, 5, 5, 1, 1, 2, 0])
    instances = torch.tensor([3, 3, 8, 0, 0, 0, 0])
    is_thing = torch.tensor([True, True, True, False, False, False, False])
    seg = segment_ids_of(semantics, instances, is_thing)
    assert seg[0] == seg[1] != seg[2]
    assert seg[3] == seg[4] != seg[5]
    assert seg[6] == -1
    assert len(set(seg[:6].tolist())) == 4


def test_segment_consistency_pushes_each_segment_to_its_weighted_majority() -> None:
    # one segment of three rays: two (confident) say class 0, one says class 1
    probs = torch.tensor([[0.8, 0.2], [0.7, 0.3], [0.1, 0.9]])
    conf = torch.tensor([1.0, 1.0, 0.5])
    seg = torch.tensor([1, 1, 1])
    loss = segment_consistency_loss(probs, seg, conf)
    expected = -(math.log(0.8) + math.log(0.7) + 0.5 * math.log(0.1)) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # if the segment agrees, the loss vanishes; void rays are ignored
    agree = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.3, 0.7]])
    assert segment_consistency_loss(agree, torch.tensor([1, 1, -1]), torch.ones(3)).item() == pytest.approx(0, abs=1e-6)


def test_distortion_loss_matches_the_quadratic_definition_and_prefers_one_tight_interval() -> None:
    from nerfstudio.model_components.losses import lossfun_distortion

    from plift_nerfstudio.losses import distortion_loss

    torch.manual_seed(0)
    edges = torch.sort(torch.rand(5, 13), dim=-1).values
    weights = torch.rand(5, 12) / 12
    ours = distortion_loss(weights, edges[:, :-1], edges[:, 1:])
    assert torch.allclose(ours, lossfun_distortion(edges, weights).mean(), atol=1e-6)  # the S x S reference
    starts = torch.linspace(0, 1, 11)[:-1].expand(1, 10)
    ends = starts + 0.1
    one_peak = torch.zeros(1, 10)
    one_peak[0, 4] = 0.9
    fog = torch.full((1, 10), 0.09)  # the same opacity spread along the ray
    assert distortion_loss(one_peak, starts, ends) < 0.2 * distortion_loss(fog, starts, ends)
