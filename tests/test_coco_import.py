"""Importing COCO-panoptic predictions: round trip through the label loader, resumability, bad files refused."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from plift_nerfstudio.labels.class_mapping import coco_panoptic_categories
from plift_nerfstudio.labels.class_table import scannet21_class_table
from plift_nerfstudio.labels.coco_import import import_coco_panoptic
from plift_nerfstudio.labels.dataset_labels import frame_label_files, load_class_table_of_dataset
from plift_nerfstudio.labels.errors import LabelFileError
from plift_nerfstudio.labels.frame_labels import load_frame_labels

H, W = 6, 8
COCO = {c.name: c.id for c in coco_panoptic_categories()}
WALL, CHAIR = 1, 5  # scannet21 ids


def segment_png(path: Path, ids: np.ndarray) -> None:
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rgb[..., ::-1])


def make_dataset(root: Path) -> dict:
    """Two frames; a segment id map with a wall, two chairs (one with id 300: uses the green channel), a car."""
    (root / "images").mkdir(parents=True)
    frames = []
    for i in (1, 2):
        cv2.imwrite(str(root / "images" / f"frame_{i:05d}.jpg"), np.full((H, W, 3), 90, np.uint8))
        frames.append({"file_path": f"images/frame_{i:05d}.jpg", "transform_matrix": np.eye(4).tolist(), "mine": i})
    meta = {"camera_model": "OPENCV", "fl_x": 5.0, "my_notes": "keep me", "frames": frames}
    (root / "transforms.json").write_text(json.dumps(meta))
    ids = np.zeros((H, W), np.int64)
    ids[:, :4] = 1
    ids[:, 4:6] = 7
    ids[:3, 6:] = 300
    ids[3:, 6:] = 12
    segments = [{"id": 1, "category_id": COCO["wall-other-merged"]}, {"id": 7, "category_id": COCO["chair"]},
                {"id": 300, "category_id": COCO["chair"]}, {"id": 12, "category_id": COCO["car"]}]
    preds = root.parent / "preds"
    annotations = []
    for i, scored in ((1, True), (2, False)):
        segment_png(preds / "panoptic" / f"frame_{i:05d}.png", ids)
        info = [dict(s, score=0.5 + 0.1 * k) if scored else dict(s) for k, s in enumerate(segments)]
        annotations.append({"image_id": i, "file_name": f"frame_{i:05d}.png", "segments_info": info})
    annotations.append({"image_id": 9, "file_name": "not_a_frame.png", "segments_info": []})
    (preds / "panoptic.json").write_text(json.dumps({"annotations": annotations}))
    return meta


def load(root: Path, name: str):
    files = frame_label_files(root, [root / f"images/{name}.jpg"], lambda p: root / p)[0]
    return load_frame_labels(files, load_class_table_of_dataset(root), (H, W), (H, W))


def expected_maps():
    sem = np.zeros((H, W), np.int16)
    sem[:, :4], sem[:, 4:6], sem[:3, 6:] = WALL, CHAIR, CHAIR
    inst = np.zeros((H, W), np.int32)
    inst[:, 4:6], inst[:3, 6:] = 1, 2
    return sem, inst


def test_round_trip_through_the_label_loader_keeps_transforms(tmp_path):
    root = tmp_path / "scene"
    original = make_dataset(root)
    original_text = (root / "transforms.json").read_text()
    report = import_coco_panoptic(root, tmp_path / "preds" / "panoptic.json")
    assert report.imported == ["images/frame_00001.jpg", "images/frame_00002.jpg"]
    assert report.predictions_without_frame == ["not_a_frame"]
    sem, inst = expected_maps()
    for name in ("frame_00001", "frame_00002"):
        labels = load(root, name)
        np.testing.assert_array_equal(labels.semantics, sem)
        np.testing.assert_array_equal(labels.instances, inst)
    scored = load(root, "frame_00001")
    assert scored.class_probs is not None
    np.testing.assert_allclose(scored.confidence[0, 0], 0.5, atol=1e-3)   # the wall's score
    np.testing.assert_allclose(scored.confidence[0, 7], 0.7, atol=1e-3)   # chair 300
    assert scored.confidence[5, 7] == 0 and scored.class_probs[0, 4, CHAIR - 1] == 1
    assert load(root, "frame_00002").class_probs is None  # no scores: one-hot, confidence 1
    meta = json.loads((root / "transforms.json").read_text())
    assert meta["my_notes"] == "keep me" and meta["fl_x"] == 5.0
    assert [f["mine"] for f in meta["frames"]] == [1, 2]
    assert meta["frames"][0]["transform_matrix"] == original["frames"][0]["transform_matrix"]
    assert (root / "transforms.json.orig").read_text() == original_text
    assert load_class_table_of_dataset(root) == scannet21_class_table()


def test_import_resumes_and_overwrites_only_when_asked(tmp_path):
    root = tmp_path / "scene"
    make_dataset(root)
    preds = tmp_path / "preds" / "panoptic.json"
    import_coco_panoptic(root, preds)
    again = import_coco_panoptic(root, preds)
    assert again.imported == [] and len(again.skipped_labelled) == 2
    redo = import_coco_panoptic(root, preds, overwrite=True)
    assert len(redo.imported) == 2
    with pytest.raises(LabelFileError, match="another class table"):
        import_coco_panoptic(root, preds, mapping="scannet31")


def test_bad_predictions_are_refused_naming_the_file(tmp_path):
    root = tmp_path / "scene"
    make_dataset(root)
    preds = tmp_path / "preds" / "panoptic.json"
    png = tmp_path / "preds" / "panoptic" / "frame_00001.png"
    ids = np.zeros((H, W), np.int64)
    ids[0, 0] = 55
    segment_png(png, ids)
    with pytest.raises(LabelFileError, match="not in segments_info: \\[55\\]") as err:
        import_coco_panoptic(root, preds)
    assert "frame_00001.png" in str(err.value)
    segment_png(png, np.zeros((H + 1, W), np.int64))
    with pytest.raises(LabelFileError, match="differs from its image"):
        import_coco_panoptic(root, preds)
    png.unlink()
    with pytest.raises(LabelFileError, match="does not exist"):
        import_coco_panoptic(root, preds)
    (tmp_path / "bad.json").write_text(json.dumps({"images": []}))
    with pytest.raises(LabelFileError, match="bad.json: expected an object with a list 'annotations'"):
        import_coco_panoptic(root, tmp_path / "bad.json")
    assert not (root / "labels").exists()  # nothing written before the errors
