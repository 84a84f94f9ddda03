"""plift-nerfstudio: Panoptic Lifting (Siddiqui et al., CVPR 2023) as a nerfstudio method."""

__version__ = "0.1.0"
