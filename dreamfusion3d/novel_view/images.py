"""Reading a user's image: any object photo/render with alpha or a plain background becomes a
white-background square image framed like the training views."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..utils.errors import UserError

MAX_PIXELS = 40_000_000  # larger inputs are refused before decoding (a 40 MP float copy is 0.5 GB)


def read_image(path: str | Path) -> np.ndarray:  # [H, W, C] float in [0, 1], C in {3, 4}
    """Any image PIL reads, in any of its colour modes (palette, grey, 16-bit, float, CMYK, ...),
    as RGB or RGBA (alpha only when the file has transparency)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"input image {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                if im.size[0] * im.size[1] > MAX_PIXELS:  # known from the header, before decoding
                    raise UserError(f"{path} is too large ({im.size[0]}x{im.size[1]} pixels; at most "
                                    f"{MAX_PIXELS // 1_000_000} megapixels): downscale it first")
                im.load()
                im = ImageOps.exif_transpose(im)
                arr = _as_rgb_or_rgba(im)
    except UserError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UserError(f"{path} is not a readable image ({type(exc).__name__})") from exc
    if min(arr.shape[:2]) < 2:
        raise UserError(f"{path} is too small to hold an object ({arr.shape[1]}x{arr.shape[0]} pixels)")
    return arr


def _as_rgb_or_rgba(im) -> np.ndarray:
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # high bit depth grey: keep the range
        grey = np.asarray(im).astype(np.float64)
        if im.mode == "F" and grey.max(initial=0.0) <= 1.0:
            top = 1.0
        else:
            top = 65535.0 if im.mode.startswith("I;16") or grey.max(initial=0.0) > 255 else 255.0
        grey = np.clip(grey / top, 0.0, 1.0).astype(np.float32)
        return np.repeat(grey[..., None], 3, axis=-1)
    has_alpha = (im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
                 or (im.mode == "P" and getattr(im.palette, "mode", "") == "RGBA"))
    return np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0


def object_mask(img: np.ndarray, threshold: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """(mask [H, W] in [0, 1], rgb composited over white [H, W, 3]).

    Alpha decides where there is one that is not all opaque; otherwise the background colour is
    the median of the border pixels and the object is whatever differs from it.
    """
    rgb = img[..., :3]
    if img.shape[-1] == 4 and img[..., 3].min() < 0.99:
        alpha = img[..., 3]
    else:
        border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
        bg = np.median(border, axis=0)
        diff = np.abs(rgb - bg).max(-1)
        alpha = np.clip((diff - threshold * 0.5) / (threshold * 0.5), 0.0, 1.0)
    return alpha, rgb * alpha[..., None] + (1.0 - alpha[..., None])


def centre_object(img: np.ndarray, size: int, object_fraction: float = 0.5) -> Tensor:  # -> [3, size, size]
    """Crop to the object's bounding box, pad to a square in which the object spans
    ``object_fraction`` of the side (as in the training views), resize with anti-aliasing."""
    return centre_object_and_mask(img, size, object_fraction)[0]


def _object_found(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(alpha > 0.5)
    if ys.size == 0:
        raise UserError("no object found in the input image (it is one plain colour)")
    return ys, xs


def _pad_square_and_resize(rgba: np.ndarray, canvas_side: int, size: int) -> tuple[Tensor, Tensor]:
    """``rgba [h, w, 4]`` pasted in the middle of a transparent white square of ``canvas_side``,
    resized to ``size`` with anti-aliasing: (rgb [3, size, size], mask [1, size, size])."""
    h, w = rgba.shape[:2]
    canvas = np.ones((canvas_side, canvas_side, 4), dtype=np.float32)
    canvas[..., 3] = 0.0
    oy, ox = (canvas_side - h) // 2, (canvas_side - w) // 2
    canvas[oy:oy + h, ox:ox + w] = rgba
    t = torch.from_numpy(canvas).permute(2, 0, 1)[None]
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    t = t[0].clamp(0.0, 1.0)
    return t[:3], t[3:]


def centre_object_and_mask(img: np.ndarray, size: int, object_fraction: float = 0.5) -> tuple[Tensor, Tensor]:
    """:func:`centre_object` and the object's mask framed the same way (``[1, size, size]`` in [0, 1])."""
    alpha, rgb = object_mask(img)
    ys, xs = _object_found(alpha)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = np.concatenate([rgb[y0:y1, x0:x1], alpha[y0:y1, x0:x1, None]], axis=-1)
    side = max(y1 - y0, x1 - x0)
    return _pad_square_and_resize(crop, max(int(round(side / max(object_fraction, 1e-3))), side), size)


def keep_framing_and_mask(img: np.ndarray, size: int) -> tuple[Tensor, Tensor]:
    """The image as its camera framed it: composited over white, padded to a square about its centre
    and resized (no crop, no re-centring), and its mask framed the same way.

    For an input whose camera is known (e.g. a render at the input camera): the object keeps the
    size and position it has there, so a 3D fitted to it stays in that camera's frame."""
    alpha, rgb = object_mask(img)
    _object_found(alpha)
    return _pad_square_and_resize(np.concatenate([rgb, alpha[..., None]], axis=-1), max(alpha.shape), size)


def frame_input(img: np.ndarray, size: int, object_fraction: float = 0.5, recentre: bool = True
                ) -> tuple[Tensor, Tensor]:
    """(rgb [3, size, size] over white, mask [1, size, size]): :func:`centre_object_and_mask` when
    ``recentre``, else :func:`keep_framing_and_mask`."""
    if recentre:
        return centre_object_and_mask(img, size, object_fraction)
    return keep_framing_and_mask(img, size)


def load_input_image(path: str | Path, size: int, object_fraction: float = 0.5,
                     recentre: bool = True) -> Tensor:  # [3, size, size]
    return frame_input(read_image(path), size, object_fraction, recentre)[0]
