#!/usr/bin/env bash
# For the viewer's browser test: Debian's Chromium and ChromeDriver (selenium, a dev extra, drives them; nothing is
# downloaded at run time). Installs Debian packages with apt-get (as root, or through sudo).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_browser: please install ${missing[*]} with your system's package manager (no apt-get here)" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup_browser: installing ${missing[*]} needs root (no sudo here)" >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "== installing ${missing[*]} (Debian packages)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "== browser ready: $(chromium --version 2>/dev/null | head -1), $(chromedriver --version 2>/dev/null | head -1)"
