#!/usr/bin/env python
"""Export benchmark: export the demo scene's trained run (plift-export pointcloud and mesh) and score the exported The benchmark is ``plift_nerfstudio/bench/export.py``; ``--help`` lists its options."""

import tyro

from plift_nerfstudio.bench import export

if __name__ == "__main__":
    export.main(tyro.cli(export.ExportBenchmarkOptions, description=export.__doc__))
