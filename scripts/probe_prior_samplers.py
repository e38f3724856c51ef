"""Sample a text prior with several samplers (x0 clipping on/off, DDIM / DPM-Solver++, CFG) and let
the evaluation classifier judge shape and colour (docs/RESULTS.md, "What changed on 2026-11-23"):
    python scripts/probe_prior_samplers.py PRIOR_FOLDER [K] [ddim,ddim_noclip,dpm++,...]
K samples per training caption (default 2); the last argument picks variants (default: all).
"""

import collections
import sys
import time

import numpy as np
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

from dreamfusion3d.diffusion import denoise
from dreamfusion3d.text_prior.evaluate import evaluation_captions
from dreamfusion3d.text_prior import SentenceEncoder, TextPriorModel
from dreamfusion3d.judge.model import ShapeColorClassifier


@torch.no_grad()
def sample(model, encoder, scheduler, prompts, steps, guidance_scale, gen):
    """[N,3,R,R] in [0, 1] with classifier-free guidance."""
    n, r = len(prompts), model.resolution
    emb = torch.cat([encoder.encode(prompts), encoder.encode([""]).expand(n, -1)])

    def predict(x_in, t):
        return model(torch.cat([x_in, x_in]), torch.full((2 * n,), int(t), dtype=torch.long), emb).chunk(2)

    x = denoise(predict, scheduler, torch.randn(n, 3, r, r, generator=gen), steps, guidance_scale,
                step_kwargs={"generator": gen})
    return (x.clamp(-1, 1) + 1) / 2


def main() -> None:
    torch.set_num_threads(1)
    model = TextPriorModel.from_pretrained(sys.argv[1])
    encoder, judge = SentenceEncoder.from_pretrained(), ShapeColorClassifier.from_pretrained()
    per_caption = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    config = model.scheduler.config
    variants = {  # name: (scheduler factory, steps, guidance)
        "ddim": (lambda: DDIMScheduler.from_config(config), 50, 5.0),
        "ddim_noclip": (lambda: DDIMScheduler.from_config(config, clip_sample=False), 50, 5.0),
        "ddim_thresh": (lambda: DDIMScheduler.from_config(config, clip_sample=False, thresholding=True), 50, 5.0),
        "ddim_trailing": (lambda: DDIMScheduler.from_config(config, timestep_spacing="trailing"), 50, 5.0),
        "dpm++": (lambda: DPMSolverMultistepScheduler.from_config(config), 25, 5.0),
        "ddim_cfg3": (lambda: DDIMScheduler.from_config(config), 50, 3.0),
    }
    for name in sys.argv[3].split(",") if len(sys.argv) > 3 else list(variants):
        make, steps, guidance = variants[name]
        t0, gen = time.time(), torch.Generator().manual_seed(0)
        shape_hits, colour_hits = collections.defaultdict(list), []
        for text, shape, colour in evaluation_captions(False):
            images = sample(model, encoder, make(), [text] * per_caption, steps, guidance, gen)
            pred_shape, pred_colour = judge.predict(images)
            shape_hits[shape] += [p == shape for p in pred_shape]
            colour_hits += [p == colour for p in pred_colour]
        shape_acc = np.mean([hit for hits in shape_hits.values() for hit in hits])
        by_shape = {s: round(float(np.mean(h)), 2) for s, h in shape_hits.items()}
        print(f"{name:14s} shape {shape_acc:.3f} colour {np.mean(colour_hits):.3f} {by_shape} "
              f"{time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
