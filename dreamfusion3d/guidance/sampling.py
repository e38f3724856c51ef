"""Drawing 2D images from a prior with a diffusers scheduler (to check a prior before 3D)."""

from __future__ import annotations

from typing import Literal

import torch
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

from ..utils.logging import progress
from .base import Condition, Prior, cat_conditions, expand_condition
from .sds import classifier_free_guidance

SamplerKind = Literal["ddim", "ddpm", "dpmsolver"]


def make_scheduler(prior: Prior, kind: SamplerKind = "ddim"):
    """A sampling scheduler built from the prior's own scheduler config. ``predict_noise`` always
    returns ε, so the prediction type is fixed to epsilon; DDPM uses fixed variances since the
    learned-variance channels (DeepFloyd IF) are dropped."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    if kind == "dpmsolver":
        return DPMSolverMultistepScheduler.from_config(prior.scheduler.config, prediction_type="epsilon")
    if kind == "ddim":
        return DDIMScheduler.from_config(prior.scheduler.config, prediction_type="epsilon")
    if kind == "ddpm":
        return DDPMScheduler.from_config(prior.scheduler.config, prediction_type="epsilon", variance_type="fixed_small")
    raise ValueError(f"unknown sampler {kind!r}")


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
    scheduler = make_scheduler(prior, sampler)
    scheduler.set_timesteps(steps, device=prior.device)
    emb = cat_conditions([expand_condition(cond, num_images), expand_condition(uncond, num_images)])
    x = randn_tensor(prior.latent_shape(num_images), generator=generator, device=prior.device, dtype=torch.float32)
    x = x * scheduler.init_noise_sigma
    extra = {"eta": eta} if sampler == "ddim" else {}
    steps_iter = progress(scheduler.timesteps, desc="sampling") if show_progress else scheduler.timesteps
    for t in steps_iter:
        x_in = scheduler.scale_model_input(x, t)
        tt = t.to(prior.device).long().expand(2 * num_images)
        eps_cond, eps_uncond = prior.predict_noise(torch.cat([x_in, x_in]), tt, emb).chunk(2)
        eps = classifier_free_guidance(eps_uncond, eps_cond, guidance_scale)
        x = scheduler.step(eps, t, x, generator=generator, **extra).prev_sample
    return prior.decode(x)
