"""Drawing 2D images from a prior with a diffusers scheduler (to check a prior before 3D)."""

from __future__ import annotations

import torch
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

from ..diffusion.sampling import SamplerKind, denoise
from ..diffusion.sampling import make_scheduler as _make_scheduler
from ..utils.logging import progress
from .base import Condition, Prior, cat_conditions, expand_condition


def make_scheduler(prior: Prior, kind: SamplerKind = "ddim"):
    """A sampling scheduler built from the prior's own scheduler config (``predict_noise``
    returns ε, so the prediction type is epsilon)."""
    return _make_scheduler(prior.scheduler.config, kind)


@torch.no_grad()
def sample_images(
    prior: Prior,
    prompt: str,
    num_images: int,
    steps: int = 50,
    guidance_scale: float = 7.5,
    negative_prompt: str = "",
    sampler: SamplerKind = "ddim",
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    show_progress: bool = True,
) -> Tensor:  # [N, 3, H, W] in [0, 1]
    """Classifier-free-guided ancestral/DDIM sampling of a text prior from pure noise."""
    cond = prior.encode_text([prompt] * num_images)  # [N, ...]
    uncond = prior.encode_text([negative_prompt] * num_images)
    return sample_conditioned(prior, cond, uncond, num_images, steps, guidance_scale, sampler, eta, generator,
                              show_progress)


@torch.no_grad()
def sample_conditioned(
    prior: Prior,
    cond: Condition,  # [N, ...] text embeddings or an image prior's condition
    uncond: Condition,
    num_images: int,
    steps: int = 50,
    guidance_scale: float = 7.5,
    sampler: SamplerKind = "ddim",
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    show_progress: bool = True,
) -> Tensor:  # [N, 3, H, W] in [0, 1]
    """Sampling with any conditioning the prior understands (text or image + camera), decoded."""
    emb = cat_conditions([expand_condition(cond, num_images), expand_condition(uncond, num_images)])
    noise = randn_tensor(prior.latent_shape(num_images), generator=generator, device=prior.device, dtype=torch.float32)

    def predict(x_in: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        tt = t.to(prior.device).long().expand(2 * num_images)
        return prior.predict_noise(torch.cat([x_in, x_in]), tt, emb).chunk(2)

    extra = {"eta": eta} if sampler == "ddim" else {}
    with progress(total=steps, desc="sampling", disable=not show_progress) as bar:
        x = denoise(predict, make_scheduler(prior, sampler), noise, steps, guidance_scale, prior.device,
                    {"generator": generator, **extra}, bar.update)
    return prior.decode(x)
