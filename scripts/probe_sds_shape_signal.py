"""At which noise levels does the bundled prior's SDS push a sphere towards the prompted shape?
(docs/RESULTS.md, issue 17: "the sphere lock").

The true world object (``primitive_scene(shape, colour)``) and a sphere of the same colour are
rendered from 16 of text-to-3D's random cameras at the prior's 32 px. At each diffusion time t the
SDS update of the sphere's renders for the prompt "a {colour} {shape}", −w(t)(ε̂ − ε), is compared
with the direction from the sphere's renders to the object's: the cosine, averaged over 8 noise
draws per view, is printed per t (> 0: SDS moves the sphere's images towards the object). A contact
sheet of the prior's mean one-step estimate x̂₀ per t (rows; first row the sphere, last the object)
is written next to it.

    PYTHONPATH=. python3 scripts/probe_sds_shape_signal.py --shape cone --colour red --out outputs/shape_signal
"""

from __future__ import annotations

import argparse
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from dreamfusion3d.cameras import CameraSamplerConfig, sample_cameras
from dreamfusion3d.guidance.bundled import BundledPrior
from dreamfusion3d.guidance.config import PriorConfig
from dreamfusion3d.world.recipes import primitive_scene
from dreamfusion3d.world.render import render_scene

TIMES = (0.1, 0.35, 0.5, 0.65, 0.8, 0.88, 0.91, 0.94, 0.98)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="cone")
    parser.add_argument("--colour", default="red")
    parser.add_argument("--guidance-scale", type=float, default=None, help="default: the bundled prior's own")
    parser.add_argument("--times", type=float, nargs="+", default=list(TIMES), help="diffusion times (fractions)")
    parser.add_argument("--views", type=int, default=16)
    parser.add_argument("--draws", type=int, default=8, help="noise draws per view and time")
    parser.add_argument("--background", type=float, nargs=3, default=(1.0, 1.0, 1.0), metavar=("R", "G", "B"),
                        help="what the renders are composited over (the prior's training views: white)")
    parser.add_argument("--out", type=Path, default=Path("outputs/shape_signal"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    prior = BundledPrior.from_config(PriorConfig(kind="bundled", guidance_scale=args.guidance_scale))
    g = torch.Generator().manual_seed(0)
    cams, _, _ = sample_cameras(CameraSamplerConfig(), args.views, 32, generator=g)

    def renders(shape: str, **params) -> torch.Tensor:
        scene = primitive_scene(shape, args.colour, seed=0, **params)
        return prior.encode_images(render_scene(scene, cams, background=args.background)["rgb"].permute(0, 3, 1, 2))

    z_obj, z_sph = renders(args.shape), renders("sphere", scale=0.75)
    direction = (z_obj - z_sph).flatten(1)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cond, uncond = prior.encode_text([f"a {args.colour} {args.shape}"]), prior.encode_text([""])

    T, rows = prior.num_train_timesteps, []
    print(f"prompt 'a {args.colour} {args.shape}' on sphere renders, guidance {prior.guidance_scale:g}")
    for frac in args.times:
        t = torch.full((args.views,), min(int(round(frac * T)), T - 1), dtype=torch.long)
        cosines, x0 = [], torch.zeros_like(z_sph)
        ab = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
        for _ in range(args.draws):
            out = prior.sds_loss_latents(z_sph.clone(), cond, uncond, t=t, generator=g)
            push = -out.grad.flatten(1)
            cosines.append((push * direction).sum(1) / push.norm(dim=1).clamp_min(1e-12))
            z_t = prior.scheduler.add_noise(z_sph, out.noise, t)
            x0 += (z_t - (1 - ab).sqrt() * out.noise_pred) / ab.sqrt() / args.draws
        per_view = torch.stack(cosines).mean(0)
        print(f"t = {frac:.2f}: cos(SDS push, object − sphere) {per_view.mean():+.3f} "
              f"(views {per_view.min():+.3f} … {per_view.max():+.3f})", flush=True)
        rows.append(x0[:8])

    sheet = torch.cat([torch.cat(list(r), -1) for r in [z_sph[:8], *rows, z_obj[:8]]], -2)
    sheet = ((sheet.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"x0_{args.shape}_{args.colour}.png"
    iio.imwrite(path, np.kron(sheet, np.ones((3, 3, 1), dtype=np.uint8)))
    print(f"contact sheet (rows: sphere, x̂₀ at t = {', '.join(f'{t:g}' for t in args.times)}, object): {path}")


if __name__ == "__main__":
    main()
