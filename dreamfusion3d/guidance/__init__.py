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
from .prompts import Conditioning, PromptConfig, PromptProcessor, view_prompt
from ..utils.errors import UserError


def load_prior(config: PriorConfig, device: torch.device | str = "cpu") -> Prior:
    """Build the prior that ``config`` names, on ``device``, with its SDS settings applied."""
    for name in ("t_min", "t_max", "t_max_end"):
        value = getattr(config, name)
        if not 0.0 <= value <= 1.0:
            raise UserError(f"prior.{name} must be in [0, 1], got {value}")
    if config.t_min > config.t_max:
        raise UserError(f"prior.t_min ({config.t_min}) must not exceed prior.t_max ({config.t_max})")
    device = torch.device(device)
    if config.kind == "bundled":
        from .bundled import BundledPrior

        prior: Prior = BundledPrior.from_config(config, device)
    elif config.kind == "stable-diffusion":
        from .stable_diffusion import StableDiffusionPrior

        prior = StableDiffusionPrior.from_config(config, device)
    elif config.kind == "deepfloyd-if":
        from .deepfloyd import DeepFloydIFPrior

        prior = DeepFloydIFPrior.from_config(config, device)
    elif config.kind == "novel_view":
        from .novel_view import NovelViewPrior

        prior = NovelViewPrior.from_config(config, device)
    elif config.kind == "zero123":
        from .zero123 import Zero123Prior

        prior = Zero123Prior.from_config(config, device)
    elif config.kind == "exact":
        if config.model is None:
            raise UserError("prior kind 'exact' needs --prior.model FOLDER (images + optional captions.json)")
        prior = ExactPrior.from_folder(config.model, device=device)
    else:
        raise UserError(f"unknown prior kind {config.kind!r}")
    prior.guidance_scale = config.resolved_guidance_scale()
    prior.t_min, prior.t_max = config.t_min, config.t_max
    prior.t_anneal, prior.t_max_end = config.t_anneal, config.t_max_end
    prior.weighting = config.weighting
    return prior


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
    "view_prompt",
]
