"""plift-synth: deterministic scenes whose ground-truth instance ids agree across views."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import torch
import numpy as np
import pytest

from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset
from plift_nerfstudio.scenes.procedural.render import Intrinsics, camera_path, camera_rays, render
from plift_nerfstudio.scenes.procedural.scene import make_room


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_gives_identical_output(tmp_path: Path) -> None:
    opts = dict(seed=11, num_frames=4, width=32, height=24, test_every=2)
    a = write_dataset(SynthOptions(output=tmp_path / "a", **opts))
    b = write_dataset(SynthOptions(output=tmp_path / "b", **opts))
    c = write_dataset(SynthOptions(output=tmp_path / "c", **{**opts, "seed": 12}))
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_ground_truth_instance_ids_agree_across_views() -> None:
    """Every pixel of GT instance i, lifted to 3D with GT depth, lies on the box(es) of object i in all views."""
    room = make_room(5)
    poses = camera_path(room, 12, np.random.default_rng(0))
    intr = Intrinsics.from_fov(64, 48)
    boxes_of = {}
    for box in room.boxes:
        if box.instance:
            boxes_of.setdefault(box.instance, []).append(box)
    seen = {}
    for pose in poses:
        frame = render(room, pose, intr)
        origins, dirs = camera_rays(pose, intr)
        points = origins + dirs * frame.depth.reshape(-1, 1)
        ids = frame.instances.reshape(-1)
        for inst in np.unique(ids[ids > 0]):
            p = points[ids == inst]
            on_object = np.zeros(len(p), bool)
            for box in boxes_of[int(inst)]:
                on_object |= np.all((p >= box.lo - 1e-3) & (p <= box.hi + 1e-3), axis=1)
            assert on_object.all(), f"instance {inst} pixels off its object"
            seen[int(inst)] = seen.get(int(inst), 0) + 1
    assert sum(1 for v in seen.values() if v > 1) >= 3  # several objects are seen from several views


def test_machine_instance_ids_are_unique_per_frame_only(tiny_scene_dir: Path) -> None:
    meta = json.loads((tiny_scene_dir / "transforms.json").read_text())
    frames_with_things = 0
    machine_ids_of_object: dict = {}
    for frame in meta["frames"]:
        inst = cv2.imread(str(tiny_scene_dir / frame["instances_path"]), cv2.IMREAD_UNCHANGED)
        gt = cv2.imread(str(tiny_scene_dir / frame["gt_instances_path"]), cv2.IMREAD_UNCHANGED)
        ids = np.unique(inst[inst > 0])
        if len(ids):
            assert ids.min() == 1 and ids.max() == len(ids)  # renumbered 1..n within the frame
            frames_with_things += 1
        for obj in np.unique(gt[gt > 0]):
            labelled = inst[(gt == obj) & (inst > 0)]
            if labelled.size:
                machine_ids_of_object.setdefault(int(obj), set()).add(int(np.bincount(labelled).argmax()))
    assert frames_with_things > 0
    # the same object does not keep one machine id across frames: ids carry no cross-view information
    assert max(len(ids) for ids in machine_ids_of_object.values()) >= 2, machine_ids_of_object
    assert set(meta["test_filenames"]).isdisjoint(meta["train_filenames"])
    assert len(meta["test_filenames"]) == 3  # every 4th of 12 frames


def test_refuses_to_overwrite_without_flag(tmp_path: Path) -> None:
    out = write_dataset(SynthOptions(output=tmp_path / "scene", num_frames=2, width=16, height=16, test_every=2))
    before = digest(out)
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_dataset(SynthOptions(output=out, num_frames=2, width=16, height=16, test_every=2, seed=9))
    assert digest(out) == before


def test_overwrite_replaces_an_unchanged_synth_output(tmp_path: Path) -> None:
    out = write_dataset(SynthOptions(output=tmp_path / "scene", num_frames=2, width=16, height=16, test_every=2))
    write_dataset(SynthOptions(output=out, num_frames=3, width=16, height=16, test_every=2, seed=9, overwrite=True))
    assert digest(out) == digest(write_dataset(SynthOptions(output=tmp_path / "fresh", num_frames=3, width=16,
                                                            height=16, test_every=2, seed=9)))
    assert not list(tmp_path.glob(".*incomplete"))  # no staging folder left behind


def photos_folder(root: Path) -> Path:
    """A user's folder of photos with other files beside them (what plift-synth must never delete)."""
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "IMG_0001.jpg"), np.full((8, 8, 3), 120, np.uint8))
    (root / "notes.txt").write_text("kitchen, take 2")
    return root


def ns_process_data_folder(root: Path) -> Path:
    photos_folder(root)
    (root / "transforms.json").write_text(json.dumps({"frames": [{"file_path": "images/IMG_0001.jpg"}]}))
    (root / "colmap").mkdir()
    (root / "colmap" / "database.db").write_bytes(b"SQLite format 3\x00")
    return root


def changed_synth_output(root: Path, change: str) -> Path:
    write_dataset(SynthOptions(output=root, num_frames=2, width=16, height=16, test_every=2))
    if change == "added file":
        (root / "transforms.json.orig").write_text((root / "transforms.json").read_text())
    elif change == "edited file":
        (root / "transforms.json").write_text((root / "transforms.json").read_text().replace("OPENCV", "PINHOLE"))
    elif change == "trained run inside":
        (root / "outputs" / "run").mkdir(parents=True)
        (root / "outputs" / "run" / "config.yml").write_text("method_name: panoptic-lifting-lite")
    elif change == "symlink":
        (root / "link").symlink_to(root.parent)
    return root


@pytest.mark.parametrize(
    "make, why",
    [
        (photos_folder, "has no plift_synth_files.json"),
        (ns_process_data_folder, "has no plift_synth_files.json"),
        (lambda r: changed_synth_output(r, "added file"), "1 files plift-synth did not write: transforms.json.orig"),
        (lambda r: changed_synth_output(r, "edited file"), "were changed after plift-synth wrote them: transforms.json"),
        (lambda r: changed_synth_output(r, "trained run inside"), "did not write: outputs/run/config.yml"),
        (lambda r: changed_synth_output(r, "symlink"), "did not write: link"),
    ],
    ids=["photos", "ns-process-data", "added-file", "edited-file", "run-inside", "symlink"],
)
def test_overwrite_refuses_folders_it_cannot_prove_it_wrote(tmp_path: Path, make, why: str) -> None:
    folder = make(tmp_path / "data")
    before = digest(folder)
    result = subprocess.run(
        [sys.executable, "-m", "plift_nerfstudio.cli.synth", "--output", str(folder), "--num-frames", "2",
         "--width", "16", "--height", "16", "--test-every", "2", "--overwrite"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert str(folder) in message and why in message and "Nothing was deleted" in message, message
    assert digest(folder) == before
    assert not list(tmp_path.glob(".*incomplete"))


def test_interrupted_run_leaves_the_earlier_output_and_the_next_run_cleans_up(tmp_path: Path, monkeypatch) -> None:
    from plift_nerfstudio.scenes.procedural import dataset

    out = write_dataset(SynthOptions(output=tmp_path / "scene", num_frames=2, width=16, height=16, test_every=2))
    before = digest(out)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset, "contact_row", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(SynthOptions(output=out, num_frames=2, width=16, height=16, test_every=2, seed=5, overwrite=True))
    assert digest(out) == before
    # a run killed outright leaves its staging folder: the next run removes it (it carries plift-synth's marker)
    staging = tmp_path / ".scene.plift-synth-incomplete"
    (staging / "images").mkdir(parents=True)
    (staging / ".plift-synth-incomplete").write_text("")
    monkeypatch.undo()
    write_dataset(SynthOptions(output=out, num_frames=2, width=16, height=16, test_every=2, seed=5, overwrite=True))
    assert digest(out) != before and not staging.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--num-frames", "1"], "--num-frames must be at least 2"),
        (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
        (["--num-frames", "5", "--test-every", "8"], "--num-frames 5 with --test-every 8 leaves no test frame"),
    ],
)
def test_bad_option_gets_a_clear_error(tmp_path: Path, args, message) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "plift_nerfstudio.cli.synth", "--output", str(tmp_path / "x"), *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert not (tmp_path / "x").exists()


# Label quality of each noise preset (per-frame PQ and mIoU of the machine labels against ground truth, in %,
# panopticapi protocol), the bands documented in plift_nerfstudio/scenes/procedural/noise.py.
NOISE_BANDS = {"clean": ((95, 100), (95, 100)), "moderate": ((35, 65), (30, 60)), "hard": ((10, 35), (10, 35))}


def test_noise_presets_degrade_labels_by_documented_amounts() -> None:
    from plift_nerfstudio.labels.class_table import scannet21_class_table
    from plift_nerfstudio.evaluation.metrics import protocol_scores
    from plift_nerfstudio.scenes.procedural.noise import NOISE_PRESETS, corrupt

    table = scannet21_class_table()
    room = make_room(0)
    frames = [render(room, p, Intrinsics.from_fov(80, 60)) for p in camera_path(room, 16, np.random.default_rng(0))]
    gt_sem = torch.from_numpy(np.stack([f.semantics for f in frames]).astype(np.int64))
    gt_ins = torch.from_numpy(np.stack([f.instances for f in frames]).astype(np.int64))
    scores = {}
    for name, noise in NOISE_PRESETS.items():
        labels = [corrupt(f.semantics, f.instances, noise, np.random.default_rng([0, i])) for i, f in enumerate(frames)]
        sem = torch.from_numpy(np.stack([x.semantics for x in labels]).astype(np.int64))
        ins = torch.from_numpy(np.stack([x.instances for x in labels]).astype(np.int64))
        scores_of = protocol_scores(sem, ins, gt_sem, gt_ins, table.num_classes, scene_level=False)["panopticapi"]
        pq, miou = scores_of["pq"], scores_of["miou"]
        (pq_lo, pq_hi), (iou_lo, iou_hi) = NOISE_BANDS[name]
        assert pq_lo <= pq <= pq_hi and iou_lo <= miou <= iou_hi, (name, pq, miou)
        scores[name] = (pq, miou)
    assert scores["clean"] > scores["moderate"] > scores["hard"]


def test_the_31_class_table_labels_the_same_objects(tmp_path: Path) -> None:
    """--classes scannet31 writes the same scene with the captures' 31-class ids and 31-column probability files."""
    opts = dict(seed=3, num_frames=4, width=32, height=24, test_every=2)
    a = write_dataset(SynthOptions(output=tmp_path / "a", **opts))
    b = write_dataset(SynthOptions(output=tmp_path / "b", classes="scannet31", **opts))
    names_a = [c["name"] for c in json.loads((a / "labels/classes.json").read_text())["classes"]]
    names_b = [c["name"] for c in json.loads((b / "labels/classes.json").read_text())["classes"]]
    assert len(names_a) == 21 and len(names_b) == 31
    frames_a = json.loads((a / "transforms.json").read_text())["frames"]
    frames_b = json.loads((b / "transforms.json").read_text())["frames"]
    to_b = np.array([0] + [names_b.index(n) + 1 for n in names_a])
    for fa, fb in zip(frames_a, frames_b):
        for key in ("semantics_path", "gt_semantics_path"):
            sem_a = cv2.imread(str(a / fa[key]), cv2.IMREAD_UNCHANGED)
            sem_b = cv2.imread(str(b / fb[key]), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(to_b[sem_a], sem_b), key
        probs_a, probs_b = np.load(a / fa["class_probs_path"]), np.load(b / fb["class_probs_path"])
        assert probs_b["class_probs"].shape[-1] == 31
        assert np.array_equal(probs_b["class_probs"][..., to_b[1:] - 1], probs_a["class_probs"])
        assert np.array_equal(probs_b["confidence"], probs_a["confidence"])
