"""Sparse depth: COLMAP points triangulated with the dataset's poses, the points file, the rays through the points
and the DS-NeRF loss that makes those rays end at their points."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from plift_nerfstudio.labels.frame_labels import read_label_png
from plift_nerfstudio.losses import sparse_depth_loss
from plift_nerfstudio.losses.assembly import split_sparse_depth_rays
from plift_nerfstudio.sparse_depth.points import (
    SPARSE_DEPTH_FILE,
    SparseDepthFileError,
    SparseDepthPoints,
    load_sparse_depth,
    match_frames,
    save_sparse_depth,
)
from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset

NO_COLMAP = shutil.which("colmap") is None
STEPS_WITH_DEPTH = 120


def samples_along_a_ray(num_rays: int = 1, num_samples: int = 80, far: float = 4.0):
    edges = torch.linspace(0.0, far, num_samples + 1)
    starts = edges[:-1].expand(num_rays, -1)[..., None].clone()
    ends = edges[1:].expand(num_rays, -1)[..., None].clone()
    return starts, ends


def weights_of(density: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    alpha = 1 - torch.exp(-density * (ends - starts))
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], dim=1), dim=1)
    return alpha * transmittance


def test_the_loss_is_lowest_when_the_ray_ends_at_its_point() -> None:
    starts, ends = samples_along_a_ray()
    mids = (starts + ends) / 2
    target = torch.tensor([2.0])

    def surface_at(depth: float, fog: float = 0.0) -> torch.Tensor:
        density = torch.full_like(mids, fog)
        density[(mids - depth).abs() < 0.05] = 200.0
        return weights_of(density, starts, ends)

    at_point = sparse_depth_loss(surface_at(2.0), starts, ends, target, relative_std=0.03)
    foggy = sparse_depth_loss(surface_at(2.0, fog=0.5), starts, ends, target, relative_std=0.03)
    in_front = sparse_depth_loss(surface_at(1.2), starts, ends, target, relative_std=0.03)
    assert at_point < foggy < in_front


def test_its_gradient_clears_density_in_front_of_the_point_and_builds_it_there() -> None:
    starts, ends = samples_along_a_ray()
    mids = (starts + ends) / 2
    density = torch.full_like(mids, 0.3).requires_grad_()
    sparse_depth_loss(weights_of(density, starts, ends), starts, ends, torch.tensor([2.0]), 0.03).backward()
    grad = density.grad[0, :, 0]
    in_front, at_point = mids[0, :, 0] < 1.8, (mids[0, :, 0] - 2.0).abs() < 0.03
    assert (grad[in_front] > 0).all(), "descent must lower the density in front of the point"
    assert (grad[at_point] < 0).all(), "descent must raise the density at the point"


def test_depth_rays_are_split_off_the_labelled_rays() -> None:
    outputs = {"rgb": torch.rand(7, 3), "sample_weights": torch.rand(7, 5, 1), "distortion": torch.tensor(0.3)}
    labelled, depth = split_sparse_depth_rays(outputs, {"sparse_depth": torch.ones(2)})
    assert labelled["rgb"].shape == (5, 3) and depth is not None and depth["sample_weights"].shape == (2, 5, 1)
    assert torch.equal(depth["rgb"], outputs["rgb"][5:]) and labelled["distortion"] is outputs["distortion"]
    assert split_sparse_depth_rays(outputs, {})[1] is None


def hand_made_points() -> SparseDepthPoints:
    return SparseDepthPoints(
        frame_names=["images/a.png", "images/b.png"],
        points_xyz=np.array([[0.0, 0.0, 1.0], [1.0, 2.0, 3.0], [0.5, 0.5, 0.5]]),
        point_error=np.array([0.2, 3.0, 0.5], dtype=np.float32),
        track_length=np.array([3, 4, 2], dtype=np.int32),
        observation_frame=np.array([0, 1, 0, 1, 0], dtype=np.int32),
        observation_uv=np.arange(10, dtype=np.float32).reshape(5, 2),
        observation_point=np.array([0, 0, 1, 2, 2], dtype=np.int32),
    )


def test_filtering_keeps_good_points_and_their_observations(tmp_path: Path) -> None:
    kept = hand_made_points().filtered(max_error=1.0, min_track_length=3)
    assert kept.num_points == 1 and kept.num_observations == 2
    assert (kept.observation_point == 0).all() and np.allclose(kept.points_xyz, [[0, 0, 1]])
    save_sparse_depth(tmp_path / "p.npz", kept, {"why": "test"})
    again = load_sparse_depth(tmp_path / "p.npz")
    assert again.frame_names == kept.frame_names and np.allclose(again.observation_uv, kept.observation_uv)


def test_bad_points_files_are_refused_by_name(tmp_path: Path) -> None:
    missing = tmp_path / "none.npz"
    with pytest.raises(SparseDepthFileError, match="plift-sparse-depth"):
        load_sparse_depth(missing)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"not a zip")
    with pytest.raises(SparseDepthFileError, match=str(damaged)):
        load_sparse_depth(damaged)
    broken = hand_made_points()
    broken.observation_point = np.array([0, 0, 1, 2, 9], dtype=np.int32)
    save_sparse_depth(tmp_path / "broken.npz", broken, {})
    with pytest.raises(SparseDepthFileError, match="point that does not exist"):
        load_sparse_depth(tmp_path / "broken.npz")
    with pytest.raises(SparseDepthFileError, match="none of its 2 frames"):
        match_frames(hand_made_points(), ["images/c.png"], tmp_path / "p.npz")
    assert list(match_frames(hand_made_points(), ["images/b.png", "images/a.png"], tmp_path / "p.npz")) == [1, 0]


@pytest.fixture(scope="module")
def triangulated_scene(tmp_path_factory) -> Path:
    """A 24-frame demo room (160x120) with sparse_depth/points.npz made by plift-sparse-depth."""
    from plift_nerfstudio.cli.sparse_depth import SparseDepthOptions, main

    data = write_dataset(SynthOptions(output=tmp_path_factory.mktemp("sparse") / "scene", seed=1, num_frames=24,
                                      test_every=4, contact_sheet_frames=1))
    main(SparseDepthOptions(data=data))
    return data


@pytest.mark.skipif(NO_COLMAP, reason="COLMAP is not installed (scripts/setup_capture.sh installs it)")
def test_triangulated_points_lie_on_the_true_surfaces_of_training_views_only(triangulated_scene: Path) -> None:
    import json

    from plift_nerfstudio.cli.sparse_depth import SparseDepthOptions, main
    from plift_nerfstudio.sparse_depth.accuracy import read_true_depths, relative_depth_errors, summarise_errors

    meta = json.loads((triangulated_scene / "transforms.json").read_text())
    points = load_sparse_depth(triangulated_scene / SPARSE_DEPTH_FILE)
    assert set(points.frame_names) <= set(meta["train_filenames"]), "a test view took part"
    assert points.num_points >= 100 and (points.track_length >= 3).all() and (points.point_error <= 1.0).all()
    origins = {f["file_path"]: np.asarray(f["transform_matrix"])[:3, 3] for f in meta["frames"]}
    summary = summarise_errors(relative_depth_errors(points, origins, read_true_depths(triangulated_scene, meta["frames"])))
    assert summary["median_relative_error"] < 0.02 and summary["within_5_percent"] > 0.8, summary
    # an existing file is the user's: refused without --overwrite, and left as it was
    before = (triangulated_scene / SPARSE_DEPTH_FILE).read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        main(SparseDepthOptions(data=triangulated_scene))
    assert (triangulated_scene / SPARSE_DEPTH_FILE).read_bytes() == before


@pytest.mark.skipif(NO_COLMAP, reason="COLMAP is not installed (scripts/setup_capture.sh installs it)")
def test_depth_rays_pass_through_their_points_at_the_true_distance(triangulated_scene: Path, tmp_path: Path) -> None:
    from test_training import tiny_config

    config = tiny_config(triangulated_scene, tmp_path / "outputs")
    config.pipeline.datamanager.sparse_depth_num_rays = 64
    manager = config.pipeline.datamanager.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)
    rays_through = manager.sparse_depth
    assert rays_through is not None and rays_through.num_observations > 0
    everything = torch.arange(rays_through.num_observations)
    rays, distance = rays_through.rays_of(everything)
    off_ray = torch.linalg.norm(rays_through.point - (rays.origins + rays.directions * distance[:, None]), dim=-1)
    assert (off_ray / distance).median() < 0.005, "rays miss their points: pixel or frame conventions are off"
    # the distance, back in the dataset's metres, is the true depth at the pixel
    scale = float(manager.train_dataparser_outputs.dataparser_scale)
    frames = manager.train_dataparser_outputs.image_filenames
    errors = []
    for i in range(rays_through.num_observations):
        camera = int(rays_through.camera_index[i])
        image = Path(frames[camera])
        depth = read_label_png(triangulated_scene / "gt" / "depth" / image.name).astype(np.float64) / 1000.0
        y, x = (int(v) for v in rays_through.pixel_yx[i])
        window = depth[max(0, y - 1): y + 2, max(0, x - 1): x + 2].ravel()
        errors.append(np.min(np.abs(float(distance[i]) / scale - window) / window))
    assert np.median(errors) < 0.02
    # a training batch carries the depth rays after the labelled ones
    ray_bundle, batch = manager.next_train(0)
    assert len(batch["sparse_depth"]) == 64 and ray_bundle.shape[0] == len(batch["image"]) + 64


@pytest.mark.skipif(NO_COLMAP, reason="COLMAP is not installed (scripts/setup_capture.sh installs it)")
def test_training_with_sparse_depth_brings_rays_to_their_points(triangulated_scene: Path, tmp_path: Path) -> None:
    from test_training import tiny_config

    config = tiny_config(triangulated_scene, tmp_path / "outputs")
    config.pipeline.datamanager.sparse_depth_num_rays = 128
    config.pipeline.model.sparse_depth_loss_mult = 1.0
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    pipeline = trainer.pipeline
    losses = []
    for step in range(STEPS_WITH_DEPTH):
        trainer.optimizers.zero_grad_all()
        _, loss_dict, _ = pipeline.get_train_loss_dict(step=step)
        assert "sparse_depth_loss" in loss_dict and torch.isfinite(loss_dict["sparse_depth_loss"])
        sum(loss_dict.values()).backward()
        trainer.optimizers.optimizer_step_all()
        losses.append(float(loss_dict["sparse_depth_loss"]))
    assert np.mean(losses[-8:]) < 0.7 * np.mean(losses[:8]), losses


def test_the_cpu_preset_refuses_a_dataset_without_points_and_says_how_to_make_them(tiny_scene_dir: Path) -> None:
    from plift_nerfstudio.method_config import panoptic_lifting_cpu

    config = copy.deepcopy(panoptic_lifting_cpu.config)
    assert config.pipeline.datamanager.sparse_depth_num_rays > 0 and config.pipeline.model.sparse_depth_loss_mult > 0
    config.pipeline.datamanager.data = tiny_scene_dir
    config.pipeline.datamanager.dataparser.data = tiny_scene_dir
    with pytest.raises(FileNotFoundError, match=r"plift-sparse-depth --data .*sparse-depth-num-rays 0"):
        config.pipeline.datamanager.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)


@pytest.mark.skipif(NO_COLMAP, reason="COLMAP is not installed (scripts/setup_capture.sh installs it)")
def test_too_few_features_say_why_and_keep_colmaps_log(tiny_scene_copy: Path) -> None:
    """48x36 frames give COLMAP almost no features: the error says so and names a log that still exists;
    no points file is written."""
    import re

    from plift_nerfstudio.cli.sparse_depth import SparseDepthOptions, main
    from plift_nerfstudio.sparse_depth.colmap_triangulation import ColmapError

    with pytest.raises(ColmapError, match="too few features") as caught:
        main(SparseDepthOptions(data=tiny_scene_copy))
    assert "48x36" in str(caught.value)
    log = Path(re.search(r"log: (\S+?)\)", str(caught.value)).group(1))
    assert log.is_file() and "feature_extractor" in log.read_text()
    assert not (tiny_scene_copy / SPARSE_DEPTH_FILE).exists()
    shutil.rmtree(log.parent)
