"""The project's own bundled text prior (pixel space, 32 px, MiniLM sentence embeddings)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..text_prior import SentenceEncoder, TextPriorModel
from .base import Prior
from .config import PriorConfig
from .registry import default_guidance_scale
from .loading import freeze, resolve_dtype


class BundledPrior(Prior):
    """A thin :class:`Prior` over :class:`~dreamfusion3d.text_prior.TextPriorModel`.

    Renders are resized to the model's resolution with antialiased bilinear filtering (the
    training images were rendered at that size, so aliasing would be off-distribution) and
    mapped to [-1, 1].
    """

    name = "bundled"

    def __init__(self, model: TextPriorModel, encoder: SentenceEncoder, device: torch.device | str = "cpu",
                 guidance_scale: float | None = None):
        super().__init__()
        self.model = model
        self.encoder = encoder
        self.scheduler = model.scheduler
        self.device = torch.device(device)
        self.dtype = next(model.unet.parameters()).dtype
        self.resolution = int(model.resolution)
        self.guidance_scale = default_guidance_scale(self.name, guidance_scale)
        freeze(model)

    @classmethod
    def from_config(cls, config: PriorConfig, device: torch.device | str = "cpu") -> "BundledPrior":
        device = torch.device(device)
        dtype = resolve_dtype(config.dtype, device)
        model = TextPriorModel.from_pretrained(config.resolved_model(), device=device, dtype=dtype)
        encoder = SentenceEncoder.from_pretrained(config.text_encoder or model.text_encoder_id, device=device)
        return cls(model, encoder, device).configure(config)

    def _encode_text(self, prompts: list[str]) -> Tensor:  # [N, D]
        return self.encoder.encode(prompts).to(self.device)

    def _model_output(self, z_t: Tensor, t: Tensor, emb: Tensor) -> Tensor:
        return self.model(z_t, t, emb)

    def encode_images(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        size = (self.resolution, self.resolution)
        if tuple(images.shape[-2:]) != size:
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
        return 2.0 * images.float().to(self.device) - 1.0

    def decode(self, z: Tensor) -> Tensor:
        return ((z.float() + 1.0) / 2.0).clamp(0.0, 1.0)

    def latent_shape(self, batch_size: int) -> tuple[int, ...]:
        return (batch_size, 3, self.resolution, self.resolution)
