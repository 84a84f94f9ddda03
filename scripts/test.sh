#!/usr/bin/env bash
# Set up (scripts/setup_capture.sh: the project plus COLMAP and libusb, so the capture workflow's COLMAP test runs;
# scripts/setup_browser.sh: Chromium and ChromeDriver for the viewer's browser test), run the test suite on the CPU,
# then the benchmarks in quick mode.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_capture.sh
bash scripts/setup_browser.sh
VENV="${PLIFT_VENV:-.venv}"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests
# benchmarks in quick mode: they must keep running; their tables go to the log (full runs: docs/benchmarks.md)
BENCH_OUT="$(mktemp -d)"
"$VENV/bin/python" scripts/benchmark_quality.py --quick --output-dir "$BENCH_OUT/quality"
"$VENV/bin/python" scripts/benchmark_quality.py --realistic --quick --output-dir "$BENCH_OUT/realistic"
"$VENV/bin/python" scripts/benchmark_speed.py --quick --output-dir "$BENCH_OUT/speed"
"$VENV/bin/python" scripts/time_to_quality.py --quick --output-dir "$BENCH_OUT/time_to_quality"
"$VENV/bin/python" scripts/benchmark_segment.py --quick --output-dir "$BENCH_OUT/segment"
"$VENV/bin/python" scripts/benchmark_scale.py --quick --output-dir "$BENCH_OUT/scale"
"$VENV/bin/python" scripts/benchmark_editing.py --quick --output-dir "$BENCH_OUT/editing"
"$VENV/bin/python" scripts/benchmark_export.py --quick --output-dir "$BENCH_OUT/export"
rm -rf "$BENCH_OUT"
