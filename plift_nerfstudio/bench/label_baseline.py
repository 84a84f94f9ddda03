"""A naive 3D export without lifting, to compare with: the 2D machine labels back-projected with the rendered depth
and merged by majority.

Each surface point takes the class and the (per-frame) instance of the 2D label at its pixel. On a voxel lattice,
each voxel takes the majority class of its points. A 2D instance of one frame is a segment; two segments of the same
class from different frames are the same object when they share at least half the voxels of the smaller one (joined
transitively). Each voxel takes the majority object of its points; every point takes its voxel's class and object (void for a thing
class without one).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components


def _majority(group: np.ndarray, value: np.ndarray, num_groups: int) -> np.ndarray:
    """Most frequent non-zero ``value`` per ``group`` index (0 where a group has none)."""
    out = np.zeros(num_groups, dtype=np.int64)
    valid = value > 0
    if not valid.any():
        return out
    values, inverse = np.unique(value[valid], return_inverse=True)
    counts = sparse.coo_matrix((np.ones(int(valid.sum())), (group[valid], inverse)), shape=(num_groups, len(values))).tocsr()
    has = np.asarray(counts.sum(1)).ravel() > 0
    out[has] = values[np.asarray(counts[has].argmax(1)).ravel()]
    return out


def merge_back_projected(positions: np.ndarray, class_2d: np.ndarray, segment_2d: np.ndarray, voxel: float,
                         is_thing_lut: np.ndarray, min_overlap: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """Class id [N] and 3D instance id [N] (1.., 0 for stuff) of back-projected points.

    ``class_2d`` [N]: the 2D label's class at each point's pixel (0 void); ``segment_2d`` [N]: an id unique per (frame,
    2D instance) for thing pixels, 0 otherwise; ``is_thing_lut`` [C + 1] bool."""
    cells = np.floor(positions / voxel).astype(np.int64)
    _, voxel_of = np.unique(cells, axis=0, return_inverse=True)
    voxel_of = voxel_of.ravel()
    num_voxels = int(voxel_of.max()) + 1 if len(voxel_of) else 0
    voxel_class = _majority(voxel_of, class_2d, num_voxels)
    thing = segment_2d > 0
    segments, segment_index = np.unique(segment_2d[thing], return_inverse=True)
    instance = np.zeros(len(positions), dtype=np.int64)
    if len(segments):
        membership = sparse.coo_matrix((np.ones(len(segment_index)), (segment_index, voxel_of[thing])),
                                       shape=(len(segments), num_voxels)).tocsr()
        membership.data[:] = 1.0  # a voxel counts once per segment
        sizes = np.asarray(membership.sum(1)).ravel()
        segment_class = _majority(segment_index, class_2d[thing], len(segments))
        shared = (membership @ membership.T).tocoo()
        smaller = np.minimum(sizes[shared.row], sizes[shared.col])
        link = (shared.data >= min_overlap * smaller) & (segment_class[shared.row] == segment_class[shared.col])
        graph = sparse.coo_matrix((np.ones(int(link.sum())), (shared.row[link], shared.col[link])),
                                  shape=(len(segments), len(segments)))
        _, component = connected_components(graph, directed=False)
        voxel_object = _majority(voxel_of[thing], component[segment_index] + 1, num_voxels)
        instance = voxel_object[voxel_of]
    class_id = voxel_class[voxel_of]
    instance = np.where(is_thing_lut[class_id], instance, 0)
    class_id = np.where(is_thing_lut[class_id] & (instance == 0), 0, class_id)  # a thing class without an object: void
    return class_id, instance
