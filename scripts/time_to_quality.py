#!/usr/bin/env python
"""Time to quality: PQscene, mIoU and PSNR of the CPU preset against training wall time, as a table and a PNG. The benchmark is ``plift_nerfstudio/bench/time_to_quality.py``; ``--help`` lists its options."""

import sys

import tyro

from plift_nerfstudio.bench import time_to_quality

if __name__ == "__main__":
    time_to_quality.main(tyro.cli(time_to_quality.TimeToQualityOptions, description=(time_to_quality.__doc__ or "").split("\n\n")[0]))
    sys.exit(0)
