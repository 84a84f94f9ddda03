"""The capture workflow after COLMAP: importing a label folder and attaching ground truth and the test split.

The dataset stands in for what ``ns-process-data images`` writes: the images copied, only the frames COLMAP
registered in transforms.json (in COLMAP's order), with keys of its own.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from plift_nerfstudio.cli.attach_ground_truth import AttachOptions
from plift_nerfstudio.cli.attach_ground_truth import main as attach_main
from plift_nerfstudio.cli.import_labels import ImportOptions
from plift_nerfstudio.cli.import_labels import main as import_main
from plift_nerfstudio.labels.class_mapping import load_class_mapping
from plift_nerfstudio.labels.dataset_labels import frame_label_files, load_class_table_of_dataset
from plift_nerfstudio.core.errors import LabelFileError
from plift_nerfstudio.labels.frame_labels import load_frame_labels, read_label_png
from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset

W, H = 32, 24
UNREGISTERED = ("frame_00003.png", "frame_00008.png")  # frame 8 is a test image (test_every=4: 4, 8, 12)


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    return write_dataset(SynthOptions(output=tmp_path_factory.mktemp("capture") / "synth", num_frames=12, width=W,
                                      height=H, test_every=4, images_only=True, contact_sheet_frames=1))


def processed(capture: Path, tmp_path: Path) -> Path:
    """A dataset as ns-process-data leaves it: all images copied, registered frames only, in another order."""
    data = tmp_path / "processed"
    shutil.copytree(capture / "images", data / "images")
    names = sorted(p.name for p in (capture / "images").glob("*.png") if p.name not in UNREGISTERED)
    frames = [{"file_path": f"images/{n}", "transform_matrix": np.eye(4).tolist(), "colmap_im_id": i}
              for i, n in enumerate(reversed(names))]
    meta = {"camera_model": "OPENCV", "fl_x": 20.0, "fl_y": 20.0, "cx": 16.0, "cy": 12.0, "w": W, "h": H,
            "applied_transform": np.eye(4)[:3].tolist(), "frames": frames}
    (data / "transforms.json").write_text(json.dumps(meta))
    return data


def test_synth_capture_has_images_labels_and_ground_truth_but_no_poses(capture: Path) -> None:
    assert not (capture / "transforms.json").exists()
    assert len(list((capture / "images").glob("*.png"))) == 12
    assert (capture / "machine_labels" / "classes.json").is_file()
    gt = json.loads((capture / "ground_truth" / "frames.json").read_text())
    assert gt["test_images"] == ["frame_00004.png", "frame_00008.png", "frame_00012.png"]
    assert (capture / "ground_truth" / gt["frames"]["frame_00001.png"]["gt_semantics_path"]).is_file()


def test_label_folder_import_then_ground_truth_gives_a_split_of_registered_frames(capture, tmp_path) -> None:
    data = processed(capture, tmp_path)
    imported = import_main(ImportOptions(data=data, predictions=capture / "machine_labels"))
    assert len(imported.imported) == 10 and imported.predictions_without_frame == ["frame_00003", "frame_00008"]
    report = attach_main(AttachOptions(data=data, ground_truth=capture / "ground_truth" / "frames.json"))
    assert report.test_images_missing == ["frame_00008.png"]
    meta = json.loads((data / "transforms.json").read_text())
    assert sorted(meta["test_filenames"]) == ["images/frame_00004.png", "images/frame_00012.png"]
    assert meta["val_filenames"] == meta["test_filenames"]
    assert set(meta["train_filenames"]) | set(meta["test_filenames"]) == {f["file_path"] for f in meta["frames"]}
    assert not set(meta["train_filenames"]) & set(meta["test_filenames"])
    assert meta["applied_transform"] == np.eye(4)[:3].tolist() and meta["frames"][0]["colmap_im_id"] == 0
    # machine labels and ground truth of a frame are the capture's own, whatever order COLMAP listed it in
    frame = next(f for f in meta["frames"] if f["file_path"] == "images/frame_00004.png")
    gt_sem = read_label_png(data / frame["gt_semantics_path"])
    np.testing.assert_array_equal(gt_sem, read_label_png(capture / "ground_truth/semantics/frame_00004.png"))
    np.testing.assert_array_equal(read_label_png(data / frame["gt_instances_path"]),
                                  read_label_png(capture / "ground_truth/instances/frame_00004.png"))
    files = frame_label_files(data, [data / "images/frame_00004.png"], lambda p: data / p)[0]
    labels = load_frame_labels(files, load_class_table_of_dataset(data), (H, W), (H, W))
    np.testing.assert_array_equal(labels.semantics, read_label_png(capture / "machine_labels/semantics/frame_00004.png"))
    assert labels.class_probs is not None and labels.confidence is not None
    assert (labels.semantics != gt_sem).any()  # the machine labels are noisy, the ground truth is not


def test_ground_truth_is_not_replaced_unless_asked(capture, tmp_path) -> None:
    data = processed(capture, tmp_path)
    import_main(ImportOptions(data=data, predictions=capture / "machine_labels"))
    gt_json = capture / "ground_truth" / "frames.json"
    attach_main(AttachOptions(data=data, ground_truth=gt_json))
    before = (data / "transforms.json").read_text()
    with pytest.raises(LabelFileError, match="already has a split"):
        attach_main(AttachOptions(data=data, ground_truth=gt_json))
    assert (data / "transforms.json").read_text() == before
    attach_main(AttachOptions(data=data, ground_truth=gt_json, overwrite=True))
    assert json.loads((data / "transforms.json").read_text()) == json.loads(before)


def test_renumbered_frames_are_refused_before_anything_is_written(capture, tmp_path) -> None:
    data = processed(capture, tmp_path)
    import_main(ImportOptions(data=data, predictions=capture / "machine_labels"))
    # frame 5's file now shows frame 6: a renumbering would attach the wrong ground truth
    shutil.copy(capture / "images" / "frame_00006.png", data / "images" / "frame_00005.png")
    before = (data / "transforms.json").read_text()
    with pytest.raises(LabelFileError, match="frame_00005.png: shows the pixels of frame_00006.png, not of .*renumbered"):
        attach_main(AttachOptions(data=data, ground_truth=capture / "ground_truth" / "frames.json"))
    assert (data / "transforms.json").read_text() == before and not (data / "ground_truth").exists()
    # an image edited (not another frame) is refused with the difference measured
    pixels = cv2.imread(str(capture / "images" / "frame_00005.png"))
    cv2.imwrite(str(data / "images" / "frame_00005.png"), np.clip(pixels.astype(int) + 9, 0, 255).astype(np.uint8))
    with pytest.raises(LabelFileError, match="frame_00005.png: is not the image .*mean absolute difference is [0-9.]+ "
                                             "per 8-bit channel, more than the 2.0"):
        attach_main(AttachOptions(data=data, ground_truth=capture / "ground_truth" / "frames.json"))
    assert (data / "transforms.json").read_text() == before and not (data / "ground_truth").exists()


def test_bad_ground_truth_files_are_refused_naming_them(capture, tmp_path) -> None:
    data = processed(capture, tmp_path)
    gt_json = capture / "ground_truth" / "frames.json"
    with pytest.raises(LabelFileError, match="no machine labels yet"):
        attach_main(AttachOptions(data=data, ground_truth=gt_json))
    import_main(ImportOptions(data=data, predictions=capture / "machine_labels"))
    bad = tmp_path / "gt"
    shutil.copytree(capture / "ground_truth", bad)
    meta = json.loads((bad / "frames.json").read_text())
    (bad / "frames.json").write_text(json.dumps({**meta, "version": 7}))
    with pytest.raises(LabelFileError, match="frames.json: expected an object with \"version\": 1"):
        attach_main(AttachOptions(data=data, ground_truth=bad / "frames.json"))
    (bad / "frames.json").write_text(json.dumps({**meta, "images_dir": str(capture / "images")}))
    cv2.imwrite(str(bad / "semantics" / "frame_00002.png"), np.full((H, W), 40, np.uint16))
    with pytest.raises(LabelFileError, match="semantics/frame_00002.png: class ids \\[40\\] are outside"):
        attach_main(AttachOptions(data=data, ground_truth=bad / "frames.json"))
    load_class_mapping("scannet31", None).target.save(bad / "classes.json")
    with pytest.raises(LabelFileError, match="classes.json: differs from the dataset's class table"):
        attach_main(AttachOptions(data=data, ground_truth=bad / "frames.json"))
    assert not (data / "ground_truth").exists()


def test_label_folder_import_refuses_bad_files_and_options(capture, tmp_path) -> None:
    data = processed(capture, tmp_path)
    folder = tmp_path / "labels_in"
    shutil.copytree(capture / "machine_labels", folder)
    with pytest.raises(ValueError, match="--mapping and --png-dir are for COCO"):
        import_main(ImportOptions(data=data, predictions=folder, mapping="scannet31"))
    cv2.imwrite(str(folder / "instances" / "frame_00002.png"), np.zeros((H + 2, W), np.uint16))
    with pytest.raises(LabelFileError, match="instances/frame_00002.png: size 32x26 does not match"):
        import_main(ImportOptions(data=data, predictions=folder))
    assert not (data / "labels").exists()
    (folder / "classes.json").unlink()
    with pytest.raises(ValueError, match="a folder without classes.json"):
        import_main(ImportOptions(data=data, predictions=folder))
