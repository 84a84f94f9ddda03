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
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_capture: please install ${missing[*]} with your system's package manager (no apt-get here)" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup_capture: installing ${missing[*]} needs root (no sudo here)" >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "== installing ${missing[*]} (Debian packages; COLMAP brings Qt and takes a few minutes)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
VENV="${PLIFT_VENV:-.venv}"
QT_QPA_PLATFORM=offscreen colmap -h >/dev/null || { echo "setup_capture: colmap is installed but does not run" >&2; exit 1; }
"$VENV/bin/python" -c "import open3d" || { echo "setup_capture: open3d (needed by ns-process-data) does not import" >&2; exit 1; }
echo "== capture tools ready: $(command -v colmap) ($(QT_QPA_PLATFORM=offscreen colmap -h | grep -m1 -o 'COLMAP [0-9.]*' || echo 'version unknown'))"
