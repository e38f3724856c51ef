"""Which weights of one trajectory to keep: `dreamfusion3d evaluate` whose generate runs also save the
last step's weights (checkpoints/raw) and two more moving-average decays (checkpoints/ema0.98,
ema0.995) beside the preset's own result, then each variant judged on the identical runs
(docs/RESULTS.md, session 35):

    python3 scripts/grid_weight_variants.py --generate-config G.yaml --num-threads 2 --out OUT -- --grid

G.yaml must set optim.ema_decay > 0; the arguments after ``--`` go to `evaluate` as they are. The
preset's own figures land in OUT/, each variant's in OUT/variants/<name>/eval/ (its runs folder links
every run's checkpoints/<name> as checkpoints/final), and one row per variant is printed. An
interrupted run's extra averages are not resumed: start again with a fresh OUT.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import dreamfusion3d.generate.loop as loop
from dreamfusion3d.cli import main as cli
from dreamfusion3d.diffusion.training import ema_update, frozen_copy

EXTRA = (0.98, 0.995)
VARIANTS = ("raw", *(f"ema{d}" for d in EXTRA))
_init, _update, _apply = loop.Generation.__init__, loop.Generation._update_ema, loop.Generation._apply_ema


def _init_with_extra(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.extra = {d: frozen_copy(self.representation) for d in EXTRA}


def _update_with_extra(self):
    _update(self)
    start = self.cfg.optim.ema_start
    if self.step >= start:
        for d, ema in self.extra.items():
            ema_update(ema, self.representation, 0.0 if self.step == start else d)


def _apply_with_extra(self):
    self.save("raw")
    raw = frozen_copy(self.representation)
    for d, ema in self.extra.items():
        ema_update(self.representation, ema, 0.0)  # decay 0: a copy
        self.save(f"ema{d}")
    ema_update(self.representation, raw, 0.0)
    _apply(self)


def summary_row(name: str, results: Path) -> str:
    r = json.loads(results.read_text())
    s = r["summary"]
    ious = {run["prompt"]: (0.0 if run.get("geometry_empty") else (run.get("geometry") or {}).get("iou", 0.0))
            for run in r["runs"]}
    coloured = [v for p, v in ious.items() if "white" not in p]
    shapes = " ".join(f"{k} {v:.3f}" for k, v in sorted(s["iou_by_shape"].items()))
    return (f"| {name} | {s['iou']:.3f} | {shapes} | {sum(coloured) / max(1, len(coloured)):.3f} | "
            f"{s['chamfer']:.3f} | {s['template_right']}/{s['template_runs']} | empty {s['geometry_empty']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generate-config", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num-threads", default="0", help="torch CPU threads of every evaluate (0: torch's default)")
    parser.add_argument("evaluate_args", nargs="*", help="after --: further evaluate options, e.g. --grid")
    args = parser.parse_args()
    loop.Generation.__init__ = _init_with_extra
    loop.Generation._update_ema = _update_with_extra
    loop.Generation._apply_ema = _apply_with_extra
    common = ["--num-threads", args.num_threads, "--quiet"]
    if cli(["evaluate", "--generate-config", args.generate_config, "--out", str(args.out), *common,
            *args.evaluate_args]) != 0:
        sys.exit("evaluate failed")
    rows = [summary_row("preset (its optim.ema_decay)", args.out / "results.json")]
    for name in VARIANTS:
        runs = args.out / "variants" / name / "runs"
        for run in sorted((args.out / "runs").iterdir()):
            link = runs / run.name / "checkpoints" / "final"
            link.parent.mkdir(parents=True, exist_ok=True)
            (runs / run.name / "config.yaml").write_bytes((run / "config.yaml").read_bytes())
            if not link.exists():
                link.symlink_to((run / "checkpoints" / name).resolve())
        if cli(["evaluate", "--runs", str(runs), "--out", str(runs.parent / "eval"), "--overwrite", *common]) != 0:
            sys.exit(f"evaluate --runs failed for {name}")
        rows.append(summary_row(name, runs.parent / "eval" / "results.json"))
    print("| weights | mean IoU | per shape | coloured | Chamfer | 3D fit | |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
