#!/usr/bin/env python
"""Labelling speed of plift-segment: Mask2Former passes with and without test-time augmentation, and the fusion. The benchmark is ``plift_nerfstudio/bench/segment.py``; ``--help`` lists its options."""

import tyro

from plift_nerfstudio.bench import segment

if __name__ == "__main__":
    segment.main(tyro.cli(segment.SegmentBenchOptions, description=segment.__doc__))
