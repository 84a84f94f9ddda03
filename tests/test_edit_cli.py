"""plift-edit on a trained run: an edited run folder that nerfstudio's loaders take, the original left untouched,
bad edit lists refused before anything is written."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from plift_nerfstudio.cli.edit import EditOptions, main
from plift_nerfstudio.editing.edit_list import EditListError
from plift_nerfstudio.errors import BAD_INPUT_EXIT_CODE, UserFileError
from plift_nerfstudio.runs import load_trained_pipeline



@pytest.fixture
def trained_run(trained_tiny_run: Path) -> Path:
    return trained_tiny_run


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def biggest_instance(config_path: Path):
    _, pipeline, _, _ = load_trained_pipeline(config_path)
    regions = pipeline.model.instance_regions()
    assert regions, "the tiny run renders no thing instance"
    (instance_id, class_id), _ = max(regions.items(), key=lambda item: item[1].num_voxels)
    return instance_id, pipeline.model.class_table.names[class_id - 1]


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
    assert outputs["rgb"].shape[-1] == 3
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
