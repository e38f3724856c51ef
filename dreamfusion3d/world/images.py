"""Image helpers for the world: 8-bit conversion, PNG writing (atomic) and contact sheets."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..utils.io import atomic_path


def to_uint8(image: Tensor | np.ndarray) -> np.ndarray:
    """Float image in [0, 1] (any shape) -> uint8 array, rounded."""
    if isinstance(image, Tensor):
        image = image.detach().cpu().float().numpy()
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_png(path: str | Path, image: Tensor | np.ndarray) -> None:
    """Write ``[H, W, 3|4]`` float or uint8 pixels as a PNG, atomically."""
    import imageio.v3 as iio

    pixels = image if isinstance(image, np.ndarray) and image.dtype == np.uint8 else to_uint8(image)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, pixels, extension=".png")


def straight_rgba(rgb_over_black: Tensor, alpha: Tensor) -> Tensor:  # [..., 3], [..., 1] -> [..., 4]
    """Un-premultiply a render made over a black background into straight RGBA (PNG convention)."""
    colour = torch.where(alpha > 0, rgb_over_black / alpha.clamp_min(1e-8), 0.0).clamp(0.0, 1.0)
    return torch.cat([colour, alpha], dim=-1)


def over_background(rgba: Tensor, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Tensor:  # [..., 4] -> [..., 3]
    bg = torch.as_tensor(background, dtype=rgba.dtype, device=rgba.device)
    return rgba[..., :3] * rgba[..., 3:] + bg * (1.0 - rgba[..., 3:])


def contact_sheet(rows: Sequence[Tensor], pad: int = 2, pad_value: float = 1.0) -> Tensor:
    """Tile rows of images (each ``[N_i, H, W, 3]``, same H and W) into one ``[H', W', 3]`` image;
    short rows are padded with ``pad_value``."""
    ncols = max(r.shape[0] for r in rows)
    h, w = rows[0].shape[1:3]
    sheet = torch.full((len(rows) * (h + pad) + pad, ncols * (w + pad) + pad, 3), pad_value)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            sheet[y : y + h, x : x + w] = img[..., :3].float().cpu()
    return sheet
