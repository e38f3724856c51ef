"""DeepFloyd IF stage I as an SDS prior (pixel space, 64×64, T5 text encoder).

IF's UNet predicts noise and a variance interpolation (6 output channels); SDS uses only the
noise half. Renders are resized to the UNet's native size and mapped to [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Prior
from .config import PriorConfig
from .loading import LOW_CPU_MEM, apply_memory_options, enable_cpu_offload, freeze, load_component
from .loading import resolve_dtype, resolve_model, text_encoder_rest
from .registry import default_guidance_scale

IF_LAYOUT = (
    "unet/config.json",
    "text_encoder/config.json",
    ("tokenizer/tokenizer_config.json", "tokenizer/spiece.model", "tokenizer/tokenizer.json"),
    "scheduler/scheduler_config.json",
)


class DeepFloydIFPrior(Prior):
    name = "deepfloyd-if"

    def __init__(self, unet, text_encoder, tokenizer, scheduler, device: torch.device | str = "cpu",
                 guidance_scale: float | None = None, max_length: int = 77):
        super().__init__()
        self.unet, self.text_encoder, self.tokenizer = unet, text_encoder, tokenizer
        self.scheduler = scheduler
        self.device = torch.device(device)
        self.dtype = next(unet.parameters()).dtype
        self.guidance_scale = default_guidance_scale(self.name, guidance_scale)
        self.max_length = max_length
        self.channels = int(unet.config.in_channels)
        self.resolution = int(unet.config.sample_size)
        freeze(unet, text_encoder)

    @classmethod
    def from_config(cls, config: PriorConfig, device: torch.device | str = "cpu") -> "DeepFloydIFPrior":
        from diffusers import DDPMScheduler, UNet2DConditionModel
        from transformers import AutoTokenizer, T5EncoderModel

        device = torch.device(device)
        dtype = resolve_dtype(config.dtype, device)
        source, local = resolve_model(config.resolved_model(), "DeepFloyd IF", IF_LAYOUT)
        unet = load_component("unet", source, local, UNet2DConditionModel.from_pretrained, subfolder="unet",
                              torch_dtype=dtype, use_safetensors=True, variant=config.variant,
                              low_cpu_mem_usage=LOW_CPU_MEM)
        text_encoder = load_component("text_encoder", source, local, T5EncoderModel.from_pretrained,
                                      subfolder="text_encoder", dtype=dtype, use_safetensors=True,
                                      variant=config.variant)
        tokenizer = load_component("tokenizer", source, local, AutoTokenizer.from_pretrained, subfolder="tokenizer")
        scheduler = load_component("scheduler", source, local, DDPMScheduler.from_pretrained, subfolder="scheduler")
        apply_memory_options(unet, config.attention_slicing, config.channels_last)
        offloaded = config.cpu_offload and enable_cpu_offload([text_encoder, unet], device)
        rest = text_encoder_rest(device, offloaded)  # T5-XXL: ~10 GB in fp16 that the UNet can use
        if not offloaded:
            unet.to(device)
            if rest is None:
                text_encoder.to(device)
        prior = cls(unet, text_encoder, tokenizer, scheduler, device)
        prior.text_encoder_rest = rest
        return prior.configure(config)

    def _text_modules(self) -> list[torch.nn.Module]:
        return [self.text_encoder]

    def _parked_while_encoding(self) -> list[torch.nn.Module]:
        return [self.unet]

    def _encode_text(self, prompts: list[str]) -> Tensor:  # [N, L, D]
        tokens = self.tokenizer([p.lower().strip() for p in prompts], padding="max_length",
                                max_length=self.max_length, truncation=True, return_tensors="pt")
        mask = tokens.attention_mask.to(self.device)
        return self.text_encoder(tokens.input_ids.to(self.device), attention_mask=mask)[0]

    def _model_output(self, z_t: Tensor, t: Tensor, emb: Tensor) -> Tensor:
        out = self.unet(z_t.to(self.dtype), t, encoder_hidden_states=emb.to(self.dtype)).sample
        return out[:, : self.channels]  # drop the learned-variance channels

    def encode_images(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        size = (self.resolution, self.resolution)
        if tuple(images.shape[-2:]) != size:
            down = images.shape[-1] > self.resolution
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=down)
        return 2.0 * images.float().to(self.device) - 1.0

    def decode(self, z: Tensor) -> Tensor:
        return ((z.float() + 1.0) / 2.0).clamp(0.0, 1.0)

    def latent_shape(self, batch_size: int) -> tuple[int, ...]:
        return (batch_size, self.channels, self.resolution, self.resolution)
