"""Machine labels that fail the way Mask2Former fails on indoor frames (calibrated to the paper's mIoU 47-54, PQ 44-51).

Unlike ``plift_nerfstudio.scenes.procedural.noise`` (independent errors per view), the errors here are partly *persistent*:
a 2D network that takes a rug for floor or a picture for a window does so from most viewpoints. Per object
(decided once per scene from its seed):
- a persistent confusion: with ``persistent_prob`` the object has a look-alike class that it is shown as in a
  share of views drawn from ``persistent_rate``;
Per view:
- misses: whole segments left void, far more often for small ones (``small_area`` of the image);
- view-dependent confusions (``view_confusion_prob``), a share of them confident (``confident_wrong_share``);
- merged neighbours: touching instances of one class become one segment (``merge_prob``; identical chairs);
- splits of large things (``split_prob``);
- blobby boundaries: masks predicted at low resolution, so corners round off, thin parts (legs, poles) vanish and
  each segment grows or shrinks a little (``boundary_blur_px``, ``boundary_bias``), plus a smooth displacement;
- voids where no segment is sure, and a few spurious segments of a look-alike class (``spurious_per_frame``).
Instance ids are renumbered at random in every frame (no correspondence across views).

Two levels: ``mask2former`` (v1, kept so earlier numbers can be reproduced) and ``mask2former-v2``, whose errors
have the structure of a real segmenter's rather than only its averages:
- the true class of a wrong segment holds a realistic rank in its distribution: one of a few tail classes of a
  sparse distribution, often not second, and absent from it altogether in a share of segments (v1 always put it
  second, with 60% of the rest, so the semantic loss recovered it);
- a share of objects is shown as its look-alike in most views (``majority_wrong_prob``): the labels' consensus is
  wrong there, and lifting should follow it (v1's persistent confusions covered at most half the views, decided by
  an independent coin per view, so a vote always recovered the class);
- persistent confusions, merges of neighbours and splits are decided by a smooth random function of the camera
  pose (``viewpoint_runs``), so they come in runs of consecutive frames of a walk, and a split cuts an object the
  same way from nearby viewpoints;
- confidences of right and wrong segments overlap (v1 gave 55% of wrong segments a range no right one had).
``label_structure.py`` measures all four on a written room.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Literal, Optional, Tuple

import cv2
import numpy as np
from scipy.stats import norm

from plift_nerfstudio.scenes.realistic.layout import CLASS_ID, IS_THING, RoomLayout
from plift_nerfstudio.scenes.confusions import LOOK_ALIKES
from plift_nerfstudio.scenes.dataset_writer import MachineLabels
from plift_nerfstudio.scenes.label_effects import split_in_two

NUM_CLASSES = len(CLASS_ID)
_NAMES = {v: k for k, v in CLASS_ID.items()}
_IS_THING_ID = np.array([False] + [IS_THING[_NAMES[i]] for i in range(1, NUM_CLASSES + 1)])

@dataclass(frozen=True)
class RealisticNoise:
    """Parameters of the noise model; the defaults are the ``mask2former`` level, calibrated on the shipped rooms
    (data/realistic/; per-frame PQ and mIoU of the labels under the panopticapi protocol: see docs/results.md)."""

    persistent_prob: float = 0.6
    """Share of objects (room structure excepted) that have a persistent look-alike class."""
    persistent_rate: Tuple[float, float] = (0.15, 0.5)
    """Range of the share of views in which such an object is shown as its look-alike."""
    view_confusion_prob: float = 0.2
    """Chance that a segment gets a look-alike class in one view (a quarter of it for walls, floors, ceilings)."""
    confident_wrong_share: float = 0.45
    """Share of wrong segments that are confident (probability 0.8-0.95) rather than unsure (0.38-0.6)."""
    miss_prob: float = 0.05
    """Chance that a segment is left void (a quarter of it for walls, floors, ceilings)."""
    small_area: float = 0.004
    """Segments under this share of the image are missed more often, ..."""
    small_miss_prob: float = 0.45
    """... up to this much more for the tiniest."""
    merge_prob: float = 0.6
    """Chance that two touching thing segments of one class become one."""
    split_prob: float = 0.04
    """Chance that a large thing segment is cut in two."""
    boundary_blur_px: float = 1.5
    """Blur (pixels) of the segment masks before the strongest is taken: rounded corners, lost thin parts."""
    boundary_bias: float = 0.04
    """Spread of a per-segment bias on its blurred mask: segments grow or shrink a little."""
    displacement_px: float = 1.5
    """Amplitude (pixels) of a smooth random displacement of all boundaries."""
    void_threshold: float = 0.42
    """Pixels where no blurred mask reaches this are left void."""
    spurious_per_frame: float = 0.1
    """Expected number of spurious segments per frame."""
    correct_confidence: Tuple[float, float] = (0.62, 0.97)
    """Range of the class probability of correctly labelled segments."""
    sure_wrong_confidence: Tuple[float, float] = (0.8, 0.95)
    """Range of the class probability of confidently wrong segments."""
    unsure_wrong_confidence: Tuple[float, float] = (0.38, 0.6)
    """Range of the class probability of unsure wrong segments."""
    true_class_rank: Literal["runner_up", "realistic"] = "runner_up"
    """Where a wrong segment's distribution puts its true class: ``runner_up`` (v1: second, with 60% of the rest of
    the mass) or ``realistic`` (one of a few tail classes of a sparse distribution, in a random place among them,
    or absent with ``true_class_absent_prob``)."""
    true_class_absent_prob: float = 0.35
    """With ``true_class_rank`` realistic: share of wrong segments whose distribution holds no mass for the true
    class beyond the floor every class gets."""
    majority_wrong_prob: float = 0.0
    """Share of objects (room structure excepted) shown as their look-alike in most views (``majority_wrong_rate``)."""
    majority_wrong_rate: Tuple[float, float] = (0.6, 0.9)
    """Range of the share of views in which a majority-wrong object is shown as its look-alike."""
    viewpoint_runs: bool = False
    """Decide persistent confusions, merges and splits by a smooth random function of the camera pose (runs of
    consecutive frames; nearby viewpoints agree) instead of a coin per view."""
    viewpoint_scale_m: float = 1.2
    """Distance between camera positions over which those decisions change (metres, roughly)."""
    viewpoint_scale_rad: float = 0.8
    """Turn of the viewing direction over which those decisions change (radians, roughly)."""


NOISE_V2 = RealisticNoise(
    persistent_prob=0.5,
    persistent_rate=(0.2, 0.5),
    view_confusion_prob=0.06,
    confident_wrong_share=0.5,
    correct_confidence=(0.3, 0.97),
    sure_wrong_confidence=(0.6, 0.95),
    unsure_wrong_confidence=(0.3, 0.65),
    true_class_rank="realistic",
    majority_wrong_prob=0.18,
    viewpoint_runs=True,
)
"""The v2 level: hard rather than kind (see the module's docstring and docs/labels.md for the reasons)."""

NOISE_LEVELS: Dict[str, RealisticNoise] = {"mask2former": RealisticNoise(), "mask2former-v2": NOISE_V2}

# room structure: never persistently confused, and seldom in a single view (a 2D network rarely takes a whole wall
# or floor for something else)
STRUCTURE = ("wall", "floor", "ceiling")
STRUCTURE_CONFUSION_SCALE = 0.25
"""Room structure's share of the confusion and miss probabilities of other segments."""


def object_traits(layout: RoomLayout, noise: RealisticNoise, seed: int) -> Dict[int, Tuple[int, float]]:
    """Per layout object (index + 1): (look-alike class id, share of views it is shown as that class)."""
    rng = np.random.default_rng([seed, 104729])
    traits: Dict[int, Tuple[int, float]] = {}
    for k, obj in enumerate(layout.objects):
        alikes = LOOK_ALIKES.get(obj.name, LOOK_ALIKES.get(obj.class_name, ("otherprop",)))
        wrong = CLASS_ID[alikes[int(rng.integers(len(alikes)))]]
        rate = float(rng.uniform(*noise.persistent_rate)) if rng.uniform() < noise.persistent_prob else 0.0
        if noise.majority_wrong_prob > 0 and rng.uniform() < noise.majority_wrong_prob:  # (v1 draws nothing here)
            rate = float(rng.uniform(*noise.majority_wrong_rate))
        if obj.class_name in STRUCTURE:
            rate = 0.0
        traits[k + 1] = (wrong, rate if wrong != CLASS_ID[obj.class_name] else 0.0)
    return traits


class ViewpointDecisions:
    """Yes/no decisions that are a smooth random function of the camera pose: for a key (an object, a pair of
    objects, a purpose) a Gaussian-process-like field over (position / ``viewpoint_scale_m``, viewing direction /
    ``viewpoint_scale_rad``) made of random Fourier features, about N(0, 1) at any pose; the answer is yes where the
    field lies under the ``rate`` quantile. Consecutive frames of a walk look alike and get the same answer, so
    errors come in runs, and a viewpoint off the walk gets the answer of the walk's frames near it."""

    FEATURES = 24

    def __init__(self, seed: int, noise: RealisticNoise) -> None:
        self.seed, self.noise = seed, noise

    def field(self, key: Tuple[int, ...], c2w: np.ndarray) -> float:
        rng = np.random.default_rng([self.seed, 65537, *key])
        frequencies = rng.normal(0, 1, (self.FEATURES, 6))
        phases = rng.uniform(0, 2 * np.pi, self.FEATURES)
        position = np.asarray(c2w)[:3, 3] / self.noise.viewpoint_scale_m
        direction = -np.asarray(c2w)[:3, 2] / self.noise.viewpoint_scale_rad  # OpenGL cameras look down -z
        features = np.cos(frequencies @ np.concatenate([position, direction]) + phases)
        return float(np.sqrt(2.0 / self.FEATURES) * features.sum())

    def decide(self, key: Tuple[int, ...], rate: float, c2w: np.ndarray) -> bool:
        if rate <= 0:
            return False
        return self.field(key, c2w) < norm.ppf(min(rate, 1 - 1e-9))


def _distribution(rng: np.random.Generator, true_cls: int, shown: int, noise: RealisticNoise, sure: bool) -> np.ndarray:
    p = np.full(NUM_CLASSES, 1e-3)
    if shown == true_cls:
        top = rng.uniform(*noise.correct_confidence)
    else:
        top = rng.uniform(*noise.sure_wrong_confidence) if sure else rng.uniform(*noise.unsure_wrong_confidence)
    p[shown - 1] = top
    if shown != true_cls and noise.true_class_rank == "realistic":
        return _sparse_tail(rng, p, true_cls, shown, top, noise)
    if shown != true_cls:
        p[true_cls - 1] += (1 - top) * 0.6
    rest = 1 - p.sum()
    alike = [CLASS_ID[n] for n in LOOK_ALIKES.get(_NAMES[shown], ("otherprop",))]
    for c in alike:
        p[c - 1] += max(rest, 0) / len(alike)
    return p / p.sum()


def _sparse_tail(rng: np.random.Generator, p: np.ndarray, true_cls: int, shown: int, top: float,
                 noise: RealisticNoise) -> np.ndarray:
    """A wrong segment's distribution as a network gives it: the shown class on top, the rest of the mass on a few
    tail classes (the shown class's look-alikes and random others) with sparse Dirichlet weights; the true class is
    one of them, in a random place, unless it is absent (``true_class_absent_prob``)."""
    alike = [CLASS_ID[n] for n in LOOK_ALIKES.get(_NAMES[shown], ("otherprop",))]
    others = [c for c in range(1, NUM_CLASSES + 1) if c not in (shown, true_cls)]
    tail = list(dict.fromkeys([c for c in alike if c not in (shown, true_cls)]
                              + rng.choice(others, size=3, replace=False).tolist()))[:4]
    if rng.uniform() >= noise.true_class_absent_prob:
        tail.append(true_cls)
    weights = rng.dirichlet(np.full(len(tail), 0.7))
    rest = max(1 - p.sum(), 0)
    for c, w in zip(tail, weights):
        p[c - 1] += rest * w
    p[shown - 1] = max(p[shown - 1], p.max() + 1e-3)  # the shown class stays on top
    return p / p.sum()


def corrupt_frame(gt_semantics: np.ndarray, gt_instances: np.ndarray, gt_objects: np.ndarray,
                  traits: Dict[int, Tuple[int, float]], object_names: List[str], noise: RealisticNoise,
                  rng: np.random.Generator, c2w: Optional[np.ndarray] = None,
                  viewpoint: Optional[ViewpointDecisions] = None) -> MachineLabels:
    """Machine labels of one frame. ``gt_objects`` [H, W]: layout object index + 1 per pixel (the persistent
    traits are per object); segments are ground-truth (class, instance) pairs as the evaluation sees them. With
    ``noise.viewpoint_runs``, ``c2w`` (the frame's camera-to-world pose) and ``viewpoint`` (the scene's decisions)
    decide persistent confusions, merges and splits."""
    by_view = noise.viewpoint_runs
    if by_view and (c2w is None or viewpoint is None):
        raise ValueError("noise with viewpoint_runs needs the frame's pose (c2w) and the scene's ViewpointDecisions")
    H, W = gt_semantics.shape
    seg_key = np.where(gt_instances > 0, gt_instances.astype(np.int64), 100000 + gt_semantics.astype(np.int64))
    seg_key[gt_semantics == 0] = -1
    segments: List[dict] = []
    label = np.zeros((H, W), np.int64)  # 1-based segment index per pixel
    for key in np.unique(seg_key):
        if key < 0:
            continue
        mask = seg_key == key
        true_cls = int(gt_semantics[mask][0])
        area = mask.sum() / (H * W)
        p_miss = noise.miss_prob * (STRUCTURE_CONFUSION_SCALE if _NAMES[true_cls] in STRUCTURE else 1)
        p_miss += noise.small_miss_prob * (1 - area / noise.small_area) if area < noise.small_area else 0
        if rng.uniform() < p_miss:
            continue
        # a stuff class is one segment, but its objects keep their own persistent look-alikes (rug vs books)
        parts = []
        objs, counts = np.unique(gt_objects[mask], return_counts=True)
        if true_cls and not _IS_THING_ID[true_cls] and len(objs) > 1:
            for o in objs:
                parts.append((mask & (gt_objects == o), int(o)))
        else:
            parts.append((mask, int(objs[np.argmax(counts)])))
        shown_parts: Dict[int, List[np.ndarray]] = {}
        main_object = parts[0][1] if len(parts) == 1 else 0
        for part_mask, obj in parts:
            wrong, rate = traits.get(obj, (true_cls, 0.0))
            shown = true_cls
            if by_view and viewpoint.decide((obj, 1), rate, c2w):  # type: ignore[union-attr]
                shown = wrong
            elif not by_view and rate > 0 and rng.uniform() < rate:
                shown = wrong
            elif rng.uniform() < noise.view_confusion_prob * (STRUCTURE_CONFUSION_SCALE if _NAMES[true_cls] in STRUCTURE else 1):
                name = object_names[obj - 1] if obj > 0 else _NAMES[true_cls]
                alikes = LOOK_ALIKES.get(name, LOOK_ALIKES.get(_NAMES[true_cls], ("otherprop",)))
                shown = CLASS_ID[alikes[int(rng.integers(len(alikes)))]]
            shown_parts.setdefault(shown, []).append(part_mask)
        for shown, masks in shown_parts.items():
            m = np.logical_or.reduce(masks)
            sure = shown != true_cls and rng.uniform() < noise.confident_wrong_share
            probs = _distribution(rng, true_cls, shown, noise, sure)
            pieces = [m]
            large_thing = _IS_THING_ID[shown] and m.sum() > 0.03 * H * W
            if by_view and large_thing and viewpoint.decide((main_object, 2), noise.split_prob, c2w):  # type: ignore[union-attr]
                pieces = split_in_two(m, np.random.default_rng([viewpoint.seed, main_object, 3]))  # type: ignore[union-attr]
            elif not by_view and large_thing and rng.uniform() < noise.split_prob:
                pieces = split_in_two(m, rng)
            for piece in pieces:
                segments.append({"cls": shown, "probs": probs, "conf": float(probs.max()), "group": len(segments),
                                 "object": main_object})
                label[piece] = len(segments)

    # merged neighbours: touching thing segments of one class become one (the group id is what gets an instance)
    kernel = np.ones((3, 3), np.uint8)
    for i, a in enumerate(segments):
        if not _IS_THING_ID[a["cls"]]:
            continue
        grown = cv2.dilate((label == i + 1).astype(np.uint8), kernel, iterations=2) > 0
        for j in range(i + 1, len(segments)):
            b = segments[j]
            if by_view:
                pair = tuple(sorted((a["object"], b["object"])))
                merge = viewpoint.decide((*pair, 4), noise.merge_prob, c2w)  # type: ignore[union-attr]
            if b["cls"] == a["cls"] and b["group"] != a["group"] and (merge if by_view else rng.uniform() < noise.merge_prob) \
                    and (grown & (label == j + 1)).any():
                old = b["group"]
                for s in segments:
                    if s["group"] == old:
                        s["group"] = a["group"]

    # spurious segments: small unsure blobs, of a class that looks like what lies under them (a patch of wall
    # taken for a door, of a sofa for a chair)
    for _ in range(rng.poisson(noise.spurious_per_frame)):
        cx, cy = int(rng.integers(W)), int(rng.integers(H))
        under = int(gt_semantics[cy, cx])
        if under == 0:
            continue
        alikes = LOOK_ALIKES.get(_NAMES[under], ("otherprop",))
        cls = CLASS_ID[alikes[int(rng.integers(len(alikes)))]]
        blob = np.zeros((H, W), np.uint8)
        cv2.ellipse(blob, (cx, cy), (int(rng.integers(3, max(4, W // 10))), int(rng.integers(3, max(4, H // 10)))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
        probs = _distribution(rng, under, cls, noise, False)
        segments.append({"cls": cls, "probs": probs, "conf": float(probs.max()), "group": len(segments), "object": 0})
        label[blob > 0] = len(segments)

    # blobby low-resolution masks: blur every segment's mask, bias it, take the strongest; void where none is sure
    n = len(segments)
    if n == 0:
        out_seg = np.zeros((H, W), np.int64)
    else:
        score = np.zeros((n + 1, H, W), np.float32)
        sigma = noise.boundary_blur_px
        for i in range(n):
            m = (label == i + 1).astype(np.float32)
            score[i + 1] = cv2.GaussianBlur(m, (0, 0), sigma) + rng.normal(0, noise.boundary_bias)
        score[0] = noise.void_threshold
        if noise.displacement_px > 0:
            coarse = rng.normal(0, 1, (2, max(2, H // 12), max(2, W // 12))).astype(np.float32)
            dx = cv2.resize(coarse[0], (W, H), interpolation=cv2.INTER_CUBIC) * noise.displacement_px
            dy = cv2.resize(coarse[1], (W, H), interpolation=cv2.INTER_CUBIC) * noise.displacement_px
            gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
            score = np.stack([cv2.remap(s, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for s in score])
        out_seg = np.argmax(score, axis=0)
        sure = np.max(score, axis=0)
    # compose: class per segment, instance per merge group (renumbered at random), confidence per pixel
    lut_cls = np.zeros(n + 1, np.uint16)
    lut_inst = np.zeros(n + 1, np.uint16)
    lut_conf = np.zeros(n + 1, np.float32)
    lut_probs = np.zeros((n + 1, NUM_CLASSES), np.float32)
    groups = sorted({s["group"] for s in segments if _IS_THING_ID[s["cls"]]})
    new_ids = dict(zip(groups, (rng.permutation(len(groups)) + 1).tolist()))
    for i, s in enumerate(segments):
        lut_cls[i + 1], lut_conf[i + 1], lut_probs[i + 1] = s["cls"], s["conf"], s["probs"]
        lut_inst[i + 1] = new_ids.get(s["group"], 0) if _IS_THING_ID[s["cls"]] else 0
    semantics = lut_cls[out_seg]
    instances = lut_inst[out_seg]
    confidence = lut_conf[out_seg] * (np.clip(sure, 0, 1) if n else 0)
    h, w = (H + 1) // 2, (W + 1) // 2
    small_seg = cv2.resize(out_seg.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int64)
    confidence_small = cv2.resize(confidence.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    return MachineLabels(semantics=semantics, instances=instances, class_probs=lut_probs[small_seg].astype(np.float16),
                         confidence=np.clip(confidence_small, 0, 1).astype(np.float16))
