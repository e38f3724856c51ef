#!/usr/bin/env bash
# Test tools of the web app's browser test (tests/app): selenium from PyPI, and Debian's
# chromium + chromium-driver from apt when absent (nothing is downloaded outside the package
# managers: selenium is pointed at /usr/bin/chromedriver, not at a driver download).
#   bash scripts/install_browser.sh
set -euo pipefail
PY="${PYTHON:-python3}"
"$PY" -m pip install --quiet "selenium>=4.20"
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "[browser] chromium and chromedriver already installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[browser] no apt-get: install chromium and chromedriver yourself (the browser test is skipped without them)" >&2
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
echo "[browser] installed $(chromium --version 2>/dev/null || echo chromium)"
