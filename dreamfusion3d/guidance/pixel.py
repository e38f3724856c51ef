"""The base of the priors over the project's own UNets (the bundled text prior, the novel-view
model): model space = the image itself in [-1, 1] at the network's resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Prior
from .loading import freeze
from .registry import default_guidance_scale


class PixelPrior(Prior):
    """Renders are resized to the model's resolution with antialiased bilinear filtering (the
    training images were rendered at that size, so aliasing would be off-distribution) and
    mapped to [-1, 1]. ``model`` has ``unet``, ``scheduler`` and ``resolution``."""

    def __init__(self, model: torch.nn.Module, device: torch.device | str = "cpu", guidance_scale: float | None = None):
        super().__init__()
        self.model = model
        self.scheduler = model.scheduler
        self.device = torch.device(device)
        self.dtype = next(model.unet.parameters()).dtype
        self.resolution = int(model.resolution)
        self.guidance_scale = default_guidance_scale(self.name, guidance_scale)
        freeze(model)

    def _resize(self, images: Tensor) -> Tensor:
        size = (self.resolution, self.resolution)
        if tuple(images.shape[-2:]) != size:
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
        return images

    def encode_images(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return 2.0 * self._resize(images.float().to(self.device)) - 1.0

    def decode(self, z: Tensor) -> Tensor:
        return ((z.float() + 1.0) / 2.0).clamp(0.0, 1.0)

    def latent_shape(self, batch_size: int) -> tuple[int, ...]:
        return (batch_size, 3, self.resolution, self.resolution)
