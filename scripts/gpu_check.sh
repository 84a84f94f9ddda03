#!/usr/bin/env bash
# The GPU check (plift_nerfstudio/bench/gpu_check.py): the device and tinycudann, the paper preset's training step
# and a 2048-ray render against nerfstudio's TensoRF, a shipped realistic room trained at GPU scale and scored, and
# with 2+ GPUs the step time on two (--machine.num-devices 2). Under 10 minutes on one H100; writes results.json and
# results.md under benchmarks/gpu_check (or --output-dir).
#
#   bash scripts/gpu_check.sh [--output-dir DIR] [--room data/realistic/ROOM] [--room-steps N]
#
# On a machine without a GPU it says so and exits 0. Uses $PLIFT_VENV (default .venv) when it exists, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PLIFT_VENV:-.venv}"
PYTHON=python3
[ -x "$VENV/bin/python" ] && PYTHON="$VENV/bin/python"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader || true
fi
status=0
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)" || status=$?
if [ "$status" -eq 3 ]; then
  echo "gpu_check: no GPU (torch.cuda.is_available() is False with $PYTHON): nothing to check on this machine."
  exit 0
elif [ "$status" -ne 0 ]; then
  echo "gpu_check: torch does not import with $PYTHON; set up first (bash scripts/setup.sh)" >&2
  exit 1
fi
exec "$PYTHON" -m plift_nerfstudio.bench.gpu_check "$@"
