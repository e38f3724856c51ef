"""Time one training step (batch 32, 32 px) of the bundled prior's UNet, without and with
cross-attention, to reproduce the architecture choice in docs/RESULTS.md:
    python scripts/bench_prior_step.py [--threads 2]
"""

import argparse
import time

import torch
from diffusers import UNet2DConditionModel

from dreamfusion3d.text_prior import TextPriorArchitecture, TextPriorModel

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--repeats", type=int, default=5)
args = parser.parse_args()
torch.set_num_threads(args.threads)

arch = TextPriorArchitecture()
shipped = TextPriorModel.from_architecture(arch).unet
cross = UNet2DConditionModel(
    sample_size=32, in_channels=3, out_channels=3, block_out_channels=arch.block_out_channels,
    layers_per_block=arch.layers_per_block, norm_num_groups=arch.norm_num_groups, cross_attention_dim=384,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=8,
)
x, t = torch.randn(32, 3, 32, 32), torch.randint(0, 1000, (32,))
for name, unet, kwargs in (
    ("no cross-attention (shipped)", shipped, {"encoder_hidden_states": torch.zeros(32, 1, 8), "class_labels": torch.randn(32, 384)}),
    ("cross-attention on 16 tokens", cross, {"encoder_hidden_states": torch.randn(32, 16, 384)}),
):
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    times = []
    for i in range(args.repeats + 1):
        t0 = time.perf_counter()
        unet(x, t, **kwargs).sample.square().mean().backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    params = sum(p.numel() for p in unet.parameters()) / 1e6
    print(f"{name}: {params:.2f} M params, {min(times[1:]):.2f} s / batch-32 step (best of {args.repeats})")
