#!/usr/bin/env bash
# For the viewer's browser test: Debian's Chromium and ChromeDriver (selenium, a dev extra, drives them; nothing is
# downloaded at run time). Installs Debian packages with apt-get (as root, or through sudo).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
bash "$(dirname "$0")/apt_install.sh" setup_browser ${missing[@]+"${missing[@]}"}
echo "== browser ready: $(chromium --version 2>/dev/null | head -1), $(chromedriver --version 2>/dev/null | head -1)"
