"""What a ray sees behind the object: a fixed colour, or a colour learned per view direction.

A learned background lets SDS put "sky" somewhere other than in the density field (otherwise
white haze imitates a white background)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn


@dataclass
class BackgroundConfig:
    """Background behind the object."""

    kind: Literal["mlp", "fixed"] = "mlp"
    """``mlp``: colour from a small MLP on the ray direction; ``fixed``: a constant colour."""
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Colour of the fixed background (and the MLP's initial colour)."""
    hidden_dim: int = 16
    """Width of the background MLP."""
    frequencies: int = 2
    """Sinusoidal frequencies of the direction encoding."""
    random_prob: float = 0.0
    """Share of the SDS views (one coin per view) whose fixed background is replaced by a uniformly
    random colour, so that a surface of the background's own colour cannot vanish into it. The
    bundled presets set 1.0: the bundled prior is trained on random background colours. With a
    prior trained on white only, white objects swell to fill the frame instead (docs/RESULTS.md,
    sessions 35 and 37)."""


class Background(nn.Module):
    """``forward(dirs [N, 3]) -> rgb [N, 3]`` in [0, 1]."""

    def __init__(self, config: BackgroundConfig) -> None:
        super().__init__()
        self.config = config
        color = torch.tensor(config.color, dtype=torch.float32).clamp(0.0, 1.0)
        self.register_buffer("fixed_color", color, persistent=False)
        if config.kind == "mlp":
            in_dim = 3 + 6 * config.frequencies
            self.mlp = nn.Sequential(nn.Linear(in_dim, config.hidden_dim), nn.ReLU(inplace=True), nn.Linear(config.hidden_dim, 3))
            # Start near the configured colour: tiny last layer, bias = logit(colour).
            nn.init.normal_(self.mlp[2].weight, std=1e-3)
            with torch.no_grad():
                c = color.clamp(1e-3, 1 - 1e-3)
                self.mlp[2].bias.copy_(torch.log(c / (1 - c)))
        elif config.kind != "fixed":
            raise ValueError(f"unknown background kind {config.kind!r}")

    def encode(self, dirs: Tensor) -> Tensor:  # [N, 3] -> [N, 3 + 6 F]
        freqs = (2.0 ** torch.arange(self.config.frequencies, dtype=dirs.dtype, device=dirs.device)) * math.pi
        angles = dirs[:, None, :] * freqs[None, :, None]  # [N, F, 3]
        return torch.cat([dirs, angles.sin().flatten(1), angles.cos().flatten(1)], dim=-1)

    def forward(self, dirs: Tensor) -> Tensor:
        if self.config.kind == "fixed":
            return self.fixed_color.to(dirs.dtype).expand(dirs.shape[0], 3)
        return torch.sigmoid(self.mlp(self.encode(dirs)))


def replace_background(rgb: Tensor, opacity: Tensor, old: Tensor, new: Tensor) -> Tensor:
    """Recomposite renders over another constant background, exactly: ``rgb = fg + (1 − α)·old``
    becomes ``fg + (1 − α)·new``. rgb [B,H,W,3], opacity [B,H,W,1], old [3], new [B,3]."""
    return rgb + (1.0 - opacity) * (new[:, None, None, :] - old.to(rgb)[None, None, None, :])


def random_backgrounds(
    rgb: Tensor, opacity: Tensor, prob: float, generator: torch.Generator, old: tuple[float, float, float] = (1.0, 1.0, 1.0)
) -> Tensor:
    """Renders over the constant background ``old`` (rgb ``[B,H,W,3]``, opacity ``[B,H,W,1]``), each
    one's background replaced by a uniformly random colour with probability ``prob`` (one coin per
    image; exact, through :func:`replace_background`). ``prob`` 0 returns ``rgb`` and draws nothing.
    Used by the SDS views of ``generate`` (``random_prob``) and by the training data of the models
    that must not take white for granted (the bundled prior, the evaluation classifier)."""
    if prob <= 0.0:
        return rgb
    b = rgb.shape[0]
    coin = torch.rand(b, generator=generator) < prob
    colours = torch.rand(b, 3, generator=generator)
    old_t = torch.tensor(old, dtype=rgb.dtype)
    new = torch.where(coin[:, None], colours, old_t[None, :]).to(rgb)
    return replace_background(rgb, opacity, old_t, new)


def build_background(config: BackgroundConfig) -> Background:
    return Background(config)
