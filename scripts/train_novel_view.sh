#!/usr/bin/env bash
# Reproduce the shipped novel-view weights (dreamfusion3d/assets/novel_view) on CPU:
#   1. a 32 px multi-view dataset of procedural world objects (make-dataset, ~4 min);
#   2. stage 1: ε-prediction from scratch (the shipped run was stopped with Ctrl-C at step 1087);
#   3. stage 2: v-prediction, initialised from stage 1, 37 min wall-time budget (~1300 steps on
#      a shared 2-core machine), exported in fp16 to dreamfusion3d/assets/novel_view.
# Environment: NPROC=2 runs each stage under torchrun (DistributedDataParallel, gloo on CPU).
# Continue training the shipped run for longer:
#   dreamfusion3d train-novel-view --config novel_view --data $DATA --out $OUT/stage2 --resume \
#       --steps 4000 --max-minutes None --export-to dreamfusion3d/assets/novel_view
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-outputs/datasets/novel_view32}
OUT=${OUT:-outputs/novel_view_recipe}
NPROC=${NPROC:-1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

launch() {
  if [ "$NPROC" -gt 1 ]; then
    torchrun --standalone --nproc_per_node "$NPROC" -m dreamfusion3d "$@"
  else
    python -m dreamfusion3d "$@"
  fi
}

if [ ! -f "$DATA/splits.json" ]; then
  dreamfusion3d make-dataset --config novel_view_data --out "$DATA"
fi

if [ ! -f "$OUT/stage1/model/novel_view.json" ]; then
  launch train-novel-view --config novel_view --data "$DATA" --out "$OUT/stage1" \
    --arch.prediction-type epsilon --steps 1087 --max-minutes None
fi
launch train-novel-view --config novel_view --data "$DATA" --out "$OUT/stage2" \
  --init-from "$OUT/stage1/model" --steps 2000 --warmup-steps 50 --max-minutes 37 \
  --export-to dreamfusion3d/assets/novel_view
