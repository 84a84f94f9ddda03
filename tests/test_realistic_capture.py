"""A shipped realistic room exported as a capture goes the capture way: images without poses, its COCO panoptic
labels imported, its ground truth attached to the frames a COLMAP-like dataset registered, in COLMAP's frame."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from plift_nerfstudio.cli.attach_ground_truth import AttachOptions
from plift_nerfstudio.cli.attach_ground_truth import main as attach_main
from plift_nerfstudio.cli.import_labels import ImportOptions
from plift_nerfstudio.cli.import_labels import main as import_main
from plift_nerfstudio.labels.frame_labels import read_label_png
from plift_nerfstudio.scenes.realistic.capture import CAPTURE_EXPORT, export_capture

ROOM = Path(__file__).resolve().parents[1] / "data" / "realistic-v2" / "bedroom-living-0"
UNREGISTERED = ("frame_00007.png", "frame_00010.png")  # frame 10 is a test view


def _similarity(seed: int = 3) -> np.ndarray:
    """A rotation, scale and shift like the one between COLMAP's frame and the renderer's."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    s = np.eye(4)
    s[:3, :3] = 0.37 * q
    s[:3, 3] = rng.normal(size=3)
    return s


def _as_processed(capture: Path, tmp_path: Path) -> Path:
    """What ns-process-data images leaves: the images, registered frames only, poses in COLMAP's own frame."""
    data = tmp_path / "processed"
    shutil.copytree(capture / "images", data / "images")
    truth = json.loads((capture / "ground_truth" / "frames.json").read_text())["frames"]
    s = _similarity()
    frames = []
    for i, name in enumerate(sorted(n for n in truth if n not in UNREGISTERED)):
        pose = s @ np.asarray(truth[name]["transform_matrix"])
        pose[:3, :3] /= 0.37
        frames.append({"file_path": f"images/{name}", "transform_matrix": pose.tolist(), "colmap_im_id": i})
    meta = {"camera_model": "OPENCV", "fl_x": 137.0, "fl_y": 137.0, "cx": 96.0, "cy": 72.0, "w": 192, "h": 144,
            "frames": frames}
    (data / "transforms.json").write_text(json.dumps(meta))
    return data


@pytest.mark.skipif(not ROOM.is_dir(), reason="the shipped v2 rooms are not in this checkout")
def test_room_exported_as_capture_imports_labels_and_attaches_its_ground_truth(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    report = export_capture(ROOM, capture)
    room_meta = json.loads((ROOM / "transforms.json").read_text())
    assert len(report.images) == len(room_meta["frames"]) == 60  # the walk only; the off-walk views stay out
    assert not list(capture.rglob("transforms.json")), "a capture has no poses"
    assert not list((capture / "images").glob("offwalk_*"))

    data = _as_processed(capture, tmp_path)
    imported = import_main(ImportOptions(data=data, predictions=ROOM / "coco_panoptic" / "predictions.json"))
    assert len(imported.imported) == 58
    attached = attach_main(AttachOptions(data=data, ground_truth=capture / "ground_truth" / "frames.json"))
    meta = json.loads((data / "transforms.json").read_text())
    room_test = sorted(Path(f).name for f in room_meta["test_filenames"])
    assert attached.test_images_missing == ["frame_00010.png"]
    assert sorted(Path(f).name for f in meta["test_filenames"]) == [n for n in room_test if n != "frame_00010.png"]
    assert len(meta["train_filenames"]) == 60 - 12 - 1
    # camera centres in COLMAP's frame line up with the renderer's after similarity alignment
    assert attached.camera_centre_errors is not None and attached.camera_centre_errors.max() < 1e-6
    frame = next(f for f in meta["frames"] if f["file_path"] == "images/frame_00015.png")
    np.testing.assert_array_equal(read_label_png(data / frame["gt_semantics_path"]),
                                  read_label_png(ROOM / "gt" / "semantics" / "frame_00015.png"))


@pytest.mark.skipif(not ROOM.is_dir(), reason="the shipped v2 rooms are not in this checkout")
def test_capture_export_replaces_only_its_own_unchanged_folder(tmp_path: Path) -> None:
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"not ours")
    with pytest.raises(FileExistsError, match="not empty"):
        export_capture(ROOM, mine)
    with pytest.raises(FileExistsError, match=CAPTURE_EXPORT.manifest_file):
        export_capture(ROOM, mine, overwrite=True)
    assert (mine / "holiday.jpg").read_bytes() == b"not ours"

    out = tmp_path / "capture"
    export_capture(ROOM, out)
    export_capture(ROOM, out, overwrite=True)  # an unchanged export of its own is replaced
    (out / "images" / "frame_00001.png").write_bytes(b"edited by hand")
    with pytest.raises(FileExistsError, match="changed"):
        export_capture(ROOM, out, overwrite=True)
    assert (out / "images" / "frame_00001.png").read_bytes() == b"edited by hand"
