"""plift-edit on a trained run: an edited run folder that nerfstudio's loaders take, the original left untouched,
bad edit lists refused before anything is written."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from plift_nerfstudio.cli.edit import EditOptions, main
from plift_nerfstudio.editing.edit_list import EditListError
from plift_nerfstudio.core.errors import BAD_INPUT_EXIT_CODE, UserFileError
from plift_nerfstudio.core.runs import load_trained_pipeline



@pytest.fixture
def trained_run(trained_tiny_run: Path) -> Path:
    return trained_tiny_run


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def instances_by_size(config_path: Path):
    """(id, class name) of the run's instances, the biggest first."""
    _, pipeline, _, _ = load_trained_pipeline(config_path)
    regions = pipeline.model.instance_regions()
    assert regions, "the tiny run renders no thing instance"
    ordered = sorted(regions.items(), key=lambda item: -item[1].num_voxels)
    return [(instance_id, pipeline.model.class_table.names[class_id - 1]) for (instance_id, class_id), _ in ordered]


def biggest_instance(config_path: Path):
    return instances_by_size(config_path)[0]


def edit_file(folder: Path, *entries, name: str = "edits.json") -> Path:
    path = folder / name
    path.write_text(json.dumps({"version": 1, "edits": list(entries)}))
    return path


def test_edited_run_loads_like_any_run_and_leaves_the_original_untouched(trained_run: Path, tmp_path: Path) -> None:
    run_dir = trained_run.parent
    before = digest(run_dir)
    instance_id, name = biggest_instance(trained_run)
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps({"version": 1, "edits": [
        {"op": "duplicate", "instance_id": instance_id, "class": name, "transform": {"translation": [0.2, 0.0, 0.0]}},
    ]}))
    out = tmp_path / "edited"
    config_path = main(EditOptions(load_config=trained_run, edits=edits, output_dir=out))
    assert config_path == out / "config.yml"
    assert digest(run_dir) == before  # nothing of the original run changed
    written = json.loads((out / "edits.json").read_text())
    assert written["up"] is not None and written["edits"][0]["transform"]["pivot"] is not None  # defaults written out
    assert any(e["instance_id"] == instance_id for e in json.loads((out / "instances.json").read_text())["instances"])

    _, pipeline, checkpoint, _ = load_trained_pipeline(config_path)  # what ns-render, ns-eval and ns-viewer do
    assert checkpoint.parent.resolve() == (run_dir / "nerfstudio_models").resolve()
    model = pipeline.model
    camera = pipeline.datamanager.train_dataset.cameras[0:1]
    outputs = model.get_outputs_for_camera(camera)  # applies the edit list at the first render
    assert model.edited is not None and [e.op for e in model.edited.edits] == ["duplicate"]
    assert model.edited.edits[0].copy_id == model.config.num_surrogate_ids + 1
    assert outputs["rgb"].shape[-1] == 3  # where the copy renders: test_an_edited_run_reloads_with_the_copy...
    assert digest(run_dir) == before


def test_plift_edit_refuses_to_write_into_the_run_or_over_a_folder(trained_run: Path, tmp_path: Path) -> None:
    instance_id, name = biggest_instance(trained_run)
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps({"version": 1, "edits": [{"op": "delete", "instance_id": instance_id, "class": name}]}))
    with pytest.raises(UserFileError, match="overlaps"):
        main(EditOptions(load_config=trained_run, edits=edits, output_dir=trained_run.parent / "edited"))
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="--overwrite"):
        main(EditOptions(load_config=trained_run, edits=edits, output_dir=occupied))
    assert (occupied / "mine.txt").read_text() == "keep me"


def run_plift_edit(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "plift-edit"), *map(str, args)], capture_output=True,
                          text=True)


def test_overwrite_replaces_only_an_unchanged_folder_that_plift_edit_wrote(trained_run: Path, tmp_path: Path) -> None:
    empty = edit_file(tmp_path)  # what the viewer saves before any edit
    users = tmp_path / "data"
    users.mkdir()
    (users / "mine.txt").write_text("keep me")
    done = run_plift_edit("--load-config", trained_run, "--edits", empty, "--output-dir", users, "--overwrite")
    assert done.returncode == BAD_INPUT_EXIT_CODE, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert str(users) in done.stderr and "plift_edit_files.json" in done.stderr
    assert digest(users) == {"mine.txt": hashlib.sha256(b"keep me").hexdigest()}

    instance_id, name = biggest_instance(trained_run)
    out = tmp_path / "edited"
    main(EditOptions(load_config=trained_run, edits=empty, output_dir=out))
    deletion = edit_file(tmp_path, {"op": "delete", "instance_id": instance_id, "class": name}, name="delete.json")
    main(EditOptions(load_config=trained_run, edits=deletion, output_dir=out, overwrite=True))  # its own: replaced
    assert [e["op"] for e in json.loads((out / "edits.json").read_text())["edits"]] == ["delete"]
    assert not list(tmp_path.glob(".edited*"))  # no staging folder left
    (out / "notes.txt").write_text("mine")  # the user wrote into it since
    with pytest.raises(FileExistsError, match="did not write: notes.txt"):
        main(EditOptions(load_config=trained_run, edits=empty, output_dir=out, overwrite=True))
    (out / "notes.txt").unlink()
    (out / "edits.json").write_text((out / "edits.json").read_text().replace("delete", "delete "))  # or changed it
    with pytest.raises(FileExistsError, match="changed after plift-edit wrote them: edits.json"):
        main(EditOptions(load_config=trained_run, edits=empty, output_dir=out, overwrite=True))
    assert "delete " in (out / "edits.json").read_text()


def test_an_interrupted_plift_edit_leaves_the_earlier_output_whole(trained_run: Path, tmp_path: Path, monkeypatch) -> None:
    import plift_nerfstudio.editing.edited_run as edited_run

    instance_id, name = biggest_instance(trained_run)
    out = tmp_path / "edited"
    main(EditOptions(load_config=trained_run, edits=edit_file(tmp_path), output_dir=out))
    before = digest(out)

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(edited_run.yaml, "dump", interrupted)  # the config is written after the edit list
    deletion = edit_file(tmp_path, {"op": "delete", "instance_id": instance_id, "class": name}, name="delete.json")
    with pytest.raises(KeyboardInterrupt):
        main(EditOptions(load_config=trained_run, edits=deletion, output_dir=out, overwrite=True))
    assert digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["delete.json", "edited", "edits.json"]


def test_an_empty_edit_list_writes_a_run_that_renders_the_original(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "edited"
    done = run_plift_edit("--load-config", trained_run, "--edits", edit_file(tmp_path), "--output-dir", out)
    assert done.returncode == 0, done.stderr
    assert "holds no edits" in done.stdout and "Traceback" not in done.stdout + done.stderr
    _, original, _, _ = load_trained_pipeline(trained_run)
    _, edited, _, _ = load_trained_pipeline(out / "config.yml")
    camera = original.datamanager.train_dataset.cameras[0:1]
    a, b = original.model.get_outputs_for_camera(camera), edited.model.get_outputs_for_camera(camera)
    assert edited.model.edited is None
    for key in ("rgb", "instance_id", "semantic_id"):
        assert torch.equal(a[key], b[key]), key


def test_an_edited_run_reloads_with_the_copy_where_it_was_and_the_deletion_gone(trained_run: Path, tmp_path: Path) -> None:
    """What the session rendered before saving is what ns-render/ns-eval render after plift-edit (a fresh load
    through nerfstudio's eval_setup)."""
    from nerfstudio.utils.eval_utils import eval_setup

    from plift_nerfstudio.editing.edit_list import load_edit_list

    instances = instances_by_size(trained_run)
    assert len(instances) >= 2, f"the tiny run renders {instances}: two instances are needed"
    (copied_id, copied_name), (deleted_id, deleted_name) = instances[:2]
    edits = edit_file(tmp_path, {"op": "delete", "instance_id": deleted_id, "class": deleted_name},
                      {"op": "duplicate", "instance_id": copied_id, "class": copied_name,
                       "transform": {"translation": [0.15, 0.1, 0.0], "rotation_deg": 20}})
    _, pipeline, _, _ = load_trained_pipeline(trained_run)
    model = pipeline.model
    deleted_class = model.class_table.names.index(deleted_name) + 1
    copy_id = model.config.num_surrogate_ids + 1
    cameras = pipeline.datamanager.train_dataset.cameras
    model.apply_edits(load_edit_list(edits), str(edits))
    before = [model.get_outputs_for_camera(cameras[i : i + 1]) for i in range(len(cameras))]
    view = max(range(len(cameras)), key=lambda i: int((before[i]["instance_id"] == copy_id).sum()))
    copy_before = before[view]["instance_id"][..., 0] == copy_id
    assert copy_before.sum() >= 20, "the copy shows in no training view"

    out = tmp_path / "edited"
    main(EditOptions(load_config=trained_run, edits=edits, output_dir=out))
    _, reloaded, _, _ = eval_setup(out / "config.yml", test_mode="inference")
    after = reloaded.model.get_outputs_for_camera(reloaded.datamanager.train_dataset.cameras[view : view + 1])
    copy_after = after["instance_id"][..., 0] == copy_id
    iou = float((copy_before & copy_after).sum() / (copy_before | copy_after).sum())
    assert iou >= 0.95, f"the copy's pixels after reloading overlap those before saving with IoU {iou:.3f}"
    gone = (after["instance_id"][..., 0] == deleted_id) & (after["semantic_id"][..., 0] == deleted_class)
    assert not gone.any(), f"{deleted_name} {deleted_id} still shows on {int(gone.sum())} pixels"


def test_plift_edit_names_the_file_and_exits_2_on_an_unknown_instance(trained_run: Path, tmp_path: Path) -> None:
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps({"version": 1, "edits": [{"op": "delete", "instance_id": 999, "class": "chair"}]}))
    with pytest.raises(EditListError, match="no instance 999"):
        main(EditOptions(load_config=trained_run, edits=edits, output_dir=tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    done = subprocess.run([str(Path(sys.executable).parent / "plift-edit"), "--load-config", str(trained_run),
                           "--edits", str(edits), "--output-dir", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == BAD_INPUT_EXIT_CODE
    assert str(edits) in done.stderr and "no instance 999" in done.stderr
