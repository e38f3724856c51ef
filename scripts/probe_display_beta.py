"""Turntable speckle of a finished SDF run at several display β (docs/RESULTS.md, issue 17).

Re-renders the run's turntable cameras from its final checkpoint at each β (the trained one and
those given) and prints the speckle figures ``metrics.json`` records (pixels with alpha > 0.05
farther than 2 px from the silhouette, share of a frame):

    python3 scripts/probe_display_beta.py outputs/red-cube --betas 0.01 0.005 0.0025
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import yaml

from dreamfusion3d.cameras import turntable_cameras
from dreamfusion3d.generate.outputs import render_views, speckle_fraction
from dreamfusion3d.representations import load_representation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a generate / image-to-3d run folder of the sdf geometry")
    parser.add_argument("--betas", type=float, nargs="+", default=[0.01, 0.005, 0.0025])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rep, _ = load_representation(args.run / "checkpoints" / "final")
    if rep.kind != "sdf":
        raise SystemExit(f"{args.run} is a {rep.kind} run: display β is the sdf geometry's")
    cfg = yaml.safe_load((args.run / "config.yaml").read_text())
    o, c = cfg["output"], cfg["cameras"]
    cams = turntable_cameras(o["video_frames"], o["video_elevation"], float(np.mean(c["radius_range"])),
                             float(np.mean(c["fov_range"])), o["video_resolution"])
    trained = float(rep.field.beta)
    print("| β of the turntable | speckle, max over frames | mean |\n|---|---|---|")
    for beta in [trained, *args.betas]:
        rep.field.sdf_config.display_beta = beta  # for_display renders at min(trained, this)
        _, alpha = render_views(rep, cams, "lambertian", with_alpha=True)
        s = speckle_fraction(alpha)
        label = f"{beta:g} (trained)" if beta == trained else f"{beta:g}"
        print(f"| {label} | {100 * s.max():.3f} % | {100 * s.mean():.3f} % |")


if __name__ == "__main__":
    main()
