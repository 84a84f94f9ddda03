"""Fuse the candidate segments of test-time-augmented 2D panoptic predictions into one labelled frame.

Paper, supplementary A.2. The input is every candidate segment of every augmented pass, already mapped back to
the original frame: a soft mask ``m_i(x, y)`` in [0, 1] and a class distribution ``p_i`` over classes 1..C.

1. Segment clustering: segments i, j are linked when their soft IoU ``sum min(m_i, m_j) / sum max(m_i, m_j)``
   is at least ``theta``; the connected components of that graph are the clusters.
2. Cluster aggregation: a cluster's mask and class distribution are the means over its segments.
3. Panoptic fusion: a cluster's class is the argmax of its distribution and its mask is scaled by that
   probability; each pixel goes to the cluster with the largest scaled mask, whose value is the pixel's
   confidence. Pixels where no cluster reaches ``min_confidence`` are void.

The output is what the label data contract stores per frame: a class map (0 = void), an instance map (one id per
thing cluster, 0 on stuff and void), a per-pixel class distribution (the assigned cluster's) and a confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components


@dataclass
class FusedFrame:
    """One frame's fused labels (H, W are the frame's size, C the number of classes)."""

    semantics_hw: np.ndarray
    """uint16 class id per pixel, 1..C, 0 = void."""
    instances_hw: np.ndarray
    """uint16 instance id per pixel, 1..K on thing pixels (unique in the frame), 0 on stuff and void."""
    class_probs_hwc: np.ndarray
    """float32 class distribution per pixel (the assigned cluster's; zeros on void)."""
    confidence_hw: np.ndarray
    """float32 confidence per pixel in [0, 1] (0 on void)."""
    cluster_of_segment_n: np.ndarray
    """int cluster index of each input segment (for inspection and tests)."""


def soft_iou_matrix(masks_nhw: np.ndarray) -> np.ndarray:
    """Pairwise soft IoU ``sum min / sum max`` of N soft masks, as an [N, N] matrix (1 on the diagonal).

    With ``min(a, b) = (a + b - |a - b|) / 2`` and ``max(a, b) = (a + b + |a - b|) / 2`` the IoU of two masks is
    ``(S_a + S_b - L1) / (S_a + S_b + L1)``, where S are the masks' sums and L1 their L1 distance; torch's cdist
    computes all L1 distances at once (in float64: exact up to rounding).
    """
    n = masks_nhw.shape[0]
    flat = torch.from_numpy(np.ascontiguousarray(masks_nhw.reshape(n, -1), dtype=np.float64))
    l1 = torch.cdist(flat[None], flat[None], p=1)[0]
    sums = flat.sum(dim=1)
    total = sums[:, None] + sums[None, :]
    union = (total + l1) / 2
    iou = torch.where(union > 0, ((total - l1) / 2).clamp_min(0) / union.clamp_min(1e-300), 0.0).numpy()
    np.fill_diagonal(iou, 1.0)
    return iou


def cluster_segments(soft_iou_nn: np.ndarray, theta: float) -> np.ndarray:
    """Connected components of the graph linking segments whose soft IoU is at least ``theta``."""
    if not 0.0 < theta <= 1.0:
        raise ValueError(f"theta must be in (0, 1], got {theta}")
    adjacency = csr_matrix(soft_iou_nn >= theta)
    _, labels = connected_components(adjacency, directed=False)
    return labels


def fuse_segments(
    masks_nhw: np.ndarray,
    class_probs_nc: np.ndarray,
    thing_class_ids: Sequence[int],
    theta: float = 0.5,
    min_confidence: float = 0.0,
) -> FusedFrame:
    """Cluster, aggregate and fuse N candidate segments into one panoptic frame (see the module docstring).

    ``class_probs_nc[i, c]`` is segment i's probability of class c + 1; rows may sum to less than 1 (mass of
    classes mapped to nothing), and a segment with no mass at all is dropped.
    """
    if masks_nhw.ndim != 3 or class_probs_nc.ndim != 2 or masks_nhw.shape[0] != class_probs_nc.shape[0]:
        raise ValueError(f"expected masks [N, H, W] and class probabilities [N, C], got {masks_nhw.shape} and "
                         f"{class_probs_nc.shape}")
    _, height, width = masks_nhw.shape
    num_classes = class_probs_nc.shape[1]
    keep = class_probs_nc.sum(axis=1) > 0
    cluster_of_segment = np.full(masks_nhw.shape[0], -1, dtype=np.int64)
    semantics = np.zeros((height, width), np.uint16)
    instances = np.zeros((height, width), np.uint16)
    probs = np.zeros((height, width, num_classes), np.float32)
    confidence = np.zeros((height, width), np.float32)
    if not keep.any():
        return FusedFrame(semantics, instances, probs, confidence, cluster_of_segment)
    masks = np.clip(masks_nhw[keep].astype(np.float64), 0.0, 1.0)
    seg_probs = class_probs_nc[keep].astype(np.float64)
    labels = cluster_segments(soft_iou_matrix(masks), theta)
    cluster_of_segment[keep] = labels
    num_clusters = int(labels.max()) + 1
    counts = np.bincount(labels, minlength=num_clusters).astype(np.float64)
    mean_kn = np.zeros((num_clusters, len(labels)))
    mean_kn[labels, np.arange(len(labels))] = 1.0 / counts[labels]  # cluster means as one matrix product
    cluster_masks = (mean_kn @ masks.reshape(len(labels), -1)).reshape(num_clusters, height, width)
    cluster_probs = mean_kn @ seg_probs
    cluster_class = cluster_probs.argmax(axis=1) + 1  # ids 1..C
    scaled = cluster_masks * cluster_probs.max(axis=1)[:, None, None]
    winner = scaled.argmax(axis=0)
    best = scaled.max(axis=0)
    labelled = best > max(min_confidence, 0.0)
    semantics[labelled] = cluster_class[winner[labelled]]
    confidence[labelled] = best[labelled]
    # the assigned cluster's distribution, renormalised over the mapped classes
    dist = cluster_probs / np.maximum(cluster_probs.sum(axis=1, keepdims=True), 1e-12)
    probs[labelled] = dist[winner[labelled]]
    # instance ids: thing clusters that own at least one pixel, numbered 1..K in cluster order
    things = set(int(c) for c in thing_class_ids)
    owned = np.unique(winner[labelled])
    next_id = 1
    for k in owned:
        if int(cluster_class[k]) in things:
            instances[labelled & (winner == k)] = next_id
            next_id += 1
    return FusedFrame(semantics, instances, probs, confidence, cluster_of_segment)
