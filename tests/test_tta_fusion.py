"""TTA segment fusion (supplementary A.2) on hand-made candidate segments whose result is worked out here.

Frame of 2 x 4 pixels, classes 1 = wall (stuff), 2 = chair (thing):
  s0: columns 0-1 at 1.0, p = [0.8, 0.2]
  s1: columns 0-1 at 0.8, p = [0.6, 0.4]   soft IoU(s0, s1) = 3.2 / 4 = 0.8   -> clustered with s0
  s2: columns 2-3 at 1.0, p = [0.1, 0.9]
  s3: columns 1-3 at 0.5, p = [0.3, 0.3]   soft IoU(s2, s3) = 2 / 5 = 0.4; (s0, s3) = 1 / 6; (s1, s3) = 1 / 5.2
Clusters at theta 0.5: A = {s0, s1} (mask 0.9 on cols 0-1, p = [0.7, 0.3] -> wall, scaled 0.63),
B = {s2} (chair, scaled 0.9 on cols 2-3), C = {s3} (wall by tie, scaled 0.15): C owns no pixel.
"""

import numpy as np
import pytest

from plift_nerfstudio.labels.tta_fusion import cluster_segments, fuse_segments, soft_iou_matrix


def segments():
    masks = np.zeros((4, 2, 4))
    masks[0, :, 0:2] = 1.0
    masks[1, :, 0:2] = 0.8
    masks[2, :, 2:4] = 1.0
    masks[3, :, 1:4] = 0.5
    probs = np.array([[0.8, 0.2], [0.6, 0.4], [0.1, 0.9], [0.3, 0.3]])
    return masks, probs


def test_soft_iou_matches_hand_computation():
    iou = soft_iou_matrix(segments()[0])
    assert iou[0, 1] == pytest.approx(0.8)
    assert iou[2, 3] == pytest.approx(0.4)
    assert iou[0, 3] == pytest.approx(1 / 6)
    assert iou[1, 3] == pytest.approx(1 / 5.2)
    assert iou[0, 2] == 0.0
    np.testing.assert_allclose(iou, iou.T)
    np.testing.assert_allclose(np.diag(iou), 1.0)


def test_soft_iou_equals_its_definition_on_random_soft_masks():
    rng = np.random.default_rng(3)
    masks = rng.random((7, 9, 11)) ** 3
    masks[2] = 0.0  # an empty mask: IoU 0 with every other mask
    flat = masks.reshape(7, -1)
    expected = np.array([[np.minimum(a, b).sum() / np.maximum(a, b).sum() if np.maximum(a, b).sum() > 0 else 0.0
                          for b in flat] for a in flat])
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(soft_iou_matrix(masks), expected, rtol=1e-12, atol=1e-12)


def test_clusters_are_connected_components():
    # a-b and b-c linked, a-c not: one cluster by transitivity; d alone
    iou = np.array([[1, 0.6, 0.1, 0], [0.6, 1, 0.7, 0], [0.1, 0.7, 1, 0], [0, 0, 0, 1.0]])
    labels = cluster_segments(iou, theta=0.5)
    assert labels[0] == labels[1] == labels[2] != labels[3]
    with pytest.raises(ValueError, match="theta"):
        cluster_segments(iou, theta=0.0)


def test_fusion_classes_instances_confidences():
    masks, probs = segments()
    fused = fuse_segments(masks, probs, thing_class_ids=[2], theta=0.5)
    c = fused.cluster_of_segment_n
    assert c[0] == c[1] and len({c[0], c[2], c[3]}) == 3
    np.testing.assert_array_equal(fused.semantics_hw, [[1, 1, 2, 2]] * 2)
    np.testing.assert_array_equal(fused.instances_hw, [[0, 0, 1, 1]] * 2)
    np.testing.assert_allclose(fused.confidence_hw, [[0.63, 0.63, 0.9, 0.9]] * 2, rtol=1e-6)
    np.testing.assert_allclose(fused.class_probs_hwc[0, 0], [0.7, 0.3], rtol=1e-6)
    np.testing.assert_allclose(fused.class_probs_hwc[1, 3], [0.1, 0.9], rtol=1e-6)


def test_higher_theta_splits_a_cluster_and_the_stronger_segment_wins():
    masks, probs = segments()
    fused = fuse_segments(masks, probs, thing_class_ids=[2], theta=0.85)
    assert fused.cluster_of_segment_n[0] != fused.cluster_of_segment_n[1]
    # s0 scaled 0.8 * 1.0 beats s1 scaled 0.6 * 0.8
    np.testing.assert_allclose(fused.confidence_hw[:, :2], 0.8, rtol=1e-6)
    np.testing.assert_allclose(fused.class_probs_hwc[0, 0], [0.8, 0.2], rtol=1e-6)


def test_low_confidence_pixels_are_void_and_separate_things_get_separate_ids():
    masks = np.zeros((3, 1, 6))
    masks[0, :, 0:2] = 1.0   # chair A
    masks[1, :, 3:5] = 1.0   # chair B, not overlapping A
    masks[2, :, 5] = 0.2     # a faint wall
    probs = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    fused = fuse_segments(masks, probs, thing_class_ids=[2], min_confidence=0.3)
    np.testing.assert_array_equal(fused.semantics_hw, [[2, 2, 0, 2, 2, 0]])
    np.testing.assert_array_equal(fused.instances_hw, [[1, 1, 0, 2, 2, 0]])
    assert fused.confidence_hw[0, 2] == 0 and fused.class_probs_hwc[0, 5].sum() == 0


def test_segments_with_no_mapped_class_mass_are_dropped():
    masks, probs = segments()
    probs[2] = 0.0  # a COCO class mapped to nothing
    fused = fuse_segments(masks, probs, thing_class_ids=[2])
    assert fused.cluster_of_segment_n[2] == -1
    assert (fused.instances_hw == 0).all()  # the chair is gone; s3 (wall) takes its pixels
    np.testing.assert_array_equal(fused.semantics_hw[:, 2:], 1)
