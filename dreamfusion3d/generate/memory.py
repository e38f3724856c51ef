"""GPU memory planner for the Stable Diffusion and DeepFloyd IF presets (``generate --vram-gb N``).

All figures are **estimates** (no GPU has been lent to this project yet): the peak is the sum of
the parts below, and ``--vram-gb N`` picks the first setting of :data:`TIERS` whose estimate fits
in N GB with 10 % to spare. The parts (GB = 2^30 bytes, fp16 weights = 2 bytes per parameter):

=====================  ==========================================================================
CUDA context           0.5 GB (driver + cuDNN/cuBLAS workspaces; not seen by torch's allocator)
weights                SD 2.1 base: UNet 866 M params = 1.61 GB, VAE 84 M = 0.16 GB, OpenCLIP-H
                       text encoder 340 M = 0.63 GB; IF-I-XL: UNet 4.3 B = 8.0 GB, T5-XXL encoder
                       4.76 B = 8.9 GB. The text encoder visits the GPU only while the prompt's
                       embeddings are cached (it rests on the CPU otherwise); IF's UNet steps
                       aside meanwhile. Caching peak: SD UNet + VAE + text encoder, IF the T5
                       encoder alone; step peak: UNet + VAE + activations.
VAE encoder backward   SD only: the SDS gradient reaches the renders through the VAE encoder at
                       ``vae_resolution`` (512 px): 1.48 GB per image in fp16, counted on the CPU
                       with autograd's saved-tensor hooks on SD's VAE architecture at 128 px
                       (190 MiB fp32 without the weights) and scaled by (512/128)^2 / 2;
                       +20 % for the gradient buffers of the backward pass.
UNet forward           one no-grad classifier-free-guidance pair per image: SD 0.3 GB, IF 0.6 GB
                       with SDPA; attention slicing lowers it by a third (guess).
NeRF                   hash grid + Adam 0.3 GB, plus 4 KB per ray sample kept for backward
                       (hash features, MLP activations, normals' double backward) at 32 samples
                       per ray after occupancy skipping.
offload                accelerate's sequential CPU offload keeps one model on the GPU at a time
                       (max instead of sum of the weights), at the price of PCIe copies per step.
fragmentation          +10 % on the total.
=====================  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from ..utils.errors import UserError
from ..utils.logging import info, warn

GB = 2.0**30
CONTEXT_GB = 0.5
NERF_FIXED_GB = 0.3
BYTES_PER_SAMPLE = 4096
SAMPLES_PER_RAY = 32
FRAGMENTATION = 1.10
HEADROOM = 0.90  # plan to use at most 90 % of --vram-gb


@dataclass(frozen=True)
class Footprint:
    unet_gb: float
    vae_gb: float
    text_gb: float
    vae_backward_gb_per_image: float  # at 512 px
    unet_pair_gb: float  # one CFG pair (cond + uncond), SDPA attention
    unet_parked_while_encoding: bool = False  # see Prior._parked_while_encoding


FOOTPRINTS = {
    "stable-diffusion": Footprint(unet_gb=1.61, vae_gb=0.16, text_gb=0.63, vae_backward_gb_per_image=1.48 * 1.2,
                                  unet_pair_gb=0.3),
    "deepfloyd-if": Footprint(unet_gb=8.0, vae_gb=0.0, text_gb=8.9, vae_backward_gb_per_image=0.0, unet_pair_gb=0.6,
                              unet_parked_while_encoding=True),
}

# Best first: (batch_size, resolution, attention_slicing, cpu_offload).
TIERS = {
    "stable-diffusion": [(4, 128, False, False), (4, 64, False, False), (2, 64, False, False), (1, 64, False, False),
                         (1, 64, True, False), (1, 64, True, True), (1, 32, True, True)],
    # IF: offload would save nothing (its UNet already steps aside for T5, and there is no VAE)
    "deepfloyd-if": [(8, 64, False, False), (4, 64, False, False), (2, 64, False, False), (1, 64, False, False),
                     (1, 64, True, False), (1, 32, True, False)],
}


def estimate_peak_gb(kind: str, batch_size: int, resolution: int, attention_slicing: bool = False,
                     cpu_offload: bool = False, vae_resolution: int = 512) -> dict[str, float]:
    """Estimated peak GPU memory of one generate run and its parts (GB); see the module docstring."""
    if kind not in FOOTPRINTS:
        raise UserError(f"the memory planner knows stable-diffusion and deepfloyd-if, not {kind!r}")
    f = FOOTPRINTS[kind]
    nerf = NERF_FIXED_GB + batch_size * resolution**2 * SAMPLES_PER_RAY * BYTES_PER_SAMPLE / GB
    vae_act = batch_size * f.vae_backward_gb_per_image * (vae_resolution / 512) ** 2
    unet_act = batch_size * f.unet_pair_gb * (2 / 3 if attention_slicing else 1.0)
    if cpu_offload:  # one model on the GPU at a time
        caching = f.text_gb
        step = max(f.unet_gb + unet_act, f.vae_gb + vae_act)
    else:
        caching = f.text_gb + (f.vae_gb if f.unet_parked_while_encoding else f.unet_gb + f.vae_gb)
        step = f.unet_gb + f.vae_gb + vae_act + unet_act
    parts = {"context": CONTEXT_GB, "nerf": nerf, "caching": caching, "step": step}
    parts["peak"] = FRAGMENTATION * (CONTEXT_GB + max(caching, step + nerf))
    return {k: round(v, 2) for k, v in parts.items()}


@dataclass(frozen=True)
class Plan:
    batch_size: int
    resolution: int
    attention_slicing: bool
    cpu_offload: bool
    peak_gb: float


def plan_memory(kind: str, vram_gb: float, vae_resolution: int = 512) -> Plan:
    """The best setting of :data:`TIERS` whose estimated peak fits in ``vram_gb`` (with 10 % to spare)."""
    if vram_gb <= 0:
        raise UserError(f"--vram-gb must be positive, got {vram_gb}")
    best = None
    for batch, res, slicing, offload in TIERS[kind] if kind in TIERS else []:
        peak = estimate_peak_gb(kind, batch, res, slicing, offload, vae_resolution)["peak"]
        best = Plan(batch, res, slicing, offload, peak)
        if peak <= HEADROOM * vram_gb:
            return best
    if best is None:
        raise UserError(f"--vram-gb plans stable-diffusion and deepfloyd-if runs, not prior kind {kind!r}")
    raise UserError(f"--vram-gb {vram_gb:g}: the {kind} prior needs about {best.peak_gb / HEADROOM:.1f} GB even at "
                    "batch 1 with attention slicing (estimated)")


def apply_memory_plan(cfg) -> None:
    """``generate --vram-gb N``: set batch size, render resolution, attention slicing and offload."""
    if cfg.vram_gb is None:
        return
    if cfg.prior.kind not in TIERS:
        warn(f"--vram-gb plans the sd / if presets only; ignored for the {cfg.prior.kind} prior")
        return
    p = plan_memory(cfg.prior.kind, cfg.vram_gb, cfg.prior.vae_resolution)
    cfg.batch_size, cfg.resolution = p.batch_size, p.resolution
    cfg.prior.attention_slicing, cfg.prior.cpu_offload = p.attention_slicing, p.cpu_offload
    info(f"memory plan for {cfg.vram_gb:g} GB: batch {p.batch_size}, {p.resolution} px renders, attention slicing "
         f"{'on' if p.attention_slicing else 'off'}, CPU offload {'on' if p.cpu_offload else 'off'} "
         f"(estimated peak {p.peak_gb:.1f} GB)")
