"""`dreamfusion3d evaluate` whose generate runs also save, from one trajectory, the last step's weights
(checkpoints/raw) and two more moving-average decays (checkpoints/ema0.98, ema0.995) beside the
preset's own result, so that each is judged on identical runs (docs/RESULTS.md, session 35):

    python3 scripts/grid_weight_variants.py --grid --generate-config G.yaml --num-threads 2 --out OUT

G.yaml must set optim.ema_decay > 0. To judge a variant V, make a folder of runs whose
checkpoints/final links to OUT/runs/<run>/checkpoints/V (with each run's config.yaml) and run
`dreamfusion3d evaluate --runs THAT --out EVAL`. An interrupted run's extra averages are not resumed.
"""
import sys

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import dreamfusion3d.generate.loop as L

EXTRA = (0.98, 0.995)
orig_init, orig_upd, orig_apply = L.Generation.__init__, L.Generation._update_ema, L.Generation._apply_ema


def init(self, *a, **k):
    orig_init(self, *a, **k)
    self.extra = {d: AveragedModel(self.representation, multi_avg_fn=get_ema_multi_avg_fn(d)) for d in EXTRA}


def upd(self):
    orig_upd(self)
    if self.step >= self.cfg.optim.ema_start:
        for m in self.extra.values():
            m.update_parameters(self.representation)


def apply(self):
    self.save("raw")
    raw = [p.detach().clone() for p in self.representation.parameters()]
    for d, m in self.extra.items():
        with torch.no_grad():
            for p, e in zip(self.representation.parameters(), m.module.parameters(), strict=True):
                p.copy_(e)
        self.save(f"ema{d}")
    with torch.no_grad():
        for p, r in zip(self.representation.parameters(), raw, strict=True):
            p.copy_(r)
    orig_apply(self)


L.Generation.__init__, L.Generation._update_ema, L.Generation._apply_ema = init, upd, apply
from dreamfusion3d.cli import entrypoint  # noqa: E402

sys.argv = ["dreamfusion3d", "evaluate", *sys.argv[1:]]
entrypoint()
