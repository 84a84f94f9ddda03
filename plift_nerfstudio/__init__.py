"""plift-nerfstudio: Panoptic Lifting (Siddiqui et al., CVPR 2023) as a nerfstudio method."""

from plift_nerfstudio.core.third_party_warnings import quiet_third_party_deprecations

__version__ = "0.1.0"

quiet_third_party_deprecations()
