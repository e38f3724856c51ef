"""Stable Diffusion as an SDS prior (latent space, diffusers components).

Renders (e.g. 64 px) are bilinearly upsampled to the VAE's native size (512 for SD 1.x/2.x
base), encoded to 4-channel latents, and scored there; the SDS gradient is applied to the
latents and reaches the renders through the VAE encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Prior
from .config import PriorConfig
from .loading import apply_memory_options, enable_cpu_offload, freeze, load_component, load_latent_diffusion
from .loading import text_encoder_rest
from .registry import default_guidance_scale

SD_LAYOUT = (
    "unet/config.json",
    "vae/config.json",
    "text_encoder/config.json",
    ("tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "tokenizer/tokenizer.json"),
    "scheduler/scheduler_config.json",
)


class StableDiffusionPrior(Prior):
    name = "stable-diffusion"
    latent_space = True

    def __init__(self, unet, vae, text_encoder, tokenizer, scheduler, device: torch.device | str = "cpu",
                 vae_resolution: int = 512, guidance_scale: float | None = None):
        super().__init__()
        self.unet, self.vae, self.text_encoder, self.tokenizer = unet, vae, text_encoder, tokenizer
        self.scheduler = scheduler
        self.device = torch.device(device)
        self.dtype = next(unet.parameters()).dtype
        self.vae_resolution = int(vae_resolution)
        self.guidance_scale = default_guidance_scale(self.name, guidance_scale)
        self.scaling_factor = float(getattr(vae.config, "scaling_factor", 0.18215))
        self.vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
        freeze(unet, vae, text_encoder)

    @classmethod
    def from_config(cls, config: PriorConfig, device: torch.device | str = "cpu") -> "StableDiffusionPrior":
        from transformers import AutoTokenizer, CLIPTextModel

        device = torch.device(device)
        source, local, dtype, unet, vae, scheduler = load_latent_diffusion(config, device, "Stable Diffusion", SD_LAYOUT)
        text_encoder = load_component("text_encoder", source, local, CLIPTextModel.from_pretrained,
                                      subfolder="text_encoder", dtype=dtype, use_safetensors=True,
                                      variant=config.variant)
        tokenizer = load_component("tokenizer", source, local, AutoTokenizer.from_pretrained, subfolder="tokenizer")
        apply_memory_options(unet, config.attention_slicing, config.channels_last)
        offloaded = config.cpu_offload and enable_cpu_offload([text_encoder, unet, vae], device)
        rest = text_encoder_rest(device, offloaded)
        if not offloaded:
            for m in (unet, vae) if rest is not None else (unet, vae, text_encoder):
                m.to(device)
        prior = cls(unet, vae, text_encoder, tokenizer, scheduler, device, config.vae_resolution)
        prior.text_encoder_rest = rest
        return prior.configure(config)

    def _text_modules(self) -> list[torch.nn.Module]:
        return [self.text_encoder]

    def _encode_text(self, prompts: list[str]) -> Tensor:  # [N, L, D]
        tokens = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                                truncation=True, return_tensors="pt")
        return self.text_encoder(tokens.input_ids.to(self.device))[0]

    def _model_output(self, z_t: Tensor, t: Tensor, emb: Tensor) -> Tensor:
        return self.unet(z_t.to(self.dtype), t, encoder_hidden_states=emb.to(self.dtype)).sample

    def encode_images(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """[B, 3, H, W] in [0, 1] → scaled latents [B, 4, R/8, R/8] (float32, differentiable)."""
        size = self.vae_resolution
        if tuple(images.shape[-2:]) != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        x = (2.0 * images - 1.0).to(device=self.device, dtype=self.vae.dtype)
        posterior = self.vae.encode(x).latent_dist
        return posterior.sample(generator=generator).float() * self.scaling_factor

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        x = self.vae.decode((z / self.scaling_factor).to(self.vae.dtype)).sample.float()
        return ((x + 1.0) / 2.0).clamp(0.0, 1.0)

    def latent_shape(self, batch_size: int) -> tuple[int, ...]:
        side = self.vae_resolution // self.vae_scale
        return (batch_size, int(self.unet.config.in_channels), side, side)
