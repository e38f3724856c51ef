"""The arithmetic of score distillation, shared by every prior.

Kept free of any model so that each formula can be tested on its own:

* timesteps: uniform integers in ``[t_min·T, t_max·T]`` (inclusive), with ``t_max`` optionally
  annealed towards ``t_max_end`` as optimisation progresses;
* classifier-free guidance ``ε̂ = ε_u + s (ε_c − ε_u)`` and its Perp-Neg variant
  (Armandpour et al. 2023), which subtracts only the part of each negative direction that is
  perpendicular to the positive one;
* the weight ``w(t)`` and the surrogate loss whose gradient is the SDS gradient.

Reduction of the surrogate (documented once, relied on by the generate loop):
``loss = ½ Σ_pixels ‖z − sg(z − g)‖² / B`` — summed over channels and pixels, averaged over the
batch. Hence ``∂loss/∂z_b = g_b / B`` where ``g_b = w(t_b)(ε̂_b − ε_b)``: every view in the batch
contributes its SDS gradient, and the learning rate does not depend on the batch size.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ..diffusion.sampling import classifier_free_guidance

Weighting = Literal["sds", "uniform", "grad-norm"]
TAnneal = Literal["none", "linear"]
WEIGHTINGS: tuple[str, ...] = ("sds", "uniform", "grad-norm")


def timestep_bounds(
    num_train_timesteps: int,
    t_min: float,
    t_max: float,
    progress: float | None = None,
    anneal: TAnneal = "none",
    t_max_end: float | None = None,
    t_min_end: float | None = None,
) -> tuple[int, int]:
    """Integer bounds ``(lo, hi)`` (inclusive) of the timesteps to draw from.

    With ``anneal="linear"`` the upper fraction moves linearly from ``t_max`` (progress 0) to
    ``t_max_end`` (progress 1), never below ``t_min``: late in training only small noise levels
    remain, which refines detail instead of reshaping the object. ``t_min_end`` (when given) moves
    the lower fraction the same way, from ``t_min`` to ``t_min_end``: a high starting ``t_min`` spends
    the first steps at the large noise levels where a prior still decides the shape.
    """
    if not 0.0 <= t_min <= t_max <= 1.0:
        raise ValueError(f"need 0 <= t_min <= t_max <= 1, got t_min={t_min}, t_max={t_max}")
    hi_frac = t_max
    if anneal == "linear" and progress is not None:
        p = min(max(float(progress), 0.0), 1.0)
        if t_min_end is not None:
            t_min = t_min + (t_min_end - t_min) * p
        end = t_min if t_max_end is None else t_max_end
        hi_frac = max(t_min, t_max + (end - t_max) * p)
    elif anneal not in ("none", "linear"):
        raise ValueError(f"unknown timestep annealing {anneal!r}")
    last = num_train_timesteps - 1
    lo = min(max(int(round(t_min * num_train_timesteps)), 0), last)
    hi = min(max(int(round(hi_frac * num_train_timesteps)), lo), last)
    return lo, hi


def mix_timesteps(t: Tensor, prob: float, num_train_timesteps: int, lo_frac: float, hi_frac: float,
                  generator: torch.Generator | None = None) -> Tensor:  # [B] long
    """Each of ``t``'s entries replaced, with probability ``prob``, by a uniform draw from the
    fractions ``[lo_frac, hi_frac]`` of the timesteps (one coin and one draw per view)."""
    lo, hi = timestep_bounds(num_train_timesteps, lo_frac, hi_frac)
    gen_device = generator.device if generator is not None else "cpu"
    coin = torch.rand(t.shape, generator=generator, device=gen_device) < prob
    other = sample_timesteps(t.shape[0], lo, hi, generator=generator, device=t.device)
    return torch.where(coin.to(t.device), other, t)


def sample_timesteps(
    batch_size: int, lo: int, hi: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> Tensor:  # [B] long
    """Uniform integer timesteps in ``[lo, hi]`` (drawn on the generator's device, then moved)."""
    gen_device = generator.device if generator is not None else "cpu"
    t = torch.randint(lo, hi + 1, (batch_size,), generator=generator, device=gen_device)
    return t.to(device)


def _batch_dot(a: Tensor, b: Tensor) -> Tensor:  # [B, ...] x [B, ...] -> [B, 1, 1, ...]
    dims = tuple(range(1, a.ndim))
    return (a * b).sum(dim=dims, keepdim=True)


def perpendicular_component(v: Tensor, ref: Tensor, eps: float = 1e-12) -> Tensor:
    """The part of ``v`` orthogonal to ``ref``, per batch element: ``v − (⟨v,r⟩/⟨r,r⟩) r``."""
    return v - _batch_dot(v, ref) / _batch_dot(ref, ref).clamp_min(eps) * ref


def perp_neg_guidance(
    eps_uncond: Tensor,  # [B, C, H, W]
    eps_pos: Tensor,  # [B, C, H, W]
    eps_neg: Tensor,  # [B, K, C, H, W]
    neg_weights: Tensor,  # [B, K]
    scale: float,
) -> Tensor:
    """Perp-Neg: ε̂ = ε_u + s[(ε_pos − ε_u) − Σ_i w_i · perp(ε_neg_i − ε_u ⟂ ε_pos − ε_u)].

    Only the perpendicular part of a negative direction is removed, so a negative prompt that
    shares content with the positive one ("a dog, front view" vs "a dog, side view") cannot
    cancel the shared content, only the view-specific part.
    """
    d_pos = eps_pos - eps_uncond
    correction = torch.zeros_like(d_pos)
    for k in range(eps_neg.shape[1]):
        d_neg = eps_neg[:, k] - eps_uncond
        w = neg_weights[:, k].to(d_pos.dtype).view(-1, *([1] * (d_pos.ndim - 1)))
        correction = correction + w * perpendicular_component(d_neg, d_pos)
    return eps_uncond + scale * (d_pos - correction)


def sds_weights(alphas_cumprod: Tensor, t: Tensor, weighting: Weighting) -> Tensor:  # [B]
    """w(t): DreamFusion's σ_t² = 1 − ᾱ_t ("sds"), or 1 ("uniform", "grad-norm")."""
    if weighting == "sds":
        return (1.0 - alphas_cumprod.to(t.device)[t]).float()
    if weighting in ("uniform", "grad-norm"):
        return torch.ones(t.shape[0], device=t.device)
    raise ValueError(f"unknown SDS weighting {weighting!r}; choose from {WEIGHTINGS}")


def per_sample_norm(x: Tensor) -> Tensor:  # [B, ...] -> [B]
    return x.flatten(1).norm(dim=1)


def normalise_gradient(grad: Tensor, eps: float = 1e-12) -> Tensor:
    """Rescale a batch of gradients so that the mean of their per-sample L2 norms is 1 (relative
    sizes within the batch are kept): the step size no longer depends on the prior's scale."""
    return grad / per_sample_norm(grad).mean().clamp_min(eps)


def sds_surrogate_loss(z: Tensor, grad: Tensor) -> Tensor:
    """``½ Σ_pixels ‖z − sg(z − g)‖² / B``: value ``½ Σ g² / B``, gradient ``g / B``."""
    target = (z - grad).detach()
    return 0.5 * (z - target).pow(2).sum() / z.shape[0]


def noise_from_prediction(model_output: Tensor, x_t: Tensor, alpha_bar: Tensor, prediction_type: str) -> Tensor:
    """Convert a UNet output to an ε prediction (v-prediction and x0-prediction models too)."""
    if prediction_type == "epsilon":
        return model_output
    a = alpha_bar.to(x_t.dtype).view(-1, *([1] * (x_t.ndim - 1)))
    if prediction_type == "v_prediction":
        return a.sqrt() * model_output + (1.0 - a).sqrt() * x_t
    if prediction_type == "sample":
        return (x_t - a.sqrt() * model_output) / (1.0 - a).sqrt()
    raise ValueError(f"unsupported prediction type {prediction_type!r}")


__all__ = [
    "Weighting",
    "TAnneal",
    "WEIGHTINGS",
    "timestep_bounds",
    "sample_timesteps",
    "classifier_free_guidance",
    "perpendicular_component",
    "perp_neg_guidance",
    "sds_weights",
    "per_sample_norm",
    "normalise_gradient",
    "sds_surrogate_loss",
    "noise_from_prediction",
]
