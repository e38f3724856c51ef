"""Views of a generate run for judging: random cameras from the training distribution,
lambertian shading with a light near the camera, white background."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import CameraSamplerConfig, sample_cameras


@torch.no_grad()
def render_judged_views(renderer, num_views: int = 8, seed: int = 0, resolution: int = 32, supersample: int = 2,
                 device: str | torch.device = "cpu") -> Tensor:  # [K, 3, res*supersample, res*supersample]
    """``num_views`` renders at ``resolution * supersample`` px in [0, 1]; average-pool by
    ``supersample`` for the judge (:func:`judge_images`), keep them for contact sheets."""
    gen = torch.Generator().manual_seed(seed)
    cams, _, _ = sample_cameras(CameraSamplerConfig(), num_views, resolution * supersample, generator=gen)
    renderer.eval()
    out = renderer.render(cams.to(device), shading="lambertian", light_positions=cams.positions.to(device) * 1.5,
                          ambient=0.3)
    return out["rgb"].permute(0, 3, 1, 2).clamp(0, 1)


def judge_images(views: Tensor, resolution: int = 32) -> Tensor:  # [K,3,H,W] -> [K,3,res,res]
    """Antialias renders down to the judge's size by average pooling (as its training renders)."""
    factor = views.shape[-1] // resolution
    return (F.avg_pool2d(views, factor) if factor > 1 else views).clamp(0, 1)
