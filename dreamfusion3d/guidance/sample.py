"""``dreamfusion3d sample``: draw 2D images from a prior, to check it before optimising 3D."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import tyro

from ..utils.config import save_config
from ..utils.device import resolve_device
from ..utils.errors import UserError
from ..utils.images import image_grid, save_png
from ..utils.logging import info
from ..utils.outdir import check_output_folder, output_folder
from . import load_prior
from .config import IMAGE_KINDS, PriorConfig
from .prompts import view_prompt


@dataclass
class SamplePriorConfig(PriorConfig):
    """The prior to sample from (its guidance scale is `sample`'s own --guidance-scale)."""

    guidance_scale: tyro.conf.Suppress[float | None] = None


@dataclass
class SampleConfig:
    """Sample images from a diffusion prior with classifier-free guidance (PNGs, a grid, config.yaml)."""

    out: Path
    """Output folder (must be empty or new unless --overwrite)."""
    overwrite: bool = False
    """Replace a non-empty --out folder (the new samples are swapped in only when all are drawn)."""
    prompt: str = ""
    """Text prompt, e.g. "a red cube" (text priors)."""
    image: Path | None = None
    """Input image (image priors: --prior.kind novel_view or zero123), cut out and centred as
    `novel-view` does; the samples are views of its object from the camera below."""
    azimuth: float = 90.0
    """Image priors: azimuth of the sampled views relative to the input (degrees)."""
    elevation: float | None = None
    """Image priors: elevation of the sampled views (None: the input camera's)."""
    prior: SamplePriorConfig = field(default_factory=SamplePriorConfig)
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


def _image_conditions(prior, pixels, config: SampleConfig):
    """(cond, uncond) of the input image seen from the prior's canonical camera, for the target view."""
    from ..novel_view.images import centre_object
    from ..novel_view.model import CameraPrior
    from .image_prompt import ImagePrompt

    cam = getattr(prior, "camera", None) or CameraPrior()
    image = centre_object(pixels, 256, cam.object_fraction)
    elevation = cam.elevation if config.elevation is None else config.elevation
    target = torch.tensor([[cam.azimuth + config.azimuth, elevation, cam.radius]])
    return ImagePrompt(prior, image, (cam.azimuth, cam.elevation, cam.radius)).conditioning(target)


def run(config: SampleConfig) -> None:
    from .sampling import sample_conditioned

    if config.num_images < 1 or config.steps < 1 or config.batch_size < 1:
        raise UserError("num_images, steps and batch_size must be at least 1")
    check_output_folder(config.out, overwrite=config.overwrite)
    image_prior = config.prior.kind in IMAGE_KINDS
    pixels = None
    if image_prior:
        from ..novel_view.images import read_image

        if config.image is None:
            raise UserError(f"prior kind {config.prior.kind} is conditioned on an image: pass --image IMG")
        pixels = read_image(config.image)  # checked before loading the model or writing anything
    elif config.image is not None:
        raise UserError(f"--image needs an image prior (--prior.kind {' or '.join(IMAGE_KINDS)})")
    elif not config.prompt.strip():
        raise UserError("the prompt is empty: pass --prompt \"a red cube\"")
    device = resolve_device(config.device)
    prior = load_prior(dataclasses.replace(config.prior, guidance_scale=config.guidance_scale), device)
    info(f"loaded prior {config.prior.kind} on {device}")
    generator = torch.Generator().manual_seed(config.seed)
    if image_prior:
        what = f"views of {config.image} at azimuth {config.azimuth:g}"
        cond, uncond = _image_conditions(prior, pixels, config)
    else:
        prompt = config.prompt if config.view == "none" else view_prompt(config.prompt, config.view)
        what = repr(prompt)
        cond, uncond = prior.encode_text([prompt]), prior.encode_text([config.negative_prompt])
    info(f"sampling {config.num_images} image(s) of {what} ({config.sampler}, {config.steps} steps, "
         f"guidance {config.guidance_scale})")
    chunks = []
    for start in range(0, config.num_images, config.batch_size):
        n = min(config.batch_size, config.num_images - start)
        chunks.append(sample_conditioned(prior, cond, uncond, n, config.steps, config.guidance_scale,
                                         config.sampler, config.eta, generator).cpu())
    images = (torch.cat(chunks).permute(0, 2, 3, 1).numpy() * 255.0).round().astype(np.uint8)  # [N, H, W, 3]
    with output_folder(config.out, overwrite=config.overwrite, staged=True) as out:
        for i, img in enumerate(images):
            save_png(out / f"sample_{i:03d}.png", img)
        save_png(out / "grid.png", image_grid(images))
        save_config(config, out / "config.yaml", command="sample")
    info(f"wrote {len(images)} samples, grid.png and config.yaml to {config.out}")
