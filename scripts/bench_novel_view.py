"""Time `novel-view`'s sampling of 8 views (the command's defaults) with the shipped model.

Not a test (timings on a shared CPU are noise); run it by hand or through scripts/bench_compare.sh:
    python scripts/bench_novel_view.py [--threads 0] [--repeats 1] [--json out.json] [--sampler ...]
The input is a synthetic centred object (the time does not depend on the picture). The sampler
settings are the ``NovelViewConfig`` defaults of whichever package is on PYTHONPATH, so one
script times any revision's `novel-view` as its users get it.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--sampler", default=None, help="override the default sampler (where the revision has one)")
    parser.add_argument("--steps", type=int, default=None, help="override the default step count")
    parser.add_argument("--dtype", default=None, help="override the default UNet precision (where the revision has one)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from dreamfusion3d.novel_view import infer
    from dreamfusion3d.novel_view.model import NovelViewModel
    from dreamfusion3d.novel_view.sampling import generation_order, sample_views
    from dreamfusion3d.utils.logging import set_quiet

    set_quiet(True)
    defaults = {f.name: f.default for f in dataclasses.fields(infer.NovelViewConfig)
                if f.default is not dataclasses.MISSING}
    cpu = torch.device("cpu")
    if "dtype" in defaults:  # this revision picks the UNet's precision (bfloat16 on AMX CPUs)
        from dreamfusion3d.guidance.loading import resolve_pixel_dtype

        model = NovelViewModel.from_pretrained(None, device=cpu, dtype=resolve_pixel_dtype(args.dtype or defaults["dtype"], cpu))
    else:
        model = NovelViewModel.from_pretrained(None, device=cpu)
    cam, res = model.camera, model.resolution
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, res), torch.linspace(-1, 1, res), indexing="ij")
    disc = (xx.square() + yy.square() < 0.4).float()
    source = torch.stack([1 - 0.2 * disc, 1 - 0.8 * disc, 1 - 0.8 * disc])  # a red disc on white
    src_sph = torch.tensor([0.0, cam.elevation, cam.radius])
    az = torch.linspace(0, 360, args.views + 1)[:-1]
    tgt = torch.stack([az, torch.full_like(az, cam.elevation), torch.full_like(az, cam.radius)], -1)
    kwargs = {"steps": args.steps or defaults["steps"], "guidance_scale": defaults["guidance_scale"],
              "input_weight": defaults["input_weight"], "order": generation_order(src_sph, tgt)}
    if "sampler" in inspect.signature(sample_views).parameters:
        kwargs["sampler"] = args.sampler or defaults.get("sampler", "ddim")
        if args.steps is None and hasattr(infer, "default_steps"):
            kwargs["steps"] = infer.default_steps(kwargs["sampler"])
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        sample_views(model, source[None], src_sph[None], tgt[None], generator=torch.Generator().manual_seed(0), **kwargs)
        times.append(time.perf_counter() - start)
    best = min(times)
    setting = {k: v for k, v in kwargs.items() if k != "order"} | {"dtype": str(next(model.unet.parameters()).dtype)}
    print(f"{args.views} novel views at {res} px: {best:.2f} s ({setting}, {torch.get_num_threads()} threads)")
    if args.json is not None:
        args.json.write_text(json.dumps({"seconds": {f"{args.views} views": best}, "setting": setting}))


if __name__ == "__main__":
    main()
