#!/usr/bin/env bash
# Set up dreamfusion3d on a fresh machine: the CPU build of torch first (only when no torch is
# installed, so a GPU build you already have is kept), then the package itself.
#   bash scripts/setup.sh         # runtime
#   bash scripts/setup.sh --dev   # runtime + the web app + test tools
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "[setup] no torch found: installing the CPU build torch==2.13.0"
  "$PY" -m pip install --quiet "torch==2.13.0"
fi
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev,app]"
"$PY" -m pip install --quiet -e ".${extra}"
if [ -n "$extra" ]; then
  # Test tools beyond Python: Blender, node/npm (Debian packages, when missing), then the Khronos
  # glTF validator (skipped when node/npm are absent).
  bash scripts/setup_export_tools.sh || echo "[setup] export test tools not installed; the tests that need them will be skipped"
  bash scripts/install_gltf_validator.sh || echo "[setup] glTF validator not installed; its tests will be skipped"
  # The web app's browser test: selenium + Debian's chromium and chromium-driver.
  bash scripts/install_browser.sh || echo "[setup] browser not installed; the app's browser test will be skipped"
fi
# The CPU kernels (dreamfusion3d/kernels/*.c) are compiled once here rather than in the first run.
"$PY" -c 'from dreamfusion3d import kernels
ok = all(kernels.load(name) is not None for name in kernels.SIGNATURES)
print("[setup] CPU kernels " + (f"built (cached in {kernels.cache_dir()})" if ok else
      "not built (no C compiler): the PyTorch path runs instead, about 1.3x slower per step"))'
echo "[setup] dreamfusion3d installed ($("$PY" -c 'import dreamfusion3d; print(dreamfusion3d.__version__)'))"
