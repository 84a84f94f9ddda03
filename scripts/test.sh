#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the test suite on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${PLIFT_VENV:-.venv}"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests
