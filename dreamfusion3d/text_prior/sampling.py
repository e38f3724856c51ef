"""Sampling the bundled text prior (previews while training, ``evaluate-prior``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..diffusion.sampling import denoise, make_scheduler
from ..utils.errors import UserError
from ..utils.images import image_grid, save_png
from .model import TextPriorModel
from .text_encoder import SentenceEncoder


@torch.no_grad()
def sample_images(
    model: TextPriorModel,
    encoder: SentenceEncoder,
    prompts: list[str],
    steps: int = 50,
    guidance_scale: float = 5.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    sampler: str = "ddim",
) -> Tensor:
    """DDIM (or DPM-Solver++) samples ``[B,3,H,W]`` in [0, 1] with classifier-free guidance."""
    if sampler not in ("ddim", "dpmsolver"):
        raise UserError(f"unknown sampler {sampler!r} (choose from ddim, dpmsolver)")
    n, r = len(prompts), model.resolution
    cond = encoder.encode(prompts).to(device)
    uncond = encoder.encode([""]).to(device).expand(n, -1)
    emb = torch.cat([cond, uncond])

    def predict(x_in: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        return model(torch.cat([x_in, x_in]), torch.full((2 * n,), int(t), device=device, dtype=torch.long), emb).chunk(2)

    noise = torch.randn(n, 3, r, r, generator=generator).to(device)
    x = denoise(predict, make_scheduler(model.scheduler.config, sampler), noise, steps, guidance_scale)
    return ((x.clamp(-1, 1) + 1) / 2).cpu()


def save_grid(images: Tensor, path: Path, ncol: int = 8, scale: int = 2) -> None:
    """Write ``[B,3,H,W]`` images in [0,1] as one PNG grid (no gaps, each pixel ``scale``² big)."""
    pixels = (images.permute(0, 2, 3, 1).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    grid = image_grid(pixels, columns=min(ncol, images.shape[0]), pad=0)
    save_png(path, grid.repeat(scale, 0).repeat(scale, 1))
