#!/usr/bin/env bash
# Reproduce the shipped novel-view weights (dreamfusion3d/assets/novel_view) on CPU:
#   1. a 32 px multi-view dataset of procedural world objects (make-dataset, ~4 min);
#   2. stage 1: ε-prediction from scratch (the shipped run was stopped with Ctrl-C at step 1087);
#   3. stage 2: v-prediction, initialised from stage 1, 2000 steps (37 min budget on a shared
#      2-core machine);
#   4. stage 3: continued from stage 2 on the same data, lr 3e-4, 40 min budget (6,860 steps on
#      an idle 2-core machine);
#   5. stage 4: continued from stage 3 on 1,470 more objects (seed 1, make-dataset preset
#      novel_view_data_extra), lr 2e-4, 50 min budget; exported in fp16 to
#      dreamfusion3d/assets/novel_view.
# Stages 3 and 4 stop on wall time (--max-minutes), so a faster machine trains more steps.
# Environment: NPROC=2 runs each stage under torchrun (DistributedDataParallel, gloo on CPU).
# Any stage continues after an interruption with the same command plus --resume.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-outputs/datasets/novel_view32}
EXTRA=${EXTRA:-outputs/datasets/novel_view32_extra}
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
if [ ! -f "$EXTRA/splits.json" ]; then
  dreamfusion3d make-dataset --config novel_view_data_extra --out "$EXTRA"
fi

if [ ! -f "$OUT/stage1/model/novel_view.json" ]; then
  launch train-novel-view --config novel_view --data "$DATA" --out "$OUT/stage1" \
    --arch.prediction-type epsilon --steps 1087 --max-minutes None
fi
if [ ! -f "$OUT/stage2/model/novel_view.json" ]; then
  launch train-novel-view --config novel_view --data "$DATA" --out "$OUT/stage2" \
    --init-from "$OUT/stage1/model" --steps 2000 --warmup-steps 50 --max-minutes None
fi
if [ ! -f "$OUT/stage3/model/novel_view.json" ]; then
  launch train-novel-view --config novel_view --data "$DATA" --out "$OUT/stage3" \
    --init-from "$OUT/stage2/model" --steps 8000 --warmup-steps 100 --lr 0.0003 --max-minutes 40 \
    --num-threads 2 --sample-every 2000
fi
launch train-novel-view --config novel_view --data "$EXTRA" --out "$OUT/stage4" \
  --init-from "$OUT/stage3/model" --steps 9000 --warmup-steps 100 --lr 0.0002 --max-minutes 50 \
  --num-threads 2 --sample-every 3000 --export-to dreamfusion3d/assets/novel_view
