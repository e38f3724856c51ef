"""Rendering a NeRF field: occupancy-grid sampling, shading, background, nerfacc compositing,
and checkpoints."""

from .background import Background, BackgroundConfig, build_background
from .checkpoint import build_renderer, load_nerf, resolve_checkpoint, save_nerf
from .renderer import NeRFRenderer, RendererConfig
from .sampler import RaySamples, march_cpu, march_cuda, occupied, ray_aabb_intersect

__all__ = [
    "Background", "BackgroundConfig", "NeRFRenderer", "RaySamples", "RendererConfig", "build_background",
    "build_renderer", "load_nerf", "march_cpu", "march_cuda", "occupied", "ray_aabb_intersect", "resolve_checkpoint",
    "save_nerf",
]
