"""plift-segment: augmentations invert exactly, and the whole command on a tiny randomly initialised Mask2Former."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from plift_nerfstudio.labels.augmentations import DEFAULT_AUGMENTATIONS, parse_augmentation, parse_augmentations
from plift_nerfstudio.labels.class_mapping import coco_panoptic_categories
from plift_nerfstudio.labels.class_table import scannet21_class_table
from plift_nerfstudio.labels.dataset_labels import frame_label_files, load_class_table_of_dataset
from plift_nerfstudio.core.errors import LabelFileError
from plift_nerfstudio.labels.frame_labels import load_frame_labels
from plift_nerfstudio.cli.segment import SegmentOptions, main

H, W = 48, 64


def predicted_on_augmented(masks: torch.Tensor, scale: float, flip: bool) -> torch.Tensor:
    """What a perfect segmenter predicts on the augmented image: the masks moved the same way as the image."""
    if scale > 1:
        masks = F.interpolate(masks[None], scale_factor=int(scale), mode="nearest")[0]
    elif scale < 1:
        masks = F.avg_pool2d(masks[None], int(round(1 / scale)))[0]
    return masks.flip(-1) if flip else masks


@pytest.mark.parametrize("spec, scale", [("hflip", 1.0), ("rescale2", 2.0), ("hflip+rescale2+gamma", 2.0)])
def test_flip_and_upscale_invert_exactly(spec, scale):
    aug = parse_augmentation(spec)
    masks = torch.rand(3, H, W, generator=torch.Generator().manual_seed(0))
    assert aug.apply(np.zeros((H, W, 3), np.uint8)).shape[:2] == (int(H * scale), int(W * scale))
    back = aug.invert_masks(predicted_on_augmented(masks, scale, aug.flip), (H, W))
    torch.testing.assert_close(back, masks, atol=1e-6, rtol=0)


def test_downscale_inverts_up_to_the_lost_resolution():
    aug = parse_augmentation("hflip+rescale0.5")
    # masks constant on 4x4 blocks: halving loses nothing, so only the bilinear upsampling at block edges differs
    blocks = torch.rand(3, H // 4, W // 4, generator=torch.Generator().manual_seed(0))
    masks = blocks.repeat_interleave(4, 1).repeat_interleave(4, 2)
    back = aug.invert_masks(predicted_on_augmented(masks, 0.5, True), (H, W))
    inner = (slice(None), slice(1, None, 4), slice(1, None, 4))  # away from block edges: no mixing
    torch.testing.assert_close(back[inner], masks[inner], atol=1e-6, rtol=0)


def test_flip_of_an_image_matches_flip_of_its_masks():
    image = np.zeros((H, W, 3), np.uint8)
    image[:, :10] = 255
    flipped = parse_augmentation("hflip").apply(image)
    assert flipped[:, -10:].min() == 255 and flipped[:, :-10].max() == 0


def test_augmentation_names_are_checked():
    assert len(parse_augmentations(DEFAULT_AUGMENTATIONS)) == 13
    with pytest.raises(ValueError, match="unknown augmentation op 'blurr'"):
        parse_augmentation("hflip+blurr")
    with pytest.raises(ValueError, match="rescale needs a factor"):
        parse_augmentation("rescale")


def tiny_mask2former(path: Path, class_names):
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig

    torch.manual_seed(0)
    swin = SwinConfig(image_size=64, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4,
                      out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=swin, feature_size=32, mask_feature_size=32, hidden_dim=32,
                               encoder_feedforward_dim=32, encoder_layers=1, decoder_layers=2, num_attention_heads=2,
                               dim_feedforward=32, num_queries=6, num_labels=len(class_names),
                               id2label=dict(enumerate(class_names)), label2id={n: i for i, n in enumerate(class_names)})
    Mask2FormerForUniversalSegmentation(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def coco_model(tmp_path_factory):
    return tiny_mask2former(tmp_path_factory.mktemp("m2f") / "model", [c.name for c in coco_panoptic_categories()])


def make_dataset(root: Path, frames: int = 3) -> None:
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    entries = []
    for i in range(frames):
        image = (rng.random((H, W, 3)) * 60).astype(np.uint8)
        image[:, W // 2:] += 150
        cv2.imwrite(str(root / "images" / f"frame_{i:05d}.png"), image)
        entries.append({"file_path": f"images/frame_{i:05d}.png", "transform_matrix": np.eye(4).tolist(), "k": i})
    (root / "transforms.json").write_text(json.dumps({"camera_model": "OPENCV", "fl_x": 50.0, "frames": entries}))


def test_plift_segment_labels_every_frame_and_resumes(tmp_path, coco_model):
    root = tmp_path / "scene"
    make_dataset(root)
    opts = SegmentOptions(data=root, model=str(coco_model), augmentations=("identity", "hflip", "rescale0.75+gamma"),
                          min_segment_score=0.0, device="cpu", batch_size=2, record_every=1)
    report = main(opts)
    assert len(report.labelled) == 3 and report.skipped == []
    table = load_class_table_of_dataset(root)
    assert table == scannet21_class_table()
    for i in range(3):
        files = frame_label_files(root, [root / f"images/frame_{i:05d}.png"], lambda p: root / p)[0]
        labels = load_frame_labels(files, table, (H, W), (H, W))  # validates ids, things, probabilities
        labelled = labels.semantics > 0
        assert labelled.mean() > 0.5
        sums = labels.class_probs.astype(np.float32).sum(-1)
        np.testing.assert_allclose(sums[labelled], 1.0, atol=1e-2)
        assert 0 <= labels.confidence.min() and labels.confidence.max() <= 1
    meta = json.loads((root / "transforms.json").read_text())
    assert meta["fl_x"] == 50.0 and [f["k"] for f in meta["frames"]] == [0, 1, 2]
    again = main(SegmentOptions(data=root, model=str(coco_model), no_tta=True, device="cpu"))
    assert again.labelled == [] and len(again.skipped) == 3
    first_set = {p: p.read_bytes() for p in (root / "labels").rglob("*") if p.is_file()}
    redo = main(SegmentOptions(data=root, model=str(coco_model), no_tta=True, device="cpu", overwrite=True,
                               min_segment_score=0.0, mapping="scannet31", record_every=1))
    assert len(redo.labelled) == 3
    # a relabelling is a new label set; the first one stays as it was
    meta = json.loads((root / "transforms.json").read_text())
    assert meta["panoptic_labels"]["class_table"] == "labels-2/classes.json"
    assert {f["semantics_path"].split("/")[0] for f in meta["frames"]} == {"labels-2"}
    assert load_class_table_of_dataset(root).num_classes == 31
    assert {p: p.read_bytes() for p in (root / "labels").rglob("*") if p.is_file()} == first_set


def test_interrupted_relabelling_leaves_the_old_labels_in_force(tmp_path, coco_model, monkeypatch):
    from plift_nerfstudio.labels import mask2former_tta

    root = tmp_path / "scene"
    make_dataset(root)
    main(SegmentOptions(data=root, model=str(coco_model), no_tta=True, device="cpu", min_segment_score=0.0))
    before = (root / "transforms.json").read_bytes()
    real_label = mask2former_tta.TTASegmenter.label
    calls = []

    def label_then_die(self, images):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_label(self, images)

    monkeypatch.setattr(mask2former_tta.TTASegmenter, "label", label_then_die)
    with pytest.raises(KeyboardInterrupt):  # two frames relabelled (and recordable) before the third dies
        main(SegmentOptions(data=root, model=str(coco_model), no_tta=True, device="cpu", overwrite=True,
                            mapping="scannet31", min_segment_score=0.0, record_every=1))
    assert (root / "transforms.json").read_bytes() == before
    assert load_class_table_of_dataset(root) == scannet21_class_table()
    assert not (root / "labels-2").exists() and not (root / "labels-2.incomplete").exists()


def test_a_model_with_another_class_set_is_refused(tmp_path):
    model = tiny_mask2former(tmp_path / "model", [f"thing{i}" for i in range(5)])
    root = tmp_path / "scene"
    make_dataset(root, frames=1)
    with pytest.raises(LabelFileError, match="coco_to_scannet21.json: source classes not in 'map': thing0"):
        main(SegmentOptions(data=root, model=str(model), device="cpu"))
    with pytest.raises(FileNotFoundError, match="cannot load a Mask2Former"):
        main(SegmentOptions(data=root, model=str(tmp_path / "nothing-here"), device="cpu"))
