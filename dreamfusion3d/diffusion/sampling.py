"""The one guided sampling loop: a diffusers scheduler driven by a noise-prediction function.

Every sampler of the project (``sample``, the text prior's previews and evaluation, novel views,
the sampler probes) is :func:`denoise` over its own ``predict(x_in, t)``: the function returns
the network output for the conditional and the unconditional branch, ``(cond, uncond)``, which
classifier-free guidance mixes, or one tensor when there is nothing to mix. The output is what
the scheduler expects (ε, or v for a v-prediction scheduler): guidance is linear in it either way.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Mapping, Union

import torch
from torch import Tensor

from ..utils.errors import UserError

SamplerKind = Literal["ddim", "ddpm", "dpmsolver", "unipc"]
Prediction = Union[Tensor, "tuple[Tensor, Tensor]"]


def classifier_free_guidance(eps_uncond: Tensor, eps_cond: Tensor, scale: float) -> Tensor:
    """ε̂ = ε_u + s (ε_c − ε_u)."""
    return eps_uncond + scale * (eps_cond - eps_uncond)


def make_scheduler(config: Mapping[str, Any], kind: str = "ddim", epsilon: bool = True):
    """A sampling scheduler built from a (training) scheduler config. ``epsilon``: the network
    output is ε (``Prior.predict_noise``), so the prediction type is fixed to epsilon; DDPM then
    uses fixed variances (learned-variance channels, as DeepFloyd IF's, are dropped)."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler

    extra: dict[str, Any] = {"prediction_type": "epsilon"} if epsilon else {}
    if kind == "ddim":
        return DDIMScheduler.from_config(config, **extra)
    if kind == "dpmsolver":
        return DPMSolverMultistepScheduler.from_config(config, **extra)
    if kind == "unipc":
        return UniPCMultistepScheduler.from_config(config, **extra)
    if kind == "ddpm":
        return DDPMScheduler.from_config(config, **extra, **({"variance_type": "fixed_small"} if epsilon else {}))
    raise UserError(f"unknown sampler {kind!r} (choose from ddim, ddpm, dpmsolver, unipc)")


@torch.no_grad()
def denoise(
    predict: Callable[[Tensor, Tensor], Prediction],
    scheduler,
    noise: Tensor,
    steps: int,
    guidance_scale: float = 1.0,
    device: torch.device | str | None = None,
    step_kwargs: Mapping[str, Any] | None = None,
    callback: Callable[[], None] | None = None,
) -> Tensor:
    """Run ``scheduler`` from ``noise`` (unit variance; scaled by ``init_noise_sigma`` here) for
    ``steps`` steps and return the final sample.

    ``predict(x_in, t)`` gets the scheduler-scaled input and the timestep; it returns
    ``(cond, uncond)`` network outputs (mixed with ``guidance_scale``) or one output.
    ``step_kwargs`` go to ``scheduler.step`` (e.g. ``eta``, ``generator``); ``callback()`` runs
    after every step (progress bars)."""
    scheduler.set_timesteps(steps, device=device)
    x = noise * scheduler.init_noise_sigma
    kwargs = dict(step_kwargs or {})
    for t in scheduler.timesteps:
        out = predict(scheduler.scale_model_input(x, t), t)
        eps = out if isinstance(out, Tensor) else classifier_free_guidance(out[1], out[0], guidance_scale)
        x = scheduler.step(eps, t, x, **kwargs).prev_sample
        if callback is not None:
            callback()
    return x
