#!/usr/bin/env bash
# Reproduce the shipped novel-view weights (dreamfusion3d/assets/novel_view): make a 32 px
# multi-view dataset of procedural world objects, train the 3DiM-style model on it, export fp16.
#   NPROC=2 scripts/train_novel_view.sh        # DistributedDataParallel over 2 processes
#   RESUME=1 STEPS=6000 scripts/train_novel_view.sh   # continue the same run for longer
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-outputs/datasets/novel_view32}
OUT=${OUT:-outputs/novel_view_run}
NPROC=${NPROC:-1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

if [ ! -f "$DATA/splits.json" ]; then
  dreamfusion3d make-dataset --config novel_view_data --out "$DATA"
fi

ARGS=(train-novel-view --config novel_view --data "$DATA" --out "$OUT" --export-to dreamfusion3d/assets/novel_view)
if [ -n "${STEPS:-}" ]; then ARGS+=(--steps "$STEPS" --max-minutes None); fi
if [ -n "${RESUME:-}" ]; then ARGS+=(--resume); fi

if [ "$NPROC" -gt 1 ]; then
  torchrun --standalone --nproc_per_node "$NPROC" -m dreamfusion3d "${ARGS[@]}"
else
  python -m dreamfusion3d "${ARGS[@]}"
fi
