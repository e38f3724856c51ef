"""The torus figures of docs/RESULTS.md, session 39.

  python3 scripts/torus_proportions.py                      # IoU / Chamfer of perfect world tori
                                                            # of each tube/ring ratio vs the seed-0 one
  python3 scripts/torus_proportions.py --runs GRID/runs     # each run's mesh: fitted tube/ring ratio, genus

The fit: axis = the smallest principal direction of surface samples, then least squares of
(ρ − R)² + z² = r² (scipy). Genus = components − χ/2 of the closed mesh (as metrics.json).
"""

import argparse
import glob
import json
import os

import numpy as np
import trimesh
from scipy.optimize import least_squares


def ceiling(ratios):
    from dreamfusion3d.evaluation.evaluate import best_reference
    from dreamfusion3d.evaluation.geometry import scene_solid
    from dreamfusion3d.evaluation.prompts import Target
    from dreamfusion3d.world import primitive_scene

    for ratio in ratios:
        scene = primitive_scene("torus", "red", seed=0, thickness=ratio, tilt=0.0, yaw=0.0)
        figures, _ = best_reference(scene_solid(scene), Target("torus", "red"), 64, 0)
        print(f"ratio {ratio:.3f}: IoU {figures['iou']:.3f}, Chamfer {figures['chamfer']:.3f}")


def fit(runs):
    results = os.path.join(runs, "..", "results.json")  # evaluate's, when the runs are its OUT/runs
    rows = json.load(open(results))["runs"] if os.path.exists(results) else []
    ious = {os.path.basename(r["run"]): r["geometry"]["iou"] for r in rows if "geometry" in r}
    for run in sorted(glob.glob(os.path.join(runs, "*"))):
        mesh = trimesh.load(os.path.join(run, "mesh.ply"), process=False)
        genus = len(mesh.split(only_watertight=False)) - mesh.euler_number // 2 if mesh.is_watertight else None
        points = np.asarray(trimesh.sample.sample_surface(mesh, 20000, seed=0)[0])
        q = points - points.mean(0)
        axis = np.linalg.eigh(q.T @ q)[1][:, 0]
        z = q @ axis
        rho = np.linalg.norm(q - np.outer(z, axis), axis=1)
        R, r, _ = least_squares(lambda x: np.hypot(rho - x[0], z - x[2]) - x[1], [rho.mean(), 0.2, 0.0]).x
        row = ious.get(os.path.basename(run))
        extra = f", IoU {row:.3f}" if row is not None else ""
        print(f"{os.path.basename(run)}: genus {genus}" + (f", tube/ring {r / R:.2f}" if "torus" in run else "") + extra)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", help="a folder of generate runs (evaluate's OUT/runs): fit and genus of each mesh")
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.30, 0.33, 0.36, 0.40, 0.437])
    args = ap.parse_args()
    fit(args.runs) if args.runs else ceiling(args.ratios)
