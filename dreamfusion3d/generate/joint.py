"""Joint text + image guidance for ``image-to-3d --prompt`` (Magic123-style).

Magic123 (Qian et al. 2023) scores the random views with two priors at once: a 3D-aware image
prior (Zero-1-to-3: the input image + the relative camera) and a 2D text prior (the prompt), and
adds their SDS losses with weights. Here the image prior's SDS is :class:`~..guidance.ImagePrompt`'s
and the text prior's is :class:`~..guidance.PromptProcessor`'s — the same objects ``generate``
uses (view-dependent prompts, negative prompt, Perp-Neg from the ``prompting`` section) — on the
same renders; each prior draws its own timesteps and noise from the run's generator, the image
prior first, so a run without a prompt draws exactly what it drew before this option existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

from torch import Tensor

from ..guidance import PriorConfig
from ..guidance.base import SDSOutput
from ..guidance.registry import IMAGE_KINDS, PRIORS
from ..utils.errors import UserError
from .config import Ramp


@dataclass
class TextPriorConfig(PriorConfig):
    """The text prior of ``image-to-3d --prompt`` (unused without a prompt).

    Defaults: the bundled text prior (32 px, the novel-view model's size; guidance scale 20, its
    ``generate`` default), the same t-range and no annealing, as the image prior here, so both
    priors see the same noise levels throughout the run.

    The weight, 0.1: Magic123 lets the 3D-aware image prior lead (the 2D text prior adds detail
    and identity, and on its own it makes multi-face objects), with the text term weaker. Measured
    on image-to-3d's random views at 32 px (scripts/joint_guidance_scale.py, docs/RESULTS.md), the
    bundled text prior's SDS gradient is about 4.6 times the novel-view prior's (guidance scale 20
    vs 3; 1.9 to 5.7 over three objects, on initial and on true-object renders). Weight 0.1 puts
    the text prior's pull at about half the image prior's — the prompt can correct what the image
    prior gets wrong on the unseen sides without overruling it (not yet swept on full runs).
    Another text prior has another gradient scale (stable-diffusion: latents, guidance 100):
    measure before reusing 0.1.
    """

    weight: Ramp = dc_field(default_factory=lambda: Ramp(0.1))
    """Weight of the text prior's SDS term (the image prior's is sds_weight, 1 by default); 0.1:
    the bundled text prior's pull at about half the novel-view prior's."""


def check_text_guidance(prompt: str | None, text_prior: TextPriorConfig) -> str | None:
    """The stripped prompt (None: no text guidance); an empty prompt or an image-conditioned text
    prior is a :class:`UserError` (one line, before anything is written)."""
    if prompt is None:
        return None
    if not prompt.strip():
        raise UserError("the prompt is empty: pass --prompt \"a red cube\", or leave --prompt out "
                        "for image guidance only")
    if text_prior.kind in IMAGE_KINDS:
        text_kinds = ", ".join(k for k in PRIORS if k not in IMAGE_KINDS)
        raise UserError(f"--text-prior.kind must be a text prior ({text_kinds}), not {text_prior.kind!r}")
    for name in ("t_min", "t_max", "t_max_end"):
        value = getattr(text_prior, name)
        if not 0.0 <= value <= 1.0:
            raise UserError(f"--text-prior.{name.replace('_', '-')} must lie in [0, 1], got {value:g}")
    if text_prior.t_min >= text_prior.t_max:
        raise UserError(f"--text-prior.t-min ({text_prior.t_min:g}) must be below "
                        f"--text-prior.t-max ({text_prior.t_max:g})")
    return prompt.strip()


def joint_sds_loss(image_prompt, text_prompts, images: Tensor, cameras, azimuth_deg: Tensor,
                   elevation_deg: Tensor, image_weight: float = 1.0, text_weight: float = 0.0,
                   **options) -> tuple[SDSOutput, dict[str, Tensor]]:
    """``image_weight · SDS_image + text_weight · SDS_text`` on renders ``images [B, 3, H, W]``.

    Returns the image prior's :class:`SDSOutput` with ``loss`` replaced by the weighted sum, and
    the two weighted terms (detached, for the log; empty without ``text_prompts``). ``options``
    (``generator``, ``progress``, ``t``, ``noise``, …) go to both priors' ``sds_loss``.
    """
    sds = image_prompt.sds_loss(images, cameras, **options)
    if image_weight != 1.0:
        sds.loss = sds.loss * image_weight
    if text_prompts is None:
        return sds, {}
    text = text_prompts.sds_loss(images, azimuth_deg, elevation_deg, **options)
    text_loss = text.loss * text_weight
    terms = {"sds_image": sds.loss.detach(), "sds_text": text_loss.detach()}
    sds.loss = sds.loss + text_loss
    return sds, terms


__all__ = ["TextPriorConfig", "check_text_guidance", "joint_sds_loss"]
