"""Plot a training log (log.jsonl with step/loss lines) as a PNG:
    python scripts/plot_training_curve.py RUN_DIR/log.jsonl docs/text_prior_training_curve.png "bundled text prior"
Needs matplotlib (not a runtime dependency).
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

rows = [json.loads(line) for line in open(sys.argv[1])]
steps = np.array([r["step"] for r in rows])
loss = np.array([r["loss"] for r in rows])
window = 50
smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
ax.plot(steps, loss, lw=0.5, alpha=0.3, label="per step")
ax.plot(steps[window - 1 :], smooth, lw=1.5, label=f"mean of {window}")
ax.set_yscale("log")
ax.set_xlabel("step (batch 32)")
ax.set_ylabel("ε-prediction MSE")
ax.set_title(sys.argv[3] if len(sys.argv) > 3 else "training loss")
ax.legend()
fig.tight_layout()
fig.savefig(sys.argv[2])
print(f"wrote {sys.argv[2]}")
