#!/usr/bin/env python
"""Speed benchmark: our training step and render against nerfstudio's own TensoRF, side by side in one process. The benchmark is ``plift_nerfstudio/bench/speed.py``; ``--help`` lists its options."""

import sys

import tyro

from plift_nerfstudio.bench import speed

if __name__ == "__main__":
    speed.main(tyro.cli(speed.SpeedOptions, description=(speed.__doc__ or "").split("\n\n")[0]))
    sys.exit(0)
