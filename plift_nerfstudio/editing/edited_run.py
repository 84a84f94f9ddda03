"""An edited scene as a run folder that every ``ns-*`` command loads like a training run.

The folder holds ``config.yml`` (the original run's config, pointing to the original checkpoints by absolute path and
to the folder's ``edits.json``), ``edits.json`` (the edit list with pivots and the up axis filled in),
``instances.json`` (every instance the field holds: id, class, box in the dataset frame) and ``plift_edit_files.json``
(what plift-edit wrote, with checksums). Nothing of the original run is written. The folder is written in a staging
folder beside it and moved into place at the end; ``--overwrite`` replaces only a folder that plift-edit wrote and
nobody changed since (``plift_nerfstudio/core/owned_folder.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import yaml

from plift_nerfstudio.core import owned_folder
from plift_nerfstudio.editing.dataset_frame import DatasetFrame
from plift_nerfstudio.editing.edit_list import EditList
from plift_nerfstudio.editing.regions import InstanceRegion
from plift_nerfstudio.editing.resolve import default_pivot, edit_list_up
from plift_nerfstudio.core.errors import UserFileError
from plift_nerfstudio.labels.class_table import ClassTable

EDITED_RUN = owned_folder.FolderOwner(
    generator="plift-edit",
    manifest_file="plift_edit_files.json",
    staging_marker=".plift-edit-incomplete",
    option="--output-dir",
    not_ours="a folder of your own, a dataset or a run",
)
EDITED_TIMESTAMP = "edited"


def region_in_dataset_frame(region: InstanceRegion, frame: DatasetFrame) -> Dict[str, List[float]]:
    """Axis-aligned box (dataset frame) around the corners of a model-frame region, and its centre."""
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float64)
    points = frame.points_to_dataset(region.lo + corners * (region.hi - region.lo))
    seen_lo = region.lo if region.seen_lo is None else region.seen_lo
    seen = frame.points_to_dataset(seen_lo + corners * region.seen_size)
    return {"lo": points.min(0).round(5).tolist(), "hi": points.max(0).round(5).tolist(),
            "centre": frame.points_to_dataset(region.centre[None])[0].round(5).tolist(),
            "seen_size": (seen.max(0) - seen.min(0)).round(5).tolist()}


def instances_json(regions: Dict[Tuple[int, int], InstanceRegion], class_table: ClassTable, frame: DatasetFrame) -> dict:
    return {
        "frame": "dataset",
        "instances": [
            {"instance_id": i, "class": class_table.names[c - 1], "voxels": r.num_voxels,
             **region_in_dataset_frame(r, frame)}
            for (i, c), r in sorted(regions.items())
        ],
    }


def explicit_edit_list(edit_list: EditList, regions: Dict[Tuple[int, int], InstanceRegion], class_table: ClassTable,
                       frame: DatasetFrame) -> EditList:
    """The edit list with the defaults written out: the up axis and each transform's pivot (the centre of its
    instance's footprint), so that the file alone says where every copy goes."""
    up = edit_list_up(edit_list, frame)
    edits = []
    for edit in edit_list.edits:
        if edit.transform is not None and edit.transform.pivot is None:
            region = regions[(edit.instance_id, class_table.names.index(edit.class_name) + 1)]
            pivot = default_pivot(region, frame, up)
            transform = dataclasses.replace(edit.transform, pivot=tuple(float(v) for v in pivot.round(6)))
            edit = dataclasses.replace(edit, transform=transform)
        edits.append(edit)
    return EditList(edits=edits, up=tuple(float(v) for v in np.asarray(up).round(8)))  # type: ignore[arg-type]


def check_output_folder(output_dir: Path, run_dir: Path, overwrite: bool) -> None:
    """Refuse to write into the original run, over an existing folder without ``overwrite``, or (even with it) over
    a folder that is not an unchanged earlier output of plift-edit; nothing is touched."""
    out, run = output_dir.resolve(), run_dir.resolve()
    if out == run or run in out.parents or out in run.parents:
        raise UserFileError(output_dir, f"is the run folder {run_dir} or overlaps it; an edited scene goes into a "
                                        "folder of its own (nothing of the original run is changed)")
    owned_folder.check_replaceable(output_dir, EDITED_RUN, overwrite)


def write_edited_run(config, config_path: Path, output_dir: Path, edit_list: EditList, instances: dict,
                     overwrite: bool) -> Path:
    """Write the edited run folder (through a staging folder); returns its config.yml."""
    check_output_folder(output_dir, config_path.parent, overwrite)
    final = output_dir.resolve()
    edited = copy.deepcopy(config)
    checkpoints = config.get_checkpoint_dir().resolve()
    edited.pipeline.model.edits = final / "edits.json"
    # nerfstudio finds checkpoints at output_dir/experiment_name/method_name/timestamp/relative_model_dir; an
    # absolute relative_model_dir makes that the original run's checkpoints
    edited.output_dir = final.parent
    edited.experiment_name = final.name
    edited.timestamp = EDITED_TIMESTAMP
    edited.relative_model_dir = checkpoints
    edited.load_dir = None
    with owned_folder.staged_output(final, EDITED_RUN, overwrite) as staging:
        edit_list.save(staging / "edits.json")
        (staging / "instances.json").write_text(json.dumps(instances, indent=2) + "\n")
        (staging / "config.yml").write_text(yaml.dump(edited), "utf8")
    return final / "config.yml"
