"""Render throughput of the NeRF renderer on this machine (forward + backward).

For 32, 64 and 128 px (or --resolutions) it renders a blob-initialised field whose occupancy grid
has been warmed up, and prints rays/s and samples/s of a full step (render + backward), plus the
share of the step spent in sampling (occupancy march), in the field (encoding + MLP, forward and
backward) and in compositing (nerfacc weights + accumulation + background, forward and backward).
Each timing is the median of --repeats runs after one warm-up run.

    python scripts/bench_render.py [--kind hashgrid|dense] [--shading albedo|lambertian] [--batch 1]

On a shared machine, compare OMP_NUM_THREADS=1 and 2: oversubscribed OpenMP threads are slow.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from dreamfusion3d.cameras import orbit_cameras
from dreamfusion3d.fields import FieldConfig
from dreamfusion3d.rendering import BackgroundConfig, RendererConfig, build_renderer


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default=None, choices=["hashgrid", "dense"], help="default: FieldConfig's")
    parser.add_argument("--shading", default="albedo", choices=["albedo", "lambertian", "textureless"])
    parser.add_argument("--normals", default=None, choices=[None, "analytic", "finite_difference", "predicted"])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--num-steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    field_cfg = FieldConfig() if args.kind is None else FieldConfig(kind=args.kind)
    if args.normals:
        field_cfg.normals = args.normals
    rcfg = RendererConfig()
    if args.num_steps:
        rcfg.num_steps = args.num_steps
    renderer = build_renderer(field_cfg, rcfg, BackgroundConfig())
    renderer.train()
    start = time.perf_counter()
    renderer.update_occupancy(0)
    update_s = time.perf_counter() - start
    print(f"threads={torch.get_num_threads()} field={field_cfg.kind} shading={args.shading} normals={field_cfg.normals} "
          f"num_steps={rcfg.num_steps} occupancy={rcfg.occupancy_resolution}^3 "
          f"(occupied {renderer.occupied_fraction():.1%}, one full update {update_s * 1000:.0f} ms) batch={args.batch}")
    print(f"{'px':>4} {'step ms':>8} {'rays/s':>9} {'samples/s':>10} {'samples':>8} {'dense':>8}  "
          f"{'sampling':>8} {'field':>6} {'composite':>9}")
    for res in args.resolutions:
        az = torch.linspace(0, 360, args.batch + 1)[:-1] + 30.0
        cams = orbit_cameras(az, [20.0], 2.5, 40.0, res)
        params = [p for p in renderer.parameters() if p.requires_grad]

        def step() -> dict:
            out = renderer.render(cams, shading=args.shading)
            (out["rgb"].mean() + out["orientation_loss"]).backward()
            for p in params:
                p.grad = None
            return out

        out = step()
        total = timed(step, args.repeats)
        # Pieces, timed separately on the same rays.
        origins, dirs = cams.generate_rays()
        o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
        t_sample = timed(lambda: renderer.sample(o, d), args.repeats)
        samples = renderer.sample(o, d)
        need_normals = args.shading != "albedo"

        def field_step() -> None:
            q = renderer.field.query(samples.positions, with_normals=need_normals)
            loss = q.density.sum() + q.albedo.sum() + (q.normals.sum() if q.normals is not None else 0.0)
            loss.backward()
            for p in params:
                p.grad = None

        t_field = timed(field_step, args.repeats)
        dens = torch.rand(samples.num_samples, requires_grad=True)
        color = torch.rand(samples.num_samples, 3, requires_grad=True)

        def composite_step() -> None:
            from nerfacc import accumulate_along_rays

            w = renderer.weights(samples, dens)
            rgb = accumulate_along_rays(w, color, samples.ray_indices, samples.n_rays)
            opacity = accumulate_along_rays(w, None, samples.ray_indices, samples.n_rays)
            (rgb + (1 - opacity) * renderer.background(d)).sum().backward()

        t_comp = timed(composite_step, args.repeats)
        rays = o.shape[0]
        print(f"{res:>4} {total * 1000:>8.1f} {rays / total:>9.0f} {out['num_samples'] / total:>10.0f} "
              f"{out['num_samples']:>8} {out['num_dense']:>8}  {t_sample / total:>8.0%} {t_field / total:>6.0%} "
              f"{t_comp / total:>9.0%}")


if __name__ == "__main__":
    main()
