#!/usr/bin/env python
"""Quality benchmark: train the CPU preset on demo scenes and print the paper's Table 1 and Table 2 for them. The benchmark is ``plift_nerfstudio/bench/quality.py``; ``--help`` lists its options."""

import sys

import tyro

from plift_nerfstudio.bench import quality

if __name__ == "__main__":
    quality.main(tyro.cli(quality.BenchmarkOptions, description=(quality.__doc__ or "").split("\n\n")[0]))
    sys.exit(0)
