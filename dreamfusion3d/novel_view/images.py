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


def read_image(path: str | Path) -> np.ndarray:  # [H, W, C] float in [0, 1], C in {3, 4}
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise UserError(f"input image {path} does not exist")
    try:
        with warnings.catch_warnings():  # imageio probes every plugin on a non-image (DICOM warns)
            warnings.simplefilter("ignore")
            arr = np.asarray(iio.imread(path))
    except Exception as exc:  # imageio raises many types for non-images
        raise UserError(f"{path} is not a readable image ({type(exc).__name__})") from exc
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4) or min(arr.shape[:2]) < 2:
        raise UserError(f"{path} is not a single 2D image (array shape {arr.shape})")
    if arr.shape[-1] in (1, 2):  # grey (+ alpha)
        grey = np.repeat(arr[..., :1], 3, axis=-1)
        arr = np.concatenate([grey, arr[..., 1:]], axis=-1)
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0 if arr.dtype == np.uint8 else 1.0
    return np.clip(arr.astype(np.float32) / scale, 0.0, 1.0)


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
    alpha, rgb = object_mask(img)
    ys, xs = np.nonzero(alpha > 0.5)
    if ys.size == 0:
        raise UserError("no object found in the input image (it is one plain colour)")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = rgb[y0:y1, x0:x1]
    side = max(y1 - y0, x1 - x0)
    canvas_side = max(int(round(side / max(object_fraction, 1e-3))), side)
    canvas = np.ones((canvas_side, canvas_side, 3), dtype=np.float32)
    oy, ox = (canvas_side - (y1 - y0)) // 2, (canvas_side - (x1 - x0)) // 2
    canvas[oy:oy + y1 - y0, ox:ox + x1 - x0] = crop
    t = torch.from_numpy(canvas).permute(2, 0, 1)[None]
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t[0].clamp(0.0, 1.0)


def load_input_image(path: str | Path, size: int, object_fraction: float = 0.5) -> Tensor:  # [3, size, size]
    return centre_object(read_image(path), size, object_fraction)
