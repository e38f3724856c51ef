"""Stochastic-conditioning PSNR and time of each novel-view sampler on held-out world objects.

    PYTHONPATH=$PWD python scripts/probe_novel_view_sampler.py [--objects 6] [--targets 6] \
        [--configs ddim:50 dpmsolver:20 unipc:20] [--dtypes float32 bfloat16] [--json out.json]
Objects: the first test-split objects of the ``novel_view_data`` recipe (never trained on),
rebuilt from their seeds, rendered at the model's resolution (supersampled); input = the view
nearest the canonical camera, targets spread by index (as ``evaluate-novel-view``). All objects
go through one batched ``sample_views`` call per configuration, same seed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=6)
    parser.add_argument("--targets", type=int, default=6)
    parser.add_argument("--configs", nargs="+", default=["ddim:50", "dpmsolver:20", "unipc:20"])
    parser.add_argument("--dtypes", nargs="+", default=["float32"], help="UNet precisions to score (float32, bfloat16, auto)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("eval_i23d", REPO / "scripts" / "eval_image_to_3d.py")
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    from dreamfusion3d.novel_view.data import resize
    from dreamfusion3d.novel_view.evaluate import choose_views, psnr
    from dreamfusion3d.novel_view.model import NovelViewModel
    from dreamfusion3d.novel_view.sampling import generation_order, sample_views

    from dreamfusion3d.guidance.loading import resolve_pixel_dtype

    cpu = torch.device("cpu")
    models = {}
    for name in args.dtypes:
        models[name] = NovelViewModel.from_pretrained(None, device=cpu, dtype=resolve_pixel_dtype(name, cpu))
    model = models[args.dtypes[0]]
    res, cam = model.resolution, model.camera
    canonical = torch.tensor([cam.azimuth, cam.elevation, cam.radius])
    sources, src_sph, truths, tgt_sph = [], [], [], []
    for _name, scene, cams in helpers.held_out_objects(args.objects):
        sph = helpers.sph(cams)
        src, targets = choose_views(sph, canonical, args.targets)
        rgb = resize(helpers.render_truth(scene, cams, 2 * res)[0], res)
        sources.append(rgb[src]); src_sph.append(sph[src]); truths.append(rgb[targets]); tgt_sph.append(sph[targets])
    source, s_sph, truth, t_sph = (torch.stack(x) for x in (sources, src_sph, truths, tgt_sph))
    order = generation_order(s_sph[0], t_sph[0])
    rows = {}
    for dtype_name, c in [(d, c) for c in args.configs for d in args.dtypes]:
        sampler, steps = c.split(":")
        if len(args.dtypes) > 1:
            c = f"{c} {dtype_name}"
        start = time.perf_counter()
        views = sample_views(models[dtype_name], source, s_sph, t_sph, steps=int(steps), sampler=sampler,
                             order=order, generator=torch.Generator().manual_seed(0))
        seconds = time.perf_counter() - start
        np_ = lambda t: t.permute(1, 2, 0).double().numpy()  # noqa: E731
        scores = [psnr(np_(truth[b, k]), np_(views[b, k])) for b in range(len(source)) for k in range(truth.shape[1])]
        rows[c] = {"psnr": float(np.mean(scores)), "psnr_sem": float(np.std(scores) / np.sqrt(len(scores))),
                   "seconds": seconds, "views": len(scores)}
        print(f"{c:<12} PSNR {rows[c]['psnr']:.2f} ± {rows[c]['psnr_sem']:.2f} dB over {len(scores)} views, "
              f"{seconds:.1f} s", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
