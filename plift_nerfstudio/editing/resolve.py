"""An edit list checked against a trained scene's instances and taken into the model frame."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from plift_nerfstudio.editing.dataset_frame import DatasetFrame
from plift_nerfstudio.editing.edit_list import EditList, EditListError
from plift_nerfstudio.editing.edited_field import ResolvedEdit
from plift_nerfstudio.editing.regions import InstanceRegion, RegionKey
from plift_nerfstudio.labels.class_table import ClassTable


def resolve_edits(
    edit_list: EditList,
    regions: Dict[RegionKey, InstanceRegion],
    class_table: ClassTable,
    frame: DatasetFrame,
    num_surrogate_ids: int,
    source: str = "<edit list>",
) -> List[ResolvedEdit]:
    """Each edit with its instance's region and its copy's matrix in the model frame. Unknown ids, stuff classes and
    class names that disagree with the scene are refused with :class:`EditListError` naming ``source``."""
    up = np.asarray(edit_list.up, dtype=np.float64) if edit_list.up is not None else frame.model_up_in_dataset()
    known = ", ".join(f"{i} ({class_table.names[c - 1]})" for i, c in sorted(regions)) or "none"
    resolved: List[ResolvedEdit] = []
    next_id = num_surrogate_ids + 1
    for index, edit in enumerate(edit_list.edits):
        where = f"edit {index} ({edit.op} of instance {edit.instance_id})"
        if edit.class_name not in class_table.names:
            raise EditListError(source, f"{where}: class {edit.class_name!r} is not in the dataset's class table "
                                        f"({', '.join(class_table.names)})")
        class_id = class_table.names.index(edit.class_name) + 1
        if not class_table.is_thing[class_id - 1]:
            raise EditListError(source, f"{where}: {edit.class_name!r} is a stuff class; only thing instances can be "
                                        "deleted, duplicated or moved")
        region = regions.get((edit.instance_id, class_id))
        if region is None:
            same_id = [class_table.names[c - 1] for i, c in sorted(regions) if i == edit.instance_id]
            if same_id:
                raise EditListError(source, f"{where}: instance {edit.instance_id} is a {' and a '.join(map(repr, same_id))} "
                                            f"in this scene, not a {edit.class_name!r}")
            raise EditListError(source, f"{where}: the scene has no instance {edit.instance_id} (instances found: "
                                        f"{known})")
        matrix, copy_id = None, None
        if edit.transform is not None:
            pivot = frame.points_to_dataset(region.centre[None])[0]
            matrix = frame.matrix_to_model(edit.transform.matrix(up, pivot))
            if edit.op == "duplicate":
                copy_id, next_id = next_id, next_id + 1
            else:
                copy_id = edit.instance_id
        resolved.append(ResolvedEdit(edit.op, edit.instance_id, class_id, region, matrix, copy_id))
    return resolved
