"""An edit list checked against a trained scene's instances and taken into the model frame."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from plift_nerfstudio.editing.dataset_frame import DatasetFrame
from plift_nerfstudio.editing.edit_list import EditList, EditListError
from plift_nerfstudio.editing.edited_field import ResolvedEdit
from plift_nerfstudio.editing.regions import InstanceRegion, RegionKey, cell_centres
from plift_nerfstudio.labels.class_table import ClassTable


def footprint_centre(points: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Centre of the footprint of ``points`` [N, 3] on the floor: the area centroid of the convex hull of their
    projection on the plane normal to ``up``, at the height (along ``up``) of the lowest point. Turning about ``up``
    through it spins an object in place; scaling about it keeps the object on the floor."""
    from scipy.spatial import ConvexHull, QhullError

    points = np.asarray(points, dtype=np.float64)
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    helper = np.eye(3)[int(np.argmin(np.abs(up)))]
    across = np.cross(up, helper)
    across /= np.linalg.norm(across)
    basis = np.stack([across, np.cross(up, across)])  # [2, 3], orthonormal, normal to up
    flat = points @ basis.T
    centre = (flat.min(0) + flat.max(0)) / 2  # a line or a point: the middle of its extent
    if len(np.unique(flat.round(9), axis=0)) >= 3:
        try:
            hull = flat[ConvexHull(flat).vertices]
            nxt = np.roll(hull, -1, axis=0)
            cross = hull[:, 0] * nxt[:, 1] - nxt[:, 0] * hull[:, 1]
            if abs(cross.sum()) > 1e-12:
                centre = ((hull + nxt) * cross[:, None]).sum(0) / (3 * cross.sum())
        except QhullError:  # all points on one line
            pass
    return centre @ basis + float((points @ up).min()) * up


def default_pivot(region: InstanceRegion, frame: DatasetFrame, up: np.ndarray) -> np.ndarray:
    """The pivot of a transform that gives none (dataset frame): the centre of the instance's footprint on the floor,
    from the surface points the views see (the corners of its box for a region found without views)."""
    if region.seen_cells is not None and region.lattice is not None and len(region.seen_cells):
        points = cell_centres(region.seen_cells, region.lattice)
    else:
        corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float64)
        points = region.lo + corners * (region.hi - region.lo)
    return footprint_centre(frame.points_to_dataset(points), up)


def edit_list_up(edit_list: EditList, frame: DatasetFrame) -> np.ndarray:
    """The rotation axis of ``edit_list`` in the dataset frame (its own, or the viewer's up)."""
    return np.asarray(edit_list.up, dtype=np.float64) if edit_list.up is not None else frame.model_up_in_dataset()


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
    up = edit_list_up(edit_list, frame)
    known = ", ".join(f"{i} ({class_table.names[c - 1]})" for i, c in sorted(regions)) or "none"
    resolved: List[ResolvedEdit] = []
    next_id = num_surrogate_ids + 1
    for index, edit in enumerate(edit_list.edits):
        where = f"edit {index} ({edit.op} of {edit.class_name} {edit.instance_id})"
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
            pivot = default_pivot(region, frame, up)
            matrix = frame.matrix_to_model(edit.transform.matrix(up, pivot))
            if edit.op == "duplicate":
                copy_id, next_id = next_id, next_id + 1
            else:
                copy_id = edit.instance_id
        resolved.append(ResolvedEdit(edit.op, edit.instance_id, class_id, region, matrix, copy_id))
    return resolved
