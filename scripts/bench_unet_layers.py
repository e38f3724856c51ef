"""One call of a shipped bfloat16 UNet with the CPU stand-ins of ``diffusion.cpu_bfloat16`` against
the same UNet with some of them put back to torch's / diffusers' own classes, side by side in one
process (the two take turns, the order flipping every round), and whether both give the same ε.

    python scripts/bench_unet_layers.py [--model text_prior|novel_view] [--threads 2] [--rounds 60]
        [--without Conv2dCL ResnetBlock2DCL GroupNormCL Float32Linear]

Input: batch 4 at 32 px, timesteps 20 / 300 / 600 / 950, as in ``bench``'s step. Times are wall
clock with several threads, CPU time with one; prints the median call of each and their ratio.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch
from torch import nn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="text_prior", choices=["text_prior", "novel_view"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--without", nargs="+", default=["Conv2dCL", "ResnetBlock2DCL"],
                        help="stand-ins put back to the library's class in the second UNet")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from diffusers.models.resnet import ResnetBlock2D

    import dreamfusion3d
    from dreamfusion3d.diffusion import cpu_bfloat16 as cb
    from dreamfusion3d.diffusion.unet_io import load_unet_parts

    library = {"Conv2dCL": nn.Conv2d, "ResnetBlock2DCL": ResnetBlock2D, "GroupNormCL": nn.GroupNorm,
               "Float32Linear": nn.Linear}
    unet, _ = load_unet_parts(Path(dreamfusion3d.__file__).parent / "assets" / args.model, args.model, torch.bfloat16)
    unet.eval().requires_grad_(False)
    other = copy.deepcopy(unet)
    for module in other.modules():
        if type(module).__name__ in args.without:
            module.__class__ = library[type(module).__name__]
    cfg = unet.config
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, cfg.in_channels, 32, 32, generator=gen).to(torch.bfloat16)
    x = x.contiguous(memory_format=torch.channels_last)
    kwargs = {"encoder_hidden_states": torch.zeros(4, 1, cfg.cross_attention_dim, dtype=torch.bfloat16)}
    if cfg.class_embed_type == "projection":
        kwargs["class_labels"] = torch.randn(4, cfg.projection_class_embeddings_input_dim, generator=gen).to(torch.bfloat16)
    t = torch.tensor([20, 300, 600, 950])

    def call(model):
        with torch.no_grad():
            return model(x, t, **kwargs).sample

    same = torch.equal(call(unet), call(other))
    clock = time.process_time if args.threads == 1 else time.perf_counter
    times = {"stand-ins": [], "without": []}
    pair = [("stand-ins", unet), ("without", other)]
    for r in range(args.rounds + 2):  # two warm-up rounds
        for name, model in (pair if r % 2 == 0 else pair[::-1]):
            start = clock()
            call(model)
            if r >= 2:
                times[name].append(clock() - start)
    a, b = (statistics.median(times[k]) for k in ("stand-ins", "without"))
    kind = "CPU" if args.threads == 1 else "wall"
    print(f"{args.model}, without {' '.join(args.without)}: same ε {same}; one call ({kind}, median of "
          f"{args.rounds}, {args.threads} thread(s)): stand-ins {1e3 * a:.2f} ms, without {1e3 * b:.2f} ms, "
          f"ratio {a / b:.3f}")


if __name__ == "__main__":
    main()
