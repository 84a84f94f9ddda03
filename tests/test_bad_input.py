"""The bad-input matrix: every command refuses bad input with exit code 2 and a message that names the file or
option and what is wrong, and leaves every user file byte-identical.

Each case damages tiny data made here (a copy of the tiny demo scene, its labels as a label folder, COCO panoptic
predictions, a capture's ground truth, a two-step training run), runs the command as a user would (the plift-*
commands in-process through their entry points; ns-train as a subprocess), and compares checksums of everything
under the case's folder before and after, except the folders the command was told to write to.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np
import pytest

from plift_nerfstudio.cli import attach_ground_truth as ground_truth_cli
from plift_nerfstudio.cli import eval as eval_cli
from plift_nerfstudio.cli import import_labels as import_cli
from plift_nerfstudio.labels.class_mapping import coco_panoptic_categories
from plift_nerfstudio.cli import synth as synth_cli
from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset
from test_capture_workflow import processed
from test_coco_import import checksums, segment_png
from test_training import tiny_config

ENTRYPOINTS = {"plift-import-labels": import_cli.entrypoint, "plift-synth": synth_cli.entrypoint,
               "plift-attach-ground-truth": ground_truth_cli.entrypoint, "plift-eval": eval_cli.entrypoint}


def run(command: str, args: List[str], capsys, monkeypatch) -> Tuple[int, str]:
    """A plift-* command in-process (as its console script runs it): exit code and stderr as one line."""
    monkeypatch.setattr(sys, "argv", [command, *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        ENTRYPOINTS[command]()
    return int(exit_info.value.code or 0), " ".join(capsys.readouterr().err.split())


def ns_train(args: List[str]) -> Tuple[int, str]:
    result = subprocess.run([str(Path(sys.executable).parent / "ns-train"), *args], capture_output=True, text=True)
    return result.returncode, " ".join((result.stdout + result.stderr).split())


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    return write_dataset(SynthOptions(output=tmp_path_factory.mktemp("capture") / "synth", num_frames=12, width=32,
                                      height=24, test_every=4, images_only=True, contact_sheet_frames=1))


@pytest.fixture(scope="module")
def trained_run(tiny_scene_dir: Path, tmp_path_factory) -> Path:
    """config.yml of a 3-step run of the tiny scene."""
    config = tiny_config(tiny_scene_dir, tmp_path_factory.mktemp("run") / "outputs")
    config.max_num_iterations = 3
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.train()
    return config.get_base_dir() / "config.yml"


def unlabelled_dataset(scene: Path, root: Path) -> Tuple[Path, Path]:
    """The tiny scene without labels (a dataset as ns-process-data leaves it) and its labels as a label folder."""
    data = root / "data"
    shutil.copytree(scene, data)
    shutil.move(str(data / "labels"), root / "label_folder")
    meta = json.loads((data / "transforms.json").read_text())
    meta.pop("panoptic_labels")
    for frame in meta["frames"]:
        for key in ("semantics_path", "instances_path", "class_probs_path"):
            frame.pop(key)
    (data / "transforms.json").write_text(json.dumps(meta))
    return data, root / "label_folder"


def coco_predictions(data: Path, root: Path, segments: List[dict]) -> Path:
    """COCO panoptic predictions for every frame: segment 1 covers the image, the others no pixel."""
    preds = root / "preds" / "panoptic.json"
    annotations = []
    for frame in json.loads((data / "transforms.json").read_text())["frames"]:
        name = Path(frame["file_path"]).stem + ".png"
        h, w = cv2.imread(str(data / frame["file_path"])).shape[:2]
        segment_png(preds.parent / "panoptic" / name, np.ones((h, w), np.int64))
        annotations.append({"file_name": name, "segments_info": segments})
    preds.write_text(json.dumps({"annotations": annotations}))
    return preds


WALL = next(c.id for c in coco_panoptic_categories() if c.name == "wall-other-merged")


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def edit_npz(path: Path, **arrays) -> None:
    with np.load(path) as data:
        content = {k: data[k] for k in data.files}
    content.update({k: f(content[k]) for k, f in arrays.items()})
    np.savez(path, **content)


def first_label(folder: Path, kind: str, suffix: str = ".png") -> Path:
    return sorted((folder / kind).glob(f"*{suffix}"))[0]


def stuff_pixel_gets_instance(semantics_png: Path, instances_png: Path, table_thing: List[bool]) -> None:
    sem = cv2.imread(str(semantics_png), cv2.IMREAD_UNCHANGED)
    inst = cv2.imread(str(instances_png), cv2.IMREAD_UNCHANGED)
    is_stuff = np.array([False] + [not t for t in table_thing])
    ys, xs = np.nonzero(is_stuff[sem])
    inst[ys[0], xs[0]] = 7
    cv2.imwrite(str(instances_png), inst)


# ------------------------------------------------------------------------------------------- the matrix itself
def label_folder_case(damage: Callable[[Path], None]):
    def make(ctx) -> Tuple[str, List[str]]:
        data, folder = unlabelled_dataset(ctx["scene"], ctx["root"])
        damage(folder)
        return "plift-import-labels", ["--data", str(data), "--predictions", str(folder)]
    return make


def coco_case(segments: List[dict], extra: Tuple[str, ...] = ()):
    def make(ctx) -> Tuple[str, List[str]]:
        data, _ = unlabelled_dataset(ctx["scene"], ctx["root"])
        preds = coco_predictions(data, ctx["root"], segments)
        return "plift-import-labels", ["--data", str(data), "--predictions", str(preds), *extra]
    return make


def relabel_partially_under_another_table(ctx) -> Tuple[str, List[str]]:
    data = ctx["root"] / "data"
    shutil.copytree(ctx["scene"], data)  # labelled with the 21-class table
    preds = coco_predictions(data, ctx["root"], [{"id": 1, "category_id": WALL}])
    edit_json(preds, lambda p: p.update(annotations=p["annotations"][:5]))  # predictions for 5 of 12 frames
    return "plift-import-labels", ["--data", str(data), "--predictions", str(preds), "--mapping", "scannet31",
                                   "--overwrite"]


def malformed_transforms(ctx) -> Tuple[str, List[str]]:
    data, folder = unlabelled_dataset(ctx["scene"], ctx["root"])
    (data / "transforms.json").write_text((data / "transforms.json").read_text()[:-40])
    return "plift-import-labels", ["--data", str(data), "--predictions", str(folder)]


def ground_truth_case(damage: Callable[[Path, Path], None]):
    def make(ctx) -> Tuple[str, List[str]]:
        gt = ctx["root"] / "capture"
        shutil.copytree(ctx["capture"], gt)
        data = processed(gt, ctx["root"])
        import_cli.main(import_cli.ImportOptions(data=data, predictions=gt / "machine_labels"))
        damage(gt, data)
        return "plift-attach-ground-truth", ["--data", str(data), "--ground-truth", str(gt / "ground_truth/frames.json")]
    return make


def gt_instance_on_stuff(gt: Path, data: Path) -> None:
    from plift_nerfstudio.labels.class_table import ClassTable

    table = ClassTable.load(gt / "ground_truth" / "classes.json")
    stuff_pixel_gets_instance(gt / "ground_truth/semantics/frame_00002.png", gt / "ground_truth/instances/frame_00002.png",
                              list(table.is_thing))


def gt_image_reencoded(gt: Path, data: Path) -> None:
    image = data / "images" / "frame_00002.png"
    pixels = cv2.imread(str(image))
    ok, jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 5])  # a harsh lossy re-encode
    cv2.imwrite(str(image), cv2.imdecode(jpeg, cv2.IMREAD_COLOR))


def synth_case(args: List[str], make_output: Optional[Callable[[Path], None]] = None):
    def make(ctx) -> Tuple[str, List[str]]:
        out = ctx["root"] / "out"
        if make_output is not None:
            make_output(out)
        return "plift-synth", ["--output", str(out), "--width", "16", "--height", "16", *args]
    return make


def photos(out: Path) -> None:
    (out / "images").mkdir(parents=True)
    cv2.imwrite(str(out / "images" / "IMG_0001.jpg"), np.full((8, 8, 3), 100, np.uint8))
    (out / "transforms.json").write_text("{}")


def run_case(damage: Callable[[Path, Path], None]):
    """plift-eval on a copy of the trained run whose config points at a copy of its dataset; ``damage`` gets the
    copied config.yml and dataset."""
    def make(ctx) -> Tuple[str, List[str]]:
        config_path, data = copy_run(ctx)
        damage(config_path, data)
        return "plift-eval", ["--load-config", str(config_path), "--output-dir", str(ctx["root"] / "eval_out")]
    return make


def copy_run(ctx) -> Tuple[Path, Path]:
    import yaml

    outputs = ctx["trained_run"].parents[3]  # outputs/<experiment>/<method>/<timestamp>/config.yml
    shutil.copytree(outputs, ctx["root"] / "outputs")
    config_path = ctx["root"] / "outputs" / ctx["trained_run"].relative_to(outputs)
    data = ctx["root"] / "data"
    shutil.copytree(ctx["scene"], data)
    config = yaml.load(config_path.read_text(), Loader=yaml.Loader)
    config.output_dir = ctx["root"] / "outputs"
    config.pipeline.datamanager.data = data
    config.pipeline.datamanager.dataparser.data = data
    config_path.write_text(yaml.dump(config))
    return config_path, data


def checkpoint_of(config_path: Path) -> Path:
    return sorted((config_path.parent / "nerfstudio_models").glob("*.ckpt"))[-1]


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def drop_ground_truth(data: Path, only_first: bool) -> None:
    def drop(meta: dict) -> None:
        test = set(meta["test_filenames"])
        frames = [f for f in meta["frames"] if f["file_path"] in test]
        for frame in frames[:1] if only_first else meta["frames"]:
            frame.pop("gt_semantics_path"), frame.pop("gt_instances_path")
    edit_json(data / "transforms.json", drop)


CASES = {
    # class tables
    "class table: duplicate name": (label_folder_case(lambda f: edit_json(
        f / "classes.json", lambda t: t["classes"][8].update(name="chair"))), ["classes.json", "duplicate class name 'chair'"]),
    "class table: duplicate id": (label_folder_case(lambda f: edit_json(
        f / "classes.json", lambda t: t["classes"][4].update(id=4))), ["classes.json", "duplicate class id 4"]),
    # label and probability files
    "label file: class id outside the table": (label_folder_case(lambda f: cv2.imwrite(
        str(first_label(f, "semantics")), np.full((36, 48), 40, np.uint16))), ["semantics/frame_00001.png", "class ids [40]"]),
    "label file: instance on a stuff pixel": (label_folder_case(lambda f: stuff_pixel_gets_instance(
        first_label(f, "semantics"), first_label(f, "instances"), _thing_flags())),
        ["instances/frame_00001.png", "instance id on stuff class"]),
    "probability file: confidence above 1": (label_folder_case(lambda f: edit_npz(
        first_label(f, "probs", ".npz"), confidence=lambda c: c * 0 + 1.5)), ["probs/frame_00001.npz", "'confidence' holds", "above 1"]),
    "probability file: negative class probability": (label_folder_case(lambda f: edit_npz(
        first_label(f, "probs", ".npz"), class_probs=lambda p: p - 0.5)), ["probs/frame_00001.npz", "'class_probs' holds", "negative"]),
    # COCO panoptic predictions and mappings
    "COCO: score not a number": (coco_case([{"id": 1, "category_id": WALL, "score": "high"}]),
                                 ["panoptic.json", "'frame_00001.png'", "score 'high', which is not a number"]),
    "COCO: score outside [0, 1] on an empty segment": (coco_case([{"id": 1, "category_id": WALL, "score": 0.9},
                                                                  {"id": 2, "category_id": WALL, "score": 1.5}]),
                                                       ["panoptic.json", "segment 2 has score 1.5, outside [0, 1]"]),
    "mapping: unknown name": (coco_case([{"id": 1, "category_id": WALL}], ("--mapping", "scannet22")),
                              ["'scannet22' is neither a built-in mapping (scannet21, scannet31)"]),
    "relabel: frames left under another table": (relabel_partially_under_another_table,
                                                 ["transforms.json", "--overwrite relabels the frames that have a prediction"]),
    "transforms.json: malformed": (malformed_transforms, ["transforms.json", "not readable JSON"]),
    # ground truth
    "ground truth: instance on a stuff pixel": (ground_truth_case(gt_instance_on_stuff),
                                                ["ground_truth/instances/frame_00002.png", "instance id on stuff class"]),
    "ground truth: re-encoded image": (ground_truth_case(gt_image_reencoded),
                                       ["images/frame_00002.png", "mean absolute difference is"]),
    # plift-synth options
    "synth: negative seed": (synth_case(["--seed", "-1"]), ["--seed must be a non-negative integer, got -1"]),
    "synth: no test frame": (synth_case(["--num-frames", "5", "--test-every", "8"]), ["--num-frames 5 with --test-every 8"]),
    "synth: --overwrite of a folder it did not write": (synth_case(["--num-frames", "2", "--test-every", "2", "--overwrite"], photos),
                                                        ["/out:", "has no plift_synth_files.json", "Nothing was deleted"]),
    # trained runs and checkpoints
    "checkpoint: truncated": (run_case(lambda c, d: truncate(checkpoint_of(c))),
                              ["step-000000002.ckpt", "cannot be loaded: it is truncated"]),
    "checkpoint: none in the run": (run_case(lambda c, d: checkpoint_of(c).unlink()), ["nerfstudio_models", "holds no checkpoint"]),
    "run config: missing": (run_case(lambda c, d: c.unlink()), ["config.yml", "run config does not exist"]),
    "evaluation: no ground truth": (run_case(lambda c, d: drop_ground_truth(d, only_first=False)),
                                    ["transforms.json", "no ground-truth maps"]),
    "evaluation: ground truth for some test frames only": (run_case(lambda c, d: drop_ground_truth(d, only_first=True)),
                                                           ["transforms.json", "1 of 3 eval frames lack"]),
}


def _thing_flags() -> List[bool]:
    from plift_nerfstudio.labels.class_table import scannet21_class_table

    return list(scannet21_class_table().is_thing)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_naming_the_file_and_changes_nothing(case, tiny_scene_dir, capture, trained_run, tmp_path,
                                                               capsys, monkeypatch) -> None:
    make, expected = CASES[case]
    ctx = {"scene": tiny_scene_dir, "capture": capture, "trained_run": trained_run, "root": tmp_path}
    command, args = make(ctx)
    before = checksums(tmp_path)
    code, message = run(command, args, capsys, monkeypatch)
    assert code == 2, (case, message)
    assert f"{command}: " in message, message
    message = message[message.index(f"{command}: "):]  # after the warnings libraries print
    for part in expected:
        assert part in message, (case, part, message)
    assert checksums(tmp_path) == before, case
    assert not (tmp_path / "eval_out").exists()


def test_ns_train_refuses_a_malformed_transforms_json(tiny_scene_copy: Path, tmp_path: Path) -> None:
    transforms = tiny_scene_copy / "transforms.json"
    transforms.write_text(transforms.read_text().replace('"frames"', '"frames" "', 1))
    before = checksums(tiny_scene_copy)
    code, message = ns_train(["panoptic-lifting-lite", "--data", str(tiny_scene_copy), "--output-dir",
                              str(tmp_path / "outputs"), "--vis", "tensorboard", "--max-num-iterations", "2"])
    assert code == 2, message
    assert f"ns-train: {transforms}: transforms file is not readable JSON" in message
    assert checksums(tiny_scene_copy) == before


def test_ns_train_refuses_a_truncated_checkpoint_and_lists_the_others(trained_run: Path, tiny_scene_dir: Path,
                                                                       tmp_path: Path) -> None:
    models = tmp_path / "nerfstudio_models"
    shutil.copytree(trained_run.parent / "nerfstudio_models", models)
    good = checkpoint_of(trained_run)
    shutil.copy(good, models / "step-000000001.ckpt")  # an older checkpoint beside the damaged newest one
    truncate(models / good.name)
    before = checksums(models)
    code, message = ns_train(["panoptic-lifting-lite", "--data", str(tiny_scene_dir), "--output-dir",
                              str(tmp_path / "outputs"), "--vis", "tensorboard", "--max-num-iterations", "2",
                              "--load-dir", str(models)])
    assert code == 2, message
    assert f"ns-train: {models / good.name}: cannot be loaded: it is truncated" in message
    assert "other checkpoints in its folder: steps [1] (choose one with --load-step)" in message
    assert checksums(models) == before
