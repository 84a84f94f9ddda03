"""The capture workflow through real COLMAP: ns-process-data images on the demo's images-only output.

Needs COLMAP and libusb from the system (``scripts/setup_capture.sh`` installs them; ``scripts/test.sh``, which CI
runs, calls it). Without them the test is skipped with that reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from plift_nerfstudio.labels.folder_import import import_label_folder
from plift_nerfstudio.labels.frame_labels import read_label_png
from plift_nerfstudio.labels.ground_truth import attach_ground_truth
from plift_nerfstudio.evaluation.metrics import PROTOCOLS, protocol_scores
from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset
from test_training import tiny_config  # the tiny training preset of the training test

NUM_FRAMES = 40


def capture_tools_missing() -> str:
    if shutil.which("colmap") is None:
        return "COLMAP is not installed (scripts/setup_capture.sh installs it)"
    probe = subprocess.run([sys.executable, "-c", "import open3d"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"open3d, which ns-process-data imports, fails: {probe.stderr.strip().splitlines()[-1]}"
    return ""


pytestmark = pytest.mark.skipif(bool(capture_tools_missing()), reason=capture_tools_missing() or "n/a")


def test_colmap_poses_labels_and_ground_truth_make_a_trainable_dataset(tmp_path: Path) -> None:
    capture = write_dataset(SynthOptions(output=tmp_path / "capture", num_frames=NUM_FRAMES, images_only=True,
                                         test_every=8, contact_sheet_frames=1))
    data = tmp_path / "processed"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(Path(sys.executable).parent / "ns-process-data"), "images", "--data", str(capture / "images"),
                    "--output-dir", str(data), "--no-gpu", "--matching-method", "exhaustive", "--num-downscales", "0"],
                   check=True, env=env, capture_output=True)
    meta = json.loads((data / "transforms.json").read_text())
    assert len(meta["frames"]) >= 0.8 * NUM_FRAMES, f"COLMAP registered {len(meta['frames'])} of {NUM_FRAMES}"
    assert import_label_folder(data, capture / "machine_labels").imported
    report = attach_ground_truth(data, capture / "ground_truth" / "frames.json")
    assert report.test_frames and not report.frames_without_ground_truth
    # COLMAP's camera centres are the true ones up to a similarity
    errors_m = report.camera_centre_errors
    assert errors_m is not None and len(errors_m) == len(meta["frames"])
    assert errors_m.mean() < 0.10, f"camera centres off by {errors_m.mean():.3f} m on average (room: about 5 m)"

    config = tiny_config(data, tmp_path / "outputs")
    config.max_num_iterations = 30
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    datamanager = trainer.pipeline.datamanager
    assert len(datamanager.train_dataset) == len(report.train_frames)
    assert len(datamanager.eval_dataset) == len(report.test_frames)
    trainer.train()
    metrics = trainer.pipeline.get_average_eval_image_metrics()
    assert np.isfinite(metrics["psnr"])  # 30 steps: the point here is that the dataset trains and evaluates
    # the scores of the 2D labels are their own files against the attached ground truth of the registered test
    # frames: right frames, right maps (a renumbering or a wrong split would not reproduce them)
    test_frames = [f for f in json.loads((data / "transforms.json").read_text())["frames"]
                   if f["file_path"] in set(report.test_frames)]
    maps = [torch.from_numpy(np.stack([read_label_png(data / f[key]).astype(np.int64) for f in test_frames]))
            for key in ("semantics_path", "instances_path", "gt_semantics_path", "gt_instances_path")]
    expected = protocol_scores(*maps, num_classes=21, scene_level=False)
    for protocol in PROTOCOLS:
        for key in ("pq", "miou"):
            assert metrics[f"labels_{protocol}_{key}"] == pytest.approx(expected[protocol][key]), (protocol, key)
            assert 0.0 <= metrics[f"{protocol}_{key}"] <= 100.0
        assert 0.0 <= metrics[f"{protocol}_scene_pq"] <= 100.0
    assert expected["panopticapi"]["miou"] > 20  # the labels of the right frames match their ground truth
    assert torch.isfinite(next(trainer.pipeline.model.parameters())).all()
