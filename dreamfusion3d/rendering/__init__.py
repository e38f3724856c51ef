"""Volume rendering: occupancy-grid sampling, shading, background, nerfacc compositing."""

from .background import Background, BackgroundConfig, build_background
from .renderer import RendererConfig, VolumeRenderer
from .sampler import RaySamples, march_cpu, march_cuda, occupied, ray_aabb_intersect

__all__ = [
    "Background", "BackgroundConfig", "RaySamples", "RendererConfig", "VolumeRenderer", "build_background",
    "march_cpu", "march_cuda", "occupied", "ray_aabb_intersect",
]
