"""Export the EMA weights of a train-prior checkpoint as a from_pretrained folder (e.g. to try an
intermediate prior before training ends):
    python scripts/export_prior_checkpoint.py RUN_DIR OUT_DIR [--fp16]
"""

import sys
from pathlib import Path

from dreamfusion3d.text_prior.train import export_checkpoint

run, out = Path(sys.argv[1]), Path(sys.argv[2])
step = export_checkpoint(run, out, fp16="--fp16" in sys.argv)
print(f"exported EMA weights of step {step} to {out}")
