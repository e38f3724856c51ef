"""Export the EMA weights of a train-prior checkpoint as a from_pretrained folder (e.g. to try an
intermediate prior before training ends):
    python scripts/export_prior_checkpoint.py RUN_DIR OUT_DIR [--fp16]
"""

import sys
from pathlib import Path

import yaml

from dreamfusion3d.models import TextPriorModel
from dreamfusion3d.train_prior import TrainPriorConfig
from dreamfusion3d.utils.checkpoint import load_checkpoint
from dreamfusion3d.utils.config import from_dict

run, out = Path(sys.argv[1]), Path(sys.argv[2])
data = yaml.safe_load((run / "config.yaml").read_text())
data.pop("command", None)
cfg = from_dict(TrainPriorConfig, data)
model = TextPriorModel.from_architecture(cfg.arch, text_encoder_id=cfg.text_encoder)
ema = TextPriorModel.from_architecture(cfg.arch, text_encoder_id=cfg.text_encoder)
state = load_checkpoint(run / "checkpoints" / "latest", {"model": model, "ema": ema})
ema.save_pretrained(out, fp16="--fp16" in sys.argv, extra={"steps": state["step"]})
print(f"exported EMA weights of step {state['step']} to {out}")
