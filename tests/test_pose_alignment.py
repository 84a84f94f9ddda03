"""Camera-centre errors after similarity alignment: what the capture workflow reports for COLMAP's poses."""

import numpy as np
from scipy.spatial.transform import Rotation

from plift_nerfstudio.labels.pose_alignment import similarity_aligned_errors


def test_pose_alignment_removes_a_similarity_and_measures_what_is_left() -> None:
    rng = np.random.default_rng(0)
    true = rng.uniform(-2, 2, (20, 3))
    rot = Rotation.from_euler("xyz", [30, -70, 110], degrees=True).as_matrix()
    estimated = 0.37 * true @ rot.T + np.array([5.0, -1.0, 2.0])  # what SfM may return: another frame and scale
    np.testing.assert_allclose(similarity_aligned_errors(estimated, true), 0.0, atol=1e-9)
    moved = estimated.copy()
    moved[3] += 0.37 * np.array([0.0, 0.5, 0.0])  # one camera 0.5 true units off
    errors = similarity_aligned_errors(moved, true)
    assert errors.argmax() == 3 and 0.3 < errors[3] < 0.5 and np.median(errors) < 0.05
    assert similarity_aligned_errors(rng.permutation(true), true).mean() > 1.0  # wrong correspondences
