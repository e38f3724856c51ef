"""Preview grids written while the novel-view model trains (source | sample | truth)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..utils.images import contact_sheet, save_png, to_uint8
from .data import ViewSet, pair_batch
from .model import NovelViewModel
from .sampling import sample_views


def save_grid(rows: list[Tensor], path: Path, scale: int = 2) -> None:
    """Save images ``[N, 3, H, W]`` in [0, 1] (one tensor per column) as a PNG grid, 1 px gaps."""
    cols = torch.stack(rows, 1)  # [N, C, 3, H, W]
    sheet = contact_sheet([obj.permute(0, 2, 3, 1) for obj in cols], pad=1)
    save_png(path, to_uint8(sheet.repeat_interleave(scale, 0).repeat_interleave(scale, 1)))


def preview(ema: NovelViewModel, views: ViewSet, sample_steps: int, path: Path, device) -> None:
    """A grid of source | sample | truth for up to six objects (fixed pairs and seed)."""
    n = min(6, views.num_objects)
    obj = torch.arange(n)
    src = torch.zeros(n, dtype=torch.long)
    tgt = (torch.arange(n) * 3 + views.num_views // 2) % views.num_views
    tgt = torch.where(tgt == 0, torch.ones_like(tgt), tgt)
    source, target, s_sph, t_sph = pair_batch(views, obj, src, tgt, device)
    gen = torch.Generator().manual_seed(1234)
    sample = sample_views(ema, (source + 1) / 2, s_sph, t_sph[:, None], steps=sample_steps,
                          guidance_scale=2.0, stochastic=False, generator=gen)[:, 0]
    save_grid([(source.cpu() + 1) / 2, sample.cpu(), (target.cpu() + 1) / 2], path)
