#!/usr/bin/env bash
# Set up for labelling your own captures: the project (scripts/setup.sh) plus what `ns-process-data images` needs
# from the system: COLMAP (Debian's colmap, CPU SIFT) and libusb (open3d, which ns-process-data imports, loads it).
# Installs Debian packages with apt-get (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
missing=()
command -v colmap >/dev/null 2>&1 || missing+=(colmap)
ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0' || missing+=(libusb-1.0-0)
# COLMAP brings Qt and takes a few minutes
bash scripts/apt_install.sh setup_capture ${missing[@]+"${missing[@]}"}
VENV="${PLIFT_VENV:-.venv}"
QT_QPA_PLATFORM=offscreen colmap -h >/dev/null || { echo "setup_capture: colmap is installed but does not run" >&2; exit 1; }
"$VENV/bin/python" -c "import open3d" || { echo "setup_capture: open3d (needed by ns-process-data) does not import" >&2; exit 1; }
echo "== capture tools ready: $(command -v colmap) ($(QT_QPA_PLATFORM=offscreen colmap -h | grep -m1 -o 'COLMAP [0-9.]*' || echo 'version unknown'))"
