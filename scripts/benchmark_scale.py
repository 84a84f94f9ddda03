#!/usr/bin/env python
"""Scale benchmark: peak memory, dataset loading and step time against the number and size of frames. The benchmark is ``plift_nerfstudio/bench/scale.py``; ``--help`` lists its options."""

import tyro

from plift_nerfstudio.bench import scale

if __name__ == "__main__":
    scale.main(tyro.cli(scale.ScaleOptions, description=(scale.__doc__ or "").split("\n\n")[0]))
