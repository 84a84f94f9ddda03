#!/usr/bin/env bash
# Set up plift-nerfstudio on a fresh machine: a virtual environment (default .venv, or $PLIFT_VENV) with the
# project and its test extras, and an ffmpeg program for ns-render's MP4 writer.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PLIFT_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
echo "== installing plift-nerfstudio (nerfstudio 1.1.5 and torch come with it; first time takes minutes)"
"$VENV/bin/python" -m pip install --quiet -e '.[dev]'
"$VENV/bin/plift-link-ffmpeg"
echo "== ready: source $VENV/bin/activate"
