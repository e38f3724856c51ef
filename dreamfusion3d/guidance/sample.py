"""``dreamfusion3d sample``: draw 2D images from a prior, to check it before optimising 3D."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..utils.config import save_config
from ..utils.device import resolve_device
from ..utils.errors import UserError
from ..utils.io import atomic_path
from ..utils.logging import info
from ..utils.outdir import check_output_folder, output_folder
from . import load_prior
from .config import PriorConfig
from .prompts import view_prompt


@dataclass
class SampleConfig:
    """Sample images from a diffusion prior with classifier-free guidance (PNGs, a grid, config.yaml)."""

    prompt: str
    """Text prompt, e.g. "a red cube"."""
    out: Path
    """Output folder (must be empty or new unless --overwrite)."""
    overwrite: bool = False
    """Replace a non-empty --out folder (the new samples are swapped in only when all are drawn)."""
    prior: PriorConfig = field(default_factory=PriorConfig)
    """The prior to sample from."""
    num_images: int = 4
    """How many images to draw."""
    steps: int = 50
    """Denoising steps."""
    guidance_scale: float = 7.5
    """Classifier-free guidance scale for sampling (much lower than the SDS scale)."""
    negative_prompt: str = ""
    """Prompt to steer away from (empty = unconditional)."""
    view: Literal["none", "front", "side", "back", "overhead"] = "none"
    """Append ', <view> view' to the prompt, as view-dependent SDS does."""
    sampler: Literal["ddim", "ddpm", "dpmsolver"] = "ddim"
    """Scheduler, built from the prior's scheduler config (dpmsolver: DPM-Solver++, good in ~25 steps)."""
    eta: float = 0.0
    """DDIM eta (0 = deterministic DDIM, 1 = DDPM-like noise)."""
    batch_size: int = 8
    """Images per network batch."""
    seed: int = 0
    """Random seed."""
    device: str = "auto"
    """auto (cuda:LOCAL_RANK if CUDA is available, else cpu), cpu, cuda, cuda:N, mps."""


def image_grid(images: np.ndarray, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile ``[N, H, W, 3]`` uint8 images into one picture (white gaps)."""
    n, h, w, c = images.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        grid[r * (h + pad): r * (h + pad) + h, q * (w + pad): q * (w + pad) + w] = img
    return grid


def _write_png(path: Path, array: np.ndarray) -> None:
    import imageio.v3 as iio

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, array)


def run(config: SampleConfig) -> None:
    from .sampling import sample_images

    if config.num_images < 1 or config.steps < 1 or config.batch_size < 1:
        raise UserError("num_images, steps and batch_size must be at least 1")
    check_output_folder(config.out, overwrite=config.overwrite)
    device = resolve_device(config.device)
    prior = load_prior(config.prior, device)
    info(f"loaded prior {config.prior.kind} on {device}")
    prompt = config.prompt if config.view == "none" else view_prompt(config.prompt, config.view)
    info(f"sampling {config.num_images} image(s) of {prompt!r} ({config.sampler}, {config.steps} steps, "
         f"guidance {config.guidance_scale})")
    generator = torch.Generator().manual_seed(config.seed)
    chunks = []
    for start in range(0, config.num_images, config.batch_size):
        n = min(config.batch_size, config.num_images - start)
        chunks.append(sample_images(prior, prompt, n, config.steps, config.guidance_scale, config.negative_prompt,
                                    config.sampler, config.eta, generator).cpu())
    images = (torch.cat(chunks).permute(0, 2, 3, 1).numpy() * 255.0).round().astype(np.uint8)  # [N, H, W, 3]
    with output_folder(config.out, overwrite=config.overwrite, staged=True) as out:
        for i, img in enumerate(images):
            _write_png(out / f"sample_{i:03d}.png", img)
        _write_png(out / "grid.png", image_grid(images))
        save_config(config, out / "config.yaml", command="sample")
    info(f"wrote {len(images)} samples, grid.png and config.yaml to {config.out}")
