"""Which exported points (or voxels) belong to whom: one group per thing instance (surrogate id and class: two classes
may share an id) and one per stuff class, with the stray specks of each group left out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from plift_nerfstudio.labels.class_table import ClassTable


@dataclass(frozen=True, order=True)
class GroupKey:
    """A thing instance (instance_id > 0) or a stuff class (instance_id == 0)."""

    class_id: int
    instance_id: int

    @property
    def is_thing(self) -> bool:
        return self.instance_id > 0

    def name(self, class_table: ClassTable) -> str:
        """File-name stem: ``chair-12`` for a thing, ``wall`` for a stuff class."""
        slug = class_table.names[self.class_id - 1].replace(" ", "_").replace("/", "_")
        return f"{slug}-{self.instance_id}" if self.is_thing else slug


def group_indices(class_id: np.ndarray, instance_id: np.ndarray) -> Dict[GroupKey, np.ndarray]:
    """Indices of the points of each group (class id 0, void, is left out)."""
    keys = class_id.astype(np.int64) * 1_000_000 + instance_id.astype(np.int64)
    order = np.argsort(keys, kind="stable")
    values, starts = np.unique(keys[order], return_index=True)
    out: Dict[GroupKey, np.ndarray] = {}
    for value, part in zip(values, np.split(order, starts[1:])):
        if value // 1_000_000 > 0:
            out[GroupKey(int(value // 1_000_000), int(value % 1_000_000))] = part
    return out


def main_clusters(positions: np.ndarray, eps: float, min_share: float = 0.1, min_points: int = 4) -> np.ndarray:
    """Mask of the points in the DBSCAN clusters (radius ``eps``) holding at least ``min_share`` of the largest one:
    a thing's stray specks (a few rays that rendered its id elsewhere) go."""
    import open3d as o3d

    if len(positions) < min_points:
        return np.zeros(len(positions), dtype=bool)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(positions, dtype=np.float64)))
    labels = np.asarray(cloud.cluster_dbscan(eps=eps, min_points=min_points, print_progress=False))
    if (labels >= 0).sum() == 0:
        return np.zeros(len(positions), dtype=bool)
    sizes = np.bincount(labels[labels >= 0])
    keep = np.flatnonzero(sizes >= max(min_points, min_share * sizes.max()))
    return np.isin(labels, keep)


def statistical_inliers(positions: np.ndarray, neighbours: int = 20, std_ratio: float = 2.0) -> np.ndarray:
    """Mask of the points whose mean distance to their ``neighbours`` nearest is within ``std_ratio`` standard
    deviations of the average (open3d's statistical outlier removal, as ``ns-export pointcloud`` cleans)."""
    import open3d as o3d

    if len(positions) <= neighbours:
        return np.ones(len(positions), dtype=bool)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(positions, dtype=np.float64)))
    _, kept = cloud.remove_statistical_outlier(nb_neighbors=neighbours, std_ratio=std_ratio)
    mask = np.zeros(len(positions), dtype=bool)
    mask[np.asarray(kept, dtype=np.int64)] = True
    return mask


def select_instances(keys: Sequence[GroupKey], wanted: Sequence[Union[int, str]], class_table: ClassTable,
                     source: str = "--instances") -> List[GroupKey]:
    """The thing groups ``wanted`` names: ``chair-3`` (the file-name stem: class and id) is that instance, ``3`` every
    instance with surrogate id 3 (an id two classes share is two instances). A name the scene lacks is refused,
    listing the instances it has."""
    things = sorted((k for k in keys if k.is_thing), key=lambda k: (k.instance_id, k.class_id))
    have = ", ".join(k.name(class_table) for k in things) or "none"
    chosen: List[GroupKey] = []
    for entry in wanted:
        text = str(entry).strip()
        if text.isdigit():
            matches = [k for k in things if k.instance_id == int(text)]
        else:
            matches = [k for k in things if text in (k.name(class_table),
                                                      f"{class_table.names[k.class_id - 1]}-{k.instance_id}")]
        if not matches:
            raise ValueError(f"{source}: the scene has no instance {text} (its instances: {have}; plift-edit "
                             "--load-config lists them)")
        chosen += [k for k in matches if k not in chosen]
    return chosen


def clean_groups(positions: np.ndarray, class_id: np.ndarray, instance_id: np.ndarray, eps: float,
                 min_points: int, keys: Optional[Sequence[GroupKey]] = None) -> Tuple[Dict[GroupKey, np.ndarray], List[dict]]:
    """Indices of each group's points without its stray specks (things only: DBSCAN pieces smaller than a tenth of
    its largest); groups left with fewer than ``min_points`` are listed instead. ``keys``: only these groups."""
    groups = group_indices(class_id, instance_id)
    cleaned: Dict[GroupKey, np.ndarray] = {}
    left_out: List[dict] = []
    for key, members in sorted(groups.items()):
        if keys is not None and key not in keys:
            continue
        kept = members[main_clusters(positions[members], eps)] if key.is_thing else members
        if len(kept) < min_points:
            left_out.append({"instance_id": key.instance_id, "class_id": key.class_id, "points": int(len(members)),
                             "why": f"fewer than {min_points} points once its specks are removed"})
            continue
        cleaned[key] = kept
    return cleaned, left_out


def absorb_fragments(groups: Dict[GroupKey, np.ndarray], positions: np.ndarray, min_inside: float = 0.5
                     ) -> Tuple[Dict[GroupKey, np.ndarray], Dict[GroupKey, List[GroupKey]]]:
    """Thing groups whose box lies mostly (``min_inside`` of its volume) inside the box of a bigger group of the same
    class join it: one object whose surface the field split between two surrogate ids. Objects side by side keep
    their own ids (their boxes barely overlap). Returns the groups and, per kept group, the ones it absorbed."""
    things = sorted((k for k in groups if k.is_thing), key=lambda k: -len(groups[k]))
    boxes = {k: (positions[groups[k]].min(0), positions[groups[k]].max(0)) for k in things}
    out = dict(groups)
    absorbed: Dict[GroupKey, List[GroupKey]] = {}
    for i, small in enumerate(things):
        lo, hi = boxes[small]
        volume = float(np.prod(np.maximum(hi - lo, 1e-9)))
        for big in things[:i]:
            if big.class_id != small.class_id or big not in out:
                continue
            big_lo, big_hi = boxes[big]
            inside = float(np.prod(np.clip(np.minimum(hi, big_hi) - np.maximum(lo, big_lo), 0, None))) / volume
            if inside >= min_inside:
                out[big] = np.concatenate([out[big], out.pop(small)])
                absorbed.setdefault(big, []).append(small)
                break
    return out, absorbed
