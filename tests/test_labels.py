"""Bad label input stops dataset loading with an error naming the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

from plift_nerfstudio.datamanager.panoptic_datamanager import PanopticDataManagerConfig
from plift_nerfstudio.labels.class_table import scannet21_class_table
from plift_nerfstudio.core.errors import LabelFileError


def load(data: Path, instance_num_rays: int = 16):
    config = PanopticDataManagerConfig(
        dataparser=NerfstudioDataParserConfig(data=data), train_num_rays_per_batch=64, single_image_num_rays=32,
        instance_num_rays=instance_num_rays,
    )
    return config.setup(device="cpu", test_mode="val")


def first_frame(data: Path) -> dict:
    return json.loads((data / "transforms.json").read_text())["frames"][0]


def test_valid_dataset_loads_and_yields_labelled_rays(tiny_scene_dir: Path) -> None:
    dm = load(tiny_scene_dir)
    torch.manual_seed(3)
    ray_bundle, batch = dm.next_train(0)
    instance_rays = batch["is_instance_ray"]
    assert len(ray_bundle) == 64 + 32 + int(instance_rays.sum()) and batch["image"].shape == (len(ray_bundle), 3)
    image_rays = batch["is_single_image_ray"]
    assert image_rays.sum() == 32 + instance_rays.sum() and not (instance_rays & ~image_rays).any()
    single = batch["indices"][image_rays]
    assert single[:, 0].unique().numel() == 1  # one image
    assert (batch["semantics"][image_rays] > 0).all()  # drawn among labelled pixels
    assert torch.allclose(batch["class_probs"][batch["semantics"] > 0].sum(-1), torch.ones(1), atol=1e-2)
    # rays carry the labels of their own pixels: check the single image's rays against its label file
    frame = int(single[0, 0])
    meta = json.loads((tiny_scene_dir / "transforms.json").read_text())
    name = Path(dm.train_dataset.image_filenames[frame]).name
    entry = next(f for f in meta["frames"] if Path(f["file_path"]).name == name)
    sem = torch.from_numpy(cv2.imread(str(tiny_scene_dir / entry["semantics_path"]), cv2.IMREAD_UNCHANGED).astype(np.int64))
    y, x = single[:, 1], single[:, 2]
    assert (batch["semantics"][image_rays] == sem[y, x]).all()


def test_instance_rays_are_distinct_thing_pixels_and_fewer_where_there_are_few(tiny_scene_dir: Path) -> None:
    dm = load(tiny_scene_dir, instance_num_rays=10_000)  # more than any image has thing pixels
    for step in range(3):
        _, batch = dm.next_train(step)
        rays = batch["is_instance_ray"]
        frame = int(batch["indices"][rays][0, 0]) if rays.any() else int(batch["indices"][batch["is_single_image_ray"]][0, 0])
        thing_pixels = int(dm.labels.instance_mask(frame).sum())
        assert int(rays.sum()) == thing_pixels  # every thing pixel once: no duplicates, no padding
        assert batch["is_thing"][rays].all() and (batch["instances"][rays] > 0).all()
        assert batch["indices"][rays].unique(dim=0).shape[0] == thing_pixels
    no_extra = load(tiny_scene_dir, instance_num_rays=0)
    _, batch = no_extra.next_train(0)
    assert not batch["is_instance_ray"].any() and len(batch["indices"]) == 64 + 32


def test_missing_label_file_is_named(tiny_scene_copy: Path) -> None:
    path = tiny_scene_copy / first_frame(tiny_scene_copy)["instances_path"]
    path.unlink()
    with pytest.raises(LabelFileError, match=f"{path.name}.*does not exist"):
        load(tiny_scene_copy)


def test_unreadable_label_file_is_named(tiny_scene_copy: Path) -> None:
    path = tiny_scene_copy / first_frame(tiny_scene_copy)["semantics_path"]
    path.write_bytes(b"not a png")
    with pytest.raises(LabelFileError, match=f"{path.name}.*not a readable image"):
        load(tiny_scene_copy)


def test_size_mismatch_is_refused(tiny_scene_copy: Path) -> None:
    path = tiny_scene_copy / first_frame(tiny_scene_copy)["semantics_path"]
    sem = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(path), sem[:-3])
    with pytest.raises(LabelFileError, match=f"{path.name}.*does not match its image"):
        load(tiny_scene_copy)


def test_class_id_outside_table_is_refused(tiny_scene_copy: Path) -> None:
    path = tiny_scene_copy / first_frame(tiny_scene_copy)["semantics_path"]
    sem = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    sem[0, 0] = 40
    cv2.imwrite(str(path), sem)
    with pytest.raises(LabelFileError, match=f"{path.name}.*\\[40\\].*outside the class table"):
        load(tiny_scene_copy)


def test_instance_on_stuff_pixel_is_refused(tiny_scene_copy: Path) -> None:
    frame = first_frame(tiny_scene_copy)
    sem = cv2.imread(str(tiny_scene_copy / frame["semantics_path"]), cv2.IMREAD_UNCHANGED)
    inst_path = tiny_scene_copy / frame["instances_path"]
    inst = cv2.imread(str(inst_path), cv2.IMREAD_UNCHANGED)
    is_stuff = np.array([False] + [not t for t in scannet21_class_table().is_thing])
    ys, xs = np.nonzero(is_stuff[sem])
    inst[ys[0], xs[0]] = 5
    cv2.imwrite(str(inst_path), inst)
    with pytest.raises(LabelFileError, match=f"{inst_path.name}.*instance id on stuff class"):
        load(tiny_scene_copy)


def test_bad_class_probability_file_is_refused(tiny_scene_copy: Path) -> None:
    path = tiny_scene_copy / first_frame(tiny_scene_copy)["class_probs_path"]
    np.savez(path, class_probs=np.ones((4, 4, 3), np.float16), confidence=np.ones((4, 4), np.float16))
    with pytest.raises(LabelFileError, match=f"{path.name}.*class_probs.*shape"):
        load(tiny_scene_copy)


def test_bad_class_table_is_refused(tiny_scene_copy: Path) -> None:
    path = tiny_scene_copy / "labels" / "classes.json"
    table = json.loads(path.read_text())
    table["classes"][3]["id"] = 30
    path.write_text(json.dumps(table))
    with pytest.raises(LabelFileError, match="classes.json.*without gaps"):
        load(tiny_scene_copy)


def test_dataset_without_labels_is_refused(tiny_scene_copy: Path) -> None:
    meta_path = tiny_scene_copy / "transforms.json"
    meta = json.loads(meta_path.read_text())
    del meta["panoptic_labels"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(LabelFileError, match="transforms.json.*no 'panoptic_labels' section"):
        load(tiny_scene_copy)


def test_frames_without_distributions_count_as_one_hot(tiny_scene_copy: Path) -> None:
    meta_path = tiny_scene_copy / "transforms.json"
    meta = json.loads(meta_path.read_text())
    for frame in meta["frames"]:
        del frame["class_probs_path"]
    meta_path.write_text(json.dumps(meta))
    dm = load(tiny_scene_copy)
    _, batch = dm.next_train(0)
    labelled = batch["semantics"] > 0
    assert (batch["confidence"][labelled] == 1).all()
    assert (batch["class_probs"][labelled].max(-1).values == 1).all()


def test_rays_carry_their_pixels_colour_distribution_and_confidence(tiny_scene_copy: Path) -> None:
    """Labels and images are kept compactly (uint8 levels, 16-bit ids, uint8 images); what a ray gets is still its
    own pixel's values: the colour exactly, the distribution and confidence within a level (1/255)."""
    meta = json.loads((tiny_scene_copy / "transforms.json").read_text())
    # an instance id only 16 bits hold, on the thing pixels of the first frame
    first = meta["frames"][0]
    inst_path = tiny_scene_copy / first["instances_path"]
    inst = cv2.imread(str(inst_path), cv2.IMREAD_UNCHANGED)
    inst[inst > 0] += 60000
    cv2.imwrite(str(inst_path), inst.astype(np.uint16))
    dm = load(tiny_scene_copy)
    torch.manual_seed(0)
    for step in range(4):
        _, batch = dm.next_train(step)
        for frame in batch["indices"][:, 0].unique().tolist():
            rows = (batch["indices"][:, 0] == frame).nonzero().flatten()
            name = Path(dm.train_dataset.image_filenames[frame]).name
            entry = next(f for f in meta["frames"] if Path(f["file_path"]).name == name)
            y, x = batch["indices"][rows, 1], batch["indices"][rows, 2]
            rgb = cv2.cvtColor(cv2.imread(str(tiny_scene_copy / entry["file_path"])), cv2.COLOR_BGR2RGB)
            assert torch.equal(batch["image"][rows], torch.from_numpy(rgb.astype(np.float32) / 255.0)[y, x])
            ids = cv2.imread(str(tiny_scene_copy / entry["instances_path"]), cv2.IMREAD_UNCHANGED).astype(np.int64)
            assert torch.equal(batch["instances"][rows], torch.from_numpy(ids)[y, x])
            with np.load(tiny_scene_copy / entry["class_probs_path"]) as stored:
                probs, confidence = stored["class_probs"].astype(np.float32), stored["confidence"].astype(np.float32)
            H, W = rgb.shape[:2]
            yp, xp = y * probs.shape[0] // H, x * probs.shape[1] // W
            labelled = batch["semantics"][rows] > 0
            expected = torch.from_numpy(probs / np.maximum(probs.sum(-1, keepdims=True), 1e-12))[yp, xp]
            # a pixel whose stored distribution is empty takes its class map label, one-hot
            empty = (expected.sum(-1) == 0) & labelled
            expected[empty] = torch.nn.functional.one_hot(batch["semantics"][rows][empty] - 1, probs.shape[-1]).float()
            assert torch.allclose(batch["class_probs"][rows][labelled], expected[labelled], atol=1.5 / 255)
            assert torch.allclose(batch["confidence"][rows][labelled], torch.from_numpy(confidence)[yp, xp][labelled],
                                  atol=1.5 / 255)
    assert int(dm.labels.instances.max()) > 60000


def test_distributions_kept_as_levels_sum_to_one_and_stay_within_a_level() -> None:
    from plift_nerfstudio.labels.store import quantise_distributions

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(31, 0.3), size=(40, 50)).astype(np.float32)
    probs[0, 0] = 0.0  # an empty distribution stays empty
    levels = quantise_distributions(probs)
    assert levels.dtype == np.uint8
    assert (levels[1:].astype(int).sum(-1) == 255).all() and levels[0, 0].sum() == 0
    assert np.abs(levels / 255.0 - probs).max() < 1 / 255
