"""Score generate runs with the evaluation classifier: the share of 8 random views whose shape and
colour it names as the prompt says.
    python scripts/judge_generations.py OUT.json RUN_DIR [RUN_DIR ...]
Prompts must read "a <colour> <shape>" (the world's vocabulary).
"""

import json
import sys
from pathlib import Path

import torch

from dreamfusion3d.judge.generations import judge_generation
from dreamfusion3d.text_prior.sampling import save_grid
from dreamfusion3d.world import COLORS, SHAPES

rows, grids = [], []
for run in sys.argv[2:]:
    r = judge_generation(Path(run))
    words = r["prompt"].lower().split()
    shape = next(s for s in SHAPES if s in words)
    color = next(c for c in COLORS if c in words)
    both = sum(s == shape and c == color for s, c in zip(r["shapes"], r["colors"])) / len(r["shapes"])
    rows.append({"run": run, "prompt": r["prompt"], "both": both,
                 "shape": sum(s == shape for s in r["shapes"]) / len(r["shapes"]),
                 "color": sum(c == color for c in r["colors"]) / len(r["colors"]),
                 "predicted": list(zip(r["shapes"], r["colors"]))})
    grids.append(r["images"])
    print(f"{r['prompt']!r}: shape+colour right on {both:.0%} of views ({rows[-1]['predicted']})")
passed = sum(r["both"] >= 0.75 for r in rows)
print(f"{passed}/{len(rows)} prompts with >= 75% of views right")
Path(sys.argv[1]).write_text(json.dumps({"runs": rows, "prompts_at_75pct": passed}, indent=2))
save_grid(torch.cat(grids), Path(sys.argv[1]).with_suffix(".png"), ncol=8, scale=2)
