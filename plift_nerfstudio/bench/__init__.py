"""What the benchmarks (``scripts/benchmark_*.py``) share: training and scoring a preset in-process, the realistic-room
runner, report tables and results files, timing, and rendering test views."""
