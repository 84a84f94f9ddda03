"""The structure of a room's label errors, beyond their averages: what makes lifting easy or hard.

Measured on the written labels against the ground truth (``transforms.json`` of a plift-realistic-scene output, or
any dataset with ``gt_objects_path`` per frame):
- ``majority_wrong_share``: share of objects (room structure excepted) whose class in the training views' vote is
  wrong: the vote of the label-majority reference below, each pixel voting with its class distribution weighted
  by its confidence, as the semantic loss reads the labels.
- ``mean_confusion_run``: mean length of the runs of consecutive frames (in walk order, over the frames that see the
  object) in which an object is shown as another class.
- ``true_class_rank``: over wrong label segments (their class is not the ground-truth class under most of them),
  where the true class stands in the segment's class distribution (2 = runner-up; ``absent`` = no more than the
  floor every class gets).
- ``confidence_auroc``: how well a label segment's confidence tells right segments from wrong ones (0.5 = not at
  all, 1 = perfectly).
- ``label_majority``: PQscene / PQ / mIoU (panopticapi) on the test views of every true object given the class the
  training views' labels vote for, with perfect shapes and ids (``evaluation/label_majority.py``): the ceiling that
  following the labels' consensus allows.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np
import torch
from torchmetrics.functional.classification import binary_auroc

from plift_nerfstudio.labels.frame_labels import read_label_png

MIN_OBJECT_SHARE = 0.005
"""An object takes part in a view's vote (and its runs) when its labelled pixels cover at least this share of the
image there: smaller ones lose their class to the blur of low-resolution masks, which is not a confusion."""
MIN_SEGMENT_PIXELS = 20
"""Label segments smaller than this are left out of the rank histogram and the AUROC."""
ABSENT_ABOVE = 1.5
"""A true class is 'absent' from a distribution when its probability is under this many times the smallest one."""
RANK_BINS = ("2", "3", "4-5", "6+", "absent")
STRUCTURE_CLASSES = ("wall", "floor", "ceiling")


@dataclass
class LabelStructure:
    majority_wrong_share: float
    majority_wrong_objects: List[str]
    mean_confusion_run: float
    confusion_runs: int
    true_class_rank: Dict[str, float]
    """Share of wrong segments per rank bin (RANK_BINS)."""
    confidence_auroc: float
    objects_voted: int
    wrong_segment_share: float
    label_majority: Dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        ranks = ", ".join(f"{k}: {100 * v:.0f}%" for k, v in self.true_class_rank.items())
        return (f"majority-wrong objects {100 * self.majority_wrong_share:.0f}% ({len(self.majority_wrong_objects)} of "
                f"{self.objects_voted}); mean confusion run {self.mean_confusion_run:.1f} frames ({self.confusion_runs} "
                f"runs); true class rank in wrong segments: {ranks}; confidence AUROC {self.confidence_auroc:.2f}; label "
                f"majority PQscene / PQ / mIoU " + " / ".join(f"{self.label_majority.get(k, float('nan')):.1f}"
                                                             for k in ("scene_pq", "pq", "miou")))


def _rank_bin(rank: np.ndarray, absent: np.ndarray) -> Dict[str, float]:
    total = max(len(rank), 1)
    bins = {"2": rank == 2, "3": rank == 3, "4-5": (rank >= 4) & (rank <= 5), "6+": rank >= 6}
    out = {k: float((v & ~absent).sum()) / total for k, v in bins.items()}
    out["absent"] = float(absent.sum()) / total
    return out


def label_segments(semantics: np.ndarray, instances: np.ndarray) -> np.ndarray:
    """One key per label segment (class, instance) per pixel; -1 on void."""
    key = semantics.astype(np.int64) * 65536 + instances.astype(np.int64)
    return np.where(semantics > 0, key, -1)


def measure_label_structure(root: Path) -> LabelStructure:
    """The label-error structure of the dataset at ``root`` (see the module docstring)."""
    from plift_nerfstudio.scenes.realistic.layout import CLASS_ID

    meta = json.loads((root / "transforms.json").read_text())
    layout = json.loads((root / "layout.json").read_text())
    object_class = {o["index"]: o["class"] for o in layout["objects"]}
    object_name = {o["index"]: o["name"] for o in layout["objects"]}
    train = set(meta["train_filenames"])
    votes: Dict[int, Counter] = {}
    shown_seq: Dict[int, List[bool]] = {}
    ranks: List[int] = []
    absent: List[bool] = []
    confidences: List[float] = []
    rights: List[int] = []
    walk = set(meta["train_filenames"]) | set(meta["test_filenames"])
    for frame in (f for f in meta["frames"] if f["file_path"] in walk):  # in walk order
        sem = read_label_png(root / frame["semantics_path"]).astype(np.int64)
        inst = read_label_png(root / frame["instances_path"]).astype(np.int64)
        gt = read_label_png(root / frame["gt_semantics_path"]).astype(np.int64)
        objects = read_label_png(root / frame["gt_objects_path"]).astype(np.int64)
        min_pixels = MIN_OBJECT_SHARE * gt.size
        for obj in np.unique(objects):
            if obj == 0 or object_class.get(int(obj)) in STRUCTURE_CLASSES:
                continue
            mask = (objects == obj) & (gt > 0)
            shown = sem[mask]
            shown = shown[shown > 0]
            if len(shown) < min_pixels:
                continue
            top = int(np.bincount(shown).argmax())
            shown_seq.setdefault(int(obj), []).append(top != CLASS_ID[object_class[int(obj)]])
            if frame["file_path"] in train:
                votes.setdefault(int(obj), Counter())[top] += 1
        # each label segment: right or wrong by the ground-truth class under most of it; its distribution and
        # confidence (stored at half resolution) read at its pixels there
        with np.load(root / frame["class_probs_path"]) as data:
            probs = data["class_probs"].astype(np.float32)
            conf = data["confidence"].astype(np.float32)
        h, w = probs.shape[:2]
        segments = label_segments(sem, inst)
        segments_small = cv2.resize(segments.astype(np.float64), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int64)
        for key in np.unique(segments):
            if key < 0:
                continue
            mask = segments == key
            under = gt[mask]
            under = under[under > 0]
            small = segments_small == key
            if len(under) < MIN_SEGMENT_PIXELS or not small.any():
                continue
            true_cls, shown_cls = int(np.bincount(under).argmax()), int(key // 65536)
            distribution = np.median(probs[small], axis=0)
            confidences.append(float(np.median(conf[small])))
            rights.append(int(true_cls == shown_cls))
            if true_cls != shown_cls:
                p_true = distribution[true_cls - 1]
                ranks.append(int(1 + (distribution > p_true).sum()))
                absent.append(bool(p_true <= ABSENT_ABOVE * distribution.min()))
    majority, vote_winner = label_majority_scores(root, meta)
    voted = [o for o in sorted(votes) if vote_winner.get(o, 0) > 0]
    majority_wrong = [object_name[o] for o in voted if vote_winner[o] != CLASS_ID[object_class[o]]]
    runs: List[int] = []
    for seq in shown_seq.values():
        length = 0
        for is_wrong in seq + [False]:
            if is_wrong:
                length += 1
            elif length:
                runs.append(length)
                length = 0
    conf_all = torch.tensor(confidences, dtype=torch.float32)
    right_all = torch.tensor(rights, dtype=torch.int64)
    auroc = float(binary_auroc(conf_all, right_all)) if 0 < int(right_all.sum()) < len(right_all) else float("nan")
    return LabelStructure(
        majority_wrong_share=len(majority_wrong) / max(len(voted), 1),
        majority_wrong_objects=majority_wrong,
        mean_confusion_run=float(np.mean(runs)) if runs else 0.0,
        confusion_runs=len(runs),
        true_class_rank=_rank_bin(np.array(ranks, np.int64), np.array(absent, bool)),
        confidence_auroc=auroc,
        objects_voted=len(voted),
        wrong_segment_share=1 - float(right_all.float().mean()) if len(rights) else 0.0,
        label_majority=majority,
    )


def label_majority_scores(root: Path, meta: dict) -> Tuple[Dict[str, float], Dict[int, int]]:
    """The label-majority reference's panopticapi scores on the test views (see the module docstring), from the
    dataset alone (the training views' labels read as the semantic loss reads them), and the class each object's
    vote gives it."""
    from plift_nerfstudio.evaluation.diagnostics import label_majority_maps, read_frame_maps, training_votes
    from plift_nerfstudio.evaluation.label_majority import majority_of_votes
    from plift_nerfstudio.evaluation.metrics import protocol_scores
    from plift_nerfstudio.labels.class_table import ClassTable
    from plift_nerfstudio.labels.dataset_labels import load_label_store
    from plift_nerfstudio.labels.frame_labels import CLASS_PROBS_KEY, INSTANCES_KEY, SEMANTICS_KEY, FrameLabelFiles

    by_path = {f["file_path"]: f for f in meta["frames"]}
    train = [by_path[p] for p in meta["train_filenames"]]
    test = [by_path[p] for p in meta["test_filenames"]]
    table = ClassTable.load(root / meta.get("panoptic_labels", {}).get("class_table", "labels/classes.json"))
    files = [FrameLabelFiles(root / f[SEMANTICS_KEY], root / f[INSTANCES_KEY],
                             root / f[CLASS_PROBS_KEY] if f.get(CLASS_PROBS_KEY) else None) for f in train]
    hw = read_label_png(root / train[0][SEMANTICS_KEY]).shape
    store = load_label_store(files, table, [hw] * len(files), [hw] * len(files))
    maps = label_majority_maps(root, store, train, test, table)
    if maps is None:
        return {}, {}
    winners = majority_of_votes(training_votes(root, store, train, table))
    gt_sem, gt_ins = read_frame_maps(root, test, "gt_semantics_path"), read_frame_maps(root, test, "gt_instances_path")
    scores = protocol_scores(maps[0], maps[1], gt_sem, gt_ins, table.num_classes, scene_level=True)["panopticapi"]
    return {k: float(scores[k]) for k in ("scene_pq", "pq", "miou")}, {o: int(c) for o, c in enumerate(winners.tolist())}
