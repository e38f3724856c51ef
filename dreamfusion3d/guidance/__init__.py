"""Diffusion priors and score distillation (SDS).

One :class:`Prior` interface over the text priors — the bundled pixel prior, Stable Diffusion
(latent), DeepFloyd IF stage I (pixel), the exact closed-form prior of an image set — and the
image-conditioned ones — the bundled novel-view model, Zero-1-to-3 weights, the exact prior of
posed views — plus view-dependent prompting (:class:`PromptProcessor`) and image conditioning
(:class:`ImagePrompt`). ``load_prior(PriorConfig)`` builds one.
"""

from __future__ import annotations

import torch

from .base import Prior, SDSOutput
from .config import PriorConfig
from .exact import ExactImagePrior, ExactPrior
from .image_prompt import ImagePrompt
from .registry import PRIORS
from .prompts import Conditioning, PromptConfig, PromptProcessor, view_prompt
from ..utils.errors import UserError


def load_prior(config: PriorConfig, device: torch.device | str = "cpu") -> Prior:
    """Build the prior that ``config`` names, on ``device``, with its SDS settings applied."""
    spec = PRIORS.get(config.kind)
    if spec is None:
        raise UserError(f"unknown prior kind {config.kind!r}; choose from: {', '.join(PRIORS)}")
    config.check()
    return spec.load().from_config(config, torch.device(device))


__all__ = [
    "Prior",
    "SDSOutput",
    "PriorConfig",
    "PromptConfig",
    "PromptProcessor",
    "Conditioning",
    "ExactPrior",
    "ExactImagePrior",
    "ImagePrompt",
    "load_prior",
    "PRIORS",
    "view_prompt",
]
