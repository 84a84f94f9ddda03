"""The losses of Panoptic Lifting (paper Eq. 3-7) as pure functions of rendered and target tensors."""

from plift_nerfstudio.losses.distortion import distortion_loss
from plift_nerfstudio.losses.consistency import segment_consistency_loss, segment_ids_of
from plift_nerfstudio.losses.instance import InstanceAssignment, assign_surrogate_ids, instance_loss
from plift_nerfstudio.losses.semantic import normalise_rendered, self_training_targets, semantic_loss
from plift_nerfstudio.losses.sparse_depth import sparse_depth_loss

__all__ = [
    "InstanceAssignment",
    "distortion_loss",
    "assign_surrogate_ids",
    "instance_loss",
    "normalise_rendered",
    "segment_consistency_loss",
    "segment_ids_of",
    "self_training_targets",
    "semantic_loss",
    "sparse_depth_loss",
]
