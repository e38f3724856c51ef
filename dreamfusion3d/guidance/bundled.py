"""The project's own bundled text prior (pixel space, 32 px, MiniLM sentence embeddings)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..text_prior import SentenceEncoder, TextPriorModel
from .config import PriorConfig
from .loading import apply_memory_options, resolve_pixel_dtype
from .pixel import PixelPrior


class BundledPrior(PixelPrior):
    """A thin :class:`Prior` over :class:`~dreamfusion3d.text_prior.TextPriorModel` (see
    :class:`PixelPrior` for the model space)."""

    name = "bundled"

    def __init__(self, model: TextPriorModel, encoder: SentenceEncoder, device: torch.device | str = "cpu",
                 guidance_scale: float | None = None):
        super().__init__(model, device, guidance_scale)
        self.encoder = encoder

    @classmethod
    def from_config(cls, config: PriorConfig, device: torch.device | str = "cpu") -> "BundledPrior":
        device = torch.device(device)
        dtype = resolve_pixel_dtype(config.dtype, device)
        model = TextPriorModel.from_pretrained(config.resolved_model(), device=device, dtype=dtype)
        apply_memory_options(model.unet, False, config.channels_last)
        encoder = SentenceEncoder.from_pretrained(config.text_encoder or model.text_encoder_id, device=device)
        return cls(model, encoder, device).configure(config)

    def _encode_text(self, prompts: list[str]) -> Tensor:  # [N, D]
        return self.encoder.encode(prompts).to(self.device)

    def _model_output(self, z_t: Tensor, t: Tensor, emb: Tensor) -> Tensor:
        return self.model(z_t, t, emb)
