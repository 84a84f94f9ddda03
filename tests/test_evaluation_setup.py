"""Evaluation plumbing a user relies on: which datasets can be scored, and presets rescaled consistently."""

from __future__ import annotations

from pathlib import Path

import pytest

from plift_nerfstudio.evaluation.eval_views import frames_have_ground_truth
from plift_nerfstudio.bench.harness import benchmark_schedule
from plift_nerfstudio.core.errors import LabelFileError
from plift_nerfstudio.method_config import panoptic_lifting_lite


def frame(name: str, gt: bool) -> dict:
    entry = {"file_path": f"images/{name}.png"}
    if gt:
        entry.update({"gt_semantics_path": f"gt/s/{name}.png", "gt_instances_path": f"gt/i/{name}.png"})
    return entry


def test_ground_truth_all_none_or_refused() -> None:
    path = Path("scene/transforms.json")
    assert frames_have_ground_truth([frame("a", True), frame("b", True)], path) is True
    assert frames_have_ground_truth([frame("a", False), frame("b", False)], path) is False  # a real capture
    with pytest.raises(LabelFileError, match=r"transforms.json.*1 of 2 eval frames.*images/b.png"):
        frames_have_ground_truth([frame("a", True), frame("b", False)], path)


def test_benchmark_schedule_moves_every_step_count_together() -> None:
    preset = panoptic_lifting_lite.config
    half = benchmark_schedule(preset, preset.max_num_iterations // 2)
    model, ref = half.pipeline.model, preset.pipeline.model
    assert half.max_num_iterations == preset.max_num_iterations // 2
    assert tuple(model.upsampling_iters) == tuple(round(s / 2) for s in ref.upsampling_iters)
    assert model.consistency_loss_start_step == round(ref.consistency_loss_start_step / 2)
    assert model.instance_loss_start_step == round(ref.instance_loss_start_step / 2)
    for name, group in half.optimizers.items():
        assert group["scheduler"].max_steps == half.max_num_iterations, name
    assert preset.max_num_iterations == 3000 and ref.consistency_loss_start_step == 1500  # the preset is untouched
