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
from plift_nerfstudio.core.errors import LabelFileError
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


def checksums(root: Path) -> dict:
    import hashlib

    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def add_unpredicted_frame(root: Path) -> None:
    """A third frame, labelled by hand in the dataset, for which the predictions have nothing."""
    cv2.imwrite(str(root / "images" / "frame_00003.jpg"), np.full((H, W, 3), 90, np.uint8))
    meta = json.loads((root / "transforms.json").read_text())
    meta["frames"].append({"file_path": "images/frame_00003.jpg", "transform_matrix": np.eye(4).tolist()})
    (root / "transforms.json").write_text(json.dumps(meta))


def test_partial_relabel_under_another_class_table_is_refused_and_changes_nothing(tmp_path):
    root = tmp_path / "scene"
    make_dataset(root)
    add_unpredicted_frame(root)
    preds = tmp_path / "preds" / "panoptic.json"
    full = json.loads(preds.read_text())
    # label all three frames under the 21-class table (the third from a prediction file of its own)
    with_third = tmp_path / "preds3" / "panoptic.json"
    (with_third.parent / "panoptic").mkdir(parents=True)
    for i in (1, 2, 3):
        segment_png(with_third.parent / "panoptic" / f"frame_{i:05d}.png", read_ids(preds, 1))
    third = dict(full["annotations"][0], file_name="frame_00003.png")
    with_third.write_text(json.dumps({"annotations": full["annotations"][:2] + [third]}))
    import_coco_panoptic(root, with_third)
    before = checksums(root)
    # relabel with the 31-class table, but the predictions cover only frames 1 and 2: frame 3 would keep ids of
    # the 21-class table under a 31-class table
    result = run_import_cli(["--data", str(root), "--predictions", str(preds), "--mapping", "scannet31", "--overwrite"])
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "transforms.json: --overwrite relabels the frames that have a prediction" in message
    assert "images/frame_00003.jpg" in message and "Nothing was written" in message
    assert checksums(root) == before


def run_import_cli(args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "plift_nerfstudio.cli.import_labels", *args], capture_output=True, text=True)


def read_ids(preds_json: Path, frame: int) -> np.ndarray:
    from plift_nerfstudio.labels.coco_import import read_segment_ids

    return read_segment_ids(preds_json.parent / "panoptic" / f"frame_{frame:05d}.png")


def test_relabel_is_a_new_label_set_switched_in_one_step(tmp_path):
    root = tmp_path / "scene"
    make_dataset(root)
    preds = tmp_path / "preds" / "panoptic.json"
    original_transforms = (root / "transforms.json").read_text()
    import_coco_panoptic(root, preds)
    labelled = (root / "transforms.json").read_text()
    old_files = checksums(root / "labels")
    report = import_coco_panoptic(root, preds, mapping="scannet31", overwrite=True)
    assert report.label_set == "labels-2" and len(report.imported) == 2
    meta = json.loads((root / "transforms.json").read_text())
    assert meta["panoptic_labels"]["class_table"] == "labels-2/classes.json"
    assert all(f["semantics_path"].startswith("labels-2/") for f in meta["frames"])
    assert load_class_table_of_dataset(root).num_classes == 31
    assert load(root, "frame_00001").semantics.max() > 0
    assert checksums(root / "labels") == old_files  # the old set is untouched
    assert (root / "transforms.json.orig").read_text() == original_transforms
    # putting the labelled transforms.json back restores the 21-class labels exactly
    (root / "transforms.json").write_text(labelled)
    assert load_class_table_of_dataset(root) == scannet21_class_table()
    np.testing.assert_array_equal(load(root, "frame_00001").semantics, expected_maps()[0])


def test_interrupted_relabel_leaves_the_old_labels_in_force(tmp_path, monkeypatch):
    from plift_nerfstudio.labels import writer

    root = tmp_path / "scene"
    make_dataset(root)
    preds = tmp_path / "preds" / "panoptic.json"
    import_coco_panoptic(root, preds)
    before = checksums(root)
    real_write = writer.LabelSetWriter.write
    calls = []

    def write_then_die(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after the first frame's files were written
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(writer.LabelSetWriter, "write", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        import_coco_panoptic(root, preds, mapping="scannet31", overwrite=True)
    assert checksums(root) == before  # transforms.json, labels/ and .orig as they were; no staging folder left
    monkeypatch.undo()
    # a run killed outright leaves its staging folder: the next relabelling starts over in it
    (root / "labels-2.incomplete" / "semantics").mkdir(parents=True)
    (root / "labels-2.incomplete" / writer.STAGING_MARKER).write_text("")
    report = import_coco_panoptic(root, preds, mapping="scannet31", overwrite=True)
    assert report.label_set == "labels-2" and not (root / "labels-2.incomplete").exists()
    assert load_class_table_of_dataset(root).num_classes == 31


def test_same_table_relabel_of_some_frames_keeps_the_others(tmp_path):
    root = tmp_path / "scene"
    make_dataset(root)
    preds = tmp_path / "preds" / "panoptic.json"
    import_coco_panoptic(root, preds)
    only_first = tmp_path / "preds" / "first.json"
    annotations = json.loads(preds.read_text())["annotations"]
    only_first.write_text(json.dumps({"annotations": annotations[:1]}))
    report = import_coco_panoptic(root, only_first, png_dir=tmp_path / "preds" / "panoptic", overwrite=True)
    assert report.imported == ["images/frame_00001.jpg"]
    assert report.kept_without_prediction == ["images/frame_00002.jpg"]
    meta = json.loads((root / "transforms.json").read_text())
    assert [f["semantics_path"].split("/")[0] for f in meta["frames"]] == ["labels-2", "labels"]
    for name in ("frame_00001", "frame_00002"):
        np.testing.assert_array_equal(load(root, name).semantics, expected_maps()[0])
