#!/usr/bin/env bash
# The checks to run the day a CUDA GPU is lent (under 8 minutes, installs nothing, offline):
# nerfacc's CUDA kernels, the CUDA-only tests (pytest -m cuda, incl. march_cuda vs march_cpu), a
# timed bundled-prior `generate` on CUDA and a resume-exactness check; prints one table.
# Without a CUDA device it says so in one line and exits 0.
#   bash scripts/gpu_check.sh            # from the repo root, package installed or not
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY="${PYTHON:-python3}"
if ! version=$("$PY" -c "import sys, torch; print(torch.__version__); sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null); then
  echo "gpu_check: no CUDA device here (torch ${version:-missing}); nothing to check"
  exit 0
fi
exec timeout 475 "$PY" scripts/gpu_check.py "$@"
