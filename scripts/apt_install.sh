#!/usr/bin/env bash
# Install Debian packages that are missing: bash scripts/apt_install.sh WHO PACKAGE... (apt-get as root, or through
# sudo; WHO names the calling script in messages). Used by setup_capture.sh and setup_browser.sh.
set -euo pipefail
who="$1"
shift
[ $# -gt 0 ] || exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$who: please install $* with your system's package manager (no apt-get here)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "$who: installing $* needs root (no sudo here)" >&2; exit 1; }
  SUDO="sudo"
fi
echo "== $who: installing $* (Debian packages)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
