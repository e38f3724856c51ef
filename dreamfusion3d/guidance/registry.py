"""The diffusion priors, one line each: where the class lives and its defaults.

Adding a prior = one module with a :class:`~dreamfusion3d.guidance.base.Prior` subclass whose
``from_config(config, device)`` builds it and returns ``prior.configure(config)``, plus one line
in :data:`PRIORS`. Everything else (``--prior.kind`` choices, default model and guidance scale,
which kinds take an image, ``load_prior``) is read from this table.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PriorSpec:
    target: str
    """``module:Class`` of the :class:`Prior` subclass (imported only when the kind is used)."""
    model: str | None
    """Default hub id or folder (None: the folder shipped in the package, or required)."""
    guidance_scale: float
    """Default classifier-free guidance scale for SDS."""
    conditioning: Literal["text", "image"] = "text"
    """text, or image (a reference image + a relative camera)."""
    summary: str = ""
    """One line for ``--prior.kind --help``."""
    model_note: str = "the shipped folder"
    """What ``--prior.model`` defaults to when ``model`` is None (for ``--help``)."""

    def load(self) -> type:
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


PRIORS: dict[str, PriorSpec] = {
    "bundled": PriorSpec("dreamfusion3d.guidance.bundled:BundledPrior", None, 20.0, summary="the small pixel model shipped with the package (offline, CPU-friendly)"),
    "stable-diffusion": PriorSpec("dreamfusion3d.guidance.stable_diffusion:StableDiffusionPrior", "stabilityai/stable-diffusion-2-1-base", 100.0, summary="any diffusers Stable Diffusion checkpoint (latent space)"),
    "deepfloyd-if": PriorSpec("dreamfusion3d.guidance.deepfloyd:DeepFloydIFPrior", "DeepFloyd/IF-I-XL-v1.0", 20.0, summary="DeepFloyd IF stage I (64 px pixel space, T5 text encoder)"),
    "exact": PriorSpec("dreamfusion3d.guidance.exact:ExactPrior", None, 7.5, summary="the closed-form prior of a folder of images (for demos and tests)", model_note="required (folder of PNGs + optional captions.json)"),
    "novel_view": PriorSpec("dreamfusion3d.guidance.novel_view:NovelViewPrior", None, 3.0, "image", summary="the shipped 3DiM-style novel-view model (image + relative camera, 32 px)"),
    "zero123": PriorSpec("dreamfusion3d.guidance.zero123:Zero123Prior", "kxic/zero123-xl", 3.0, "image", summary="Zero-1-to-3-family weights in the diffusers Zero1to3 layout (vae, image_encoder, unet, cc_projection, scheduler)"),
}

IMAGE_KINDS = tuple(k for k, spec in PRIORS.items() if spec.conditioning == "image")


def help_text(what: str) -> str:
    """``--help`` of the per-kind options, written from the table (``kind``, ``model``, ``guidance_scale``)."""
    if what == "kind":
        return "; ".join(f"{k}: {s.summary}" for k, s in PRIORS.items())
    if what == "model":
        return "Hub id or local folder. Default per kind: " + ", ".join(
            f"{k} = {s.model or s.model_note}" for k, s in PRIORS.items()) + "."
    return ("Classifier-free guidance scale s (on the image for image priors); default per kind: "
            + ", ".join(f"{k} {s.guidance_scale:g}" for k, s in PRIORS.items()) + ".")


def default_guidance_scale(kind: str, value: float | None = None) -> float:
    """``value``, or the kind's default when None."""
    return PRIORS[kind].guidance_scale if value is None else float(value)
