"""The project's image helpers: 8-bit conversion, PNG / GIF / MP4 writing (atomic), grids and
contact sheets, alpha compositing and PSNR. Every command writes its pictures through these."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .io import atomic_path


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


def save_video(path: str | Path, frames: np.ndarray | Sequence[np.ndarray], fps: float) -> None:
    """uint8 frames ``[T, H, W, 3]`` as a looping GIF (by the suffix) or an H.264 MP4, atomically."""
    import imageio.v3 as iio

    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".gif":
            iio.imwrite(tmp, np.stack(list(frames)), extension=".gif", duration=1000.0 / fps, loop=0)
        else:
            iio.imwrite(tmp, np.stack(list(frames)), extension=path.suffix, fps=fps, codec="libx264",
                        macro_block_size=1)


def image_grid(images: np.ndarray, columns: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile ``[N, H, W, C]`` images into one ``[H', W', C]`` picture, row by row (``columns``
    default: about square), with ``pad`` pixels of ``pad_value`` between them (none outside)."""
    n, h, w, c = images.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), pad_value, dtype=images.dtype)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        grid[r * (h + pad): r * (h + pad) + h, q * (w + pad): q * (w + pad) + w] = img
    return grid


def psnr(a: np.ndarray, b: np.ndarray, cap: float | None = None) -> float:
    """PSNR in dB of two float images in [0, 1]; ``cap`` bounds it (identical images give ``cap``)."""
    from skimage.metrics import peak_signal_noise_ratio

    if cap is not None and np.array_equal(a, b):
        return cap
    value = float(peak_signal_noise_ratio(a, b, data_range=1.0))
    return value if cap is None else min(cap, value)


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
