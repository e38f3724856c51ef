"""The SDS gradient sizes of the two shipped priors on image-to-3d's random views (docs/RESULTS.md,
"joint text + image guidance"): why ``text_prior.weight`` defaults to 0.5.

For a few primitive objects (the input: a world render at the novel-view model's canonical camera),
random training views are scored by the novel-view prior (conditioned on the input) and by the
bundled text prior (the object's caption, view-dependent), each with its default guidance scale and
SDS weighting, on two kinds of render: the initial SDF's (step 0) and the true object's (the goal).
Printed: the mean per-view L2 norm of w(t)(ε̂ − ε) in model space, per prior, and their ratio.

    PYTHONPATH=. OMP_NUM_THREADS=1 python3 scripts/joint_guidance_scale.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from dreamfusion3d.cameras import orbit_cameras, sample_cameras
from dreamfusion3d.generate.image import ImageGeneration, ImageTo3DConfig
from dreamfusion3d.world.recipes import primitive_scene
from dreamfusion3d.world.render import render_scene

OBJECTS = [("cube", "red", "a red cube"), ("sphere", "blue", "a blue sphere"), ("cone", "green", "a green cone")]
BATCHES, BATCH = 8, 4


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for shape, colour, prompt in OBJECTS:
        scene = primitive_scene(shape, colour, seed=0)
        ref = render_scene(scene, orbit_cameras([0.0], [20.0], 2.9, 40.0, 128))
        pixels = torch.cat([ref["rgb"][0], ref["alpha"][0]], dim=-1).numpy().astype(np.float32)
        cfg = ImageTo3DConfig(prompt=prompt, seed=0)
        gen = ImageGeneration(cfg, f"image:{shape}", pixels, Path(tempfile.mkdtemp()))
        g = torch.Generator().manual_seed(0)
        for kind in ("initial", "object"):
            img_norms, txt_norms = [], []
            for _ in range(BATCHES):
                cams, az, el = sample_cameras(cfg.cameras, BATCH, cfg.resolution, generator=g)
                if kind == "initial":
                    with torch.no_grad():
                        out = gen.representation.render(cams, shading="lambertian",
                                                        light_positions=gen._lights(cams.positions), ambient=0.3)
                    images = out["rgb"].permute(0, 3, 1, 2)
                else:
                    images = render_scene(scene, cams)["rgb"].permute(0, 3, 1, 2)
                img_norms.append(gen.image_prompt.sds_loss(images, cams, generator=g).grad_norm)
                txt_norms.append(gen.text_prompts.sds_loss(images, az, el, generator=g).grad_norm)
            i, t = torch.cat(img_norms).mean().item(), torch.cat(txt_norms).mean().item()
            rows.append((prompt, kind, i, t))
            print(f"{prompt:>14} {kind:>8}: image prior {i:7.2f}  text prior {t:7.2f}  text/image {t / i:5.2f}",
                  flush=True)
    ratio = np.mean([t / i for _, _, i, t in rows])
    print(f"mean text/image ratio of the SDS gradient norms: {ratio:.2f}")


if __name__ == "__main__":
    main()
