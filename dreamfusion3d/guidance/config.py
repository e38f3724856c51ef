"""Configuration of the diffusion prior (shared by ``generate`` and ``sample``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import tyro

from ..utils.errors import UserError
from .registry import IMAGE_KINDS, PRIORS, default_guidance_scale, help_text

PriorKind = Literal[tuple(PRIORS)]  # type: ignore[valid-type]  # the registry's kinds, in its order


@dataclass
class PriorConfig:
    """Which frozen diffusion model scores the renders, and how (score distillation)."""

    kind: Annotated[PriorKind, tyro.conf.arg(help=help_text("kind"))] = "bundled"
    model: Annotated[str | None, tyro.conf.arg(help=help_text("model"))] = None
    text_encoder: str | None = None
    """bundled only: sentence-encoder folder or hub id (default: the one the model was trained with)."""
    guidance_scale: Annotated[float | None, tyro.conf.arg(help=help_text("guidance_scale"))] = None
    t_min: float = 0.02
    """Smallest diffusion time, as a fraction of the scheduler's training timesteps."""
    t_max: float = 0.98
    """Largest diffusion time, as a fraction of the scheduler's training timesteps."""
    t_anneal: Literal["none", "linear"] = "none"
    """Timestep annealing: linear moves t_max to t_max_end over the optimisation."""
    t_max_end: float = 0.5
    """Final t_max when t_anneal is linear."""
    t_min_end: float | None = None
    """Final t_min when t_anneal is linear (unset: t_min stays where it is). A high t_min that falls
    to this value gives the first steps only the large noise levels, where the prior shapes."""
    t_mid_prob: float = 0.0
    """Share of the views whose t is drawn from t_mid_range instead of the (annealed) window: a few
    mid-noise draws among early large-t ones (0: none, the window alone)."""
    t_mid_range: tuple[float, float] = (0.4, 0.7)
    """The t-range (fractions) of those views."""
    weighting: Literal["sds", "uniform", "grad-norm"] = "sds"
    """w(t): sds = 1 - alpha_bar_t (DreamFusion), uniform = 1, grad-norm = uniform then the batch's SDS gradient is rescaled to unit mean per-image L2 norm."""
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    """Network precision: auto = float16 on CUDA; on a CPU float32, except bfloat16 for the
    project's own UNets (bundled, novel_view) where the CPU has AMX (bfloat16 matrix units)."""
    variant: str | None = None
    """Weight-file variant to load, e.g. fp16 (DeepFloyd IF ships fp16 files)."""
    vae_resolution: int = 512
    """stable-diffusion and zero123: renders are bilinearly resized to this size before the VAE (zero123 works at 256: the zero123 preset sets it)."""
    attention_slicing: bool = False
    """Compute attention in slices (less GPU memory, a little slower)."""
    channels_last: bool = False
    """Use the channels-last memory format for the UNet (faster convolutions on recent GPUs; on
    by itself for a bfloat16 bundled or novel_view UNet)."""
    cpu_offload: bool = False
    """Keep model parts on the CPU and move each to the GPU while it runs (CUDA + accelerate)."""

    def check(self) -> None:
        """Refuse a t-range outside [0, 1] or upside down (one line, before any model is loaded)."""
        for name in ("t_min", "t_max", "t_max_end", "t_min_end"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise UserError(f"prior.{name} must be in [0, 1], got {value}")
        if not 0.0 <= self.t_mid_prob <= 1.0:
            raise UserError(f"prior.t_mid_prob must be in [0, 1], got {self.t_mid_prob}")
        lo, hi = self.t_mid_range
        if not 0.0 <= lo <= hi <= 1.0:
            raise UserError(f"prior.t_mid_range must be two fractions lo <= hi in [0, 1], got {lo} {hi}")
        if self.t_min > self.t_max:
            raise UserError(f"prior.t_min ({self.t_min}) must not exceed prior.t_max ({self.t_max})")
        if self.t_min_end is not None and self.t_min_end > self.t_max_end and self.t_anneal == "linear":
            raise UserError(f"prior.t_min_end ({self.t_min_end}) must not exceed prior.t_max_end ({self.t_max_end})")

    def resolved_guidance_scale(self) -> float:
        return default_guidance_scale(self.kind, self.guidance_scale)

    def resolved_model(self) -> str | None:
        return self.model if self.model is not None else PRIORS[self.kind].model
