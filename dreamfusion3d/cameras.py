"""Cameras shared by the NeRF renderer, the procedural world and the datasets.

Conventions (one place, used everywhere):

* World frame: right-handed, **+Z up**. An object's front faces **+X**; a camera at
  azimuth 0, elevation 0 looks at the object's front ("front view").
* Spherical camera position: ``r * (cos(el) cos(az), cos(el) sin(az), sin(el))`` with
  azimuth and elevation in degrees; azimuth grows counter-clockwise seen from above.
* Camera-to-world matrices follow NeRF-synthetic / OpenGL: the camera looks along its
  local **-Z**, local **+Y** is image-up, local **+X** is image-right. Columns of
  ``c2w[:3, :3]`` are (right, up, backward); ``c2w[:3, 3]`` is the camera centre.
* Images are row-major ``[H, W]`` with row 0 at the top; pixel centres sit at +0.5.
* Ray directions are unit length, so ray distances ``t`` are metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

VIEW_LABELS = ("front", "side", "back", "overhead")


@dataclass
class Cameras:
    """A batch of pinhole cameras with square pixels."""

    c2w: Tensor  # [B, 4, 4]
    fov_y: Tensor  # [B] vertical field of view, radians
    width: int
    height: int

    @property
    def batch_size(self) -> int:
        return self.c2w.shape[0]

    @property
    def device(self) -> torch.device:
        return self.c2w.device

    @property
    def positions(self) -> Tensor:  # [B, 3]
        return self.c2w[:, :3, 3]

    @property
    def focal(self) -> Tensor:  # [B] focal length in pixels
        return 0.5 * self.height / torch.tan(0.5 * self.fov_y)

    def intrinsics(self) -> Tensor:  # [B, 3, 3]
        k = torch.zeros(self.batch_size, 3, 3, dtype=self.c2w.dtype, device=self.device)
        k[:, 0, 0] = self.focal
        k[:, 1, 1] = self.focal
        k[:, 0, 2] = 0.5 * self.width
        k[:, 1, 2] = 0.5 * self.height
        k[:, 2, 2] = 1.0
        return k

    def spherical(self) -> tuple[Tensor, Tensor, Tensor]:
        """(azimuth_deg [B], elevation_deg [B], radius [B]) of the camera centres."""
        return cartesian_to_spherical(self.positions)

    def view_labels(self) -> list[str]:
        az, el, _ = self.spherical()
        return view_labels(az, el)

    def generate_rays(self) -> tuple[Tensor, Tensor]:
        """World-space rays through every pixel centre.

        Returns origins ``[B, H, W, 3]`` and unit directions ``[B, H, W, 3]``.
        """
        dtype, device = self.c2w.dtype, self.device
        rows = torch.arange(self.height, dtype=dtype, device=device) + 0.5
        cols = torch.arange(self.width, dtype=dtype, device=device) + 0.5
        v, u = torch.meshgrid(rows, cols, indexing="ij")  # [H, W]
        f = self.focal.view(-1, 1, 1)
        x = (u - 0.5 * self.width) / f  # [B, H, W]
        y = -(v - 0.5 * self.height) / f
        z = -torch.ones_like(x)
        dirs_cam = torch.stack([x, y, z], dim=-1)  # [B, H, W, 3]
        rot = self.c2w[:, :3, :3]
        dirs = torch.einsum("bij,bhwj->bhwi", rot, dirs_cam)
        dirs = dirs / dirs.norm(dim=-1, keepdim=True)
        origins = self.positions.view(-1, 1, 1, 3).expand_as(dirs)
        return origins, dirs

    def to(self, device: torch.device | str) -> "Cameras":
        return Cameras(self.c2w.to(device), self.fov_y.to(device), self.width, self.height)

    def __getitem__(self, idx) -> "Cameras":
        c2w = self.c2w[idx]
        fov = self.fov_y[idx]
        if c2w.dim() == 2:
            c2w, fov = c2w[None], fov[None]
        return Cameras(c2w, fov, self.width, self.height)


def spherical_to_cartesian(azimuth_deg: Tensor, elevation_deg: Tensor, radius: Tensor) -> Tensor:
    az = torch.deg2rad(azimuth_deg)
    el = torch.deg2rad(elevation_deg)
    return torch.stack(
        [radius * torch.cos(el) * torch.cos(az), radius * torch.cos(el) * torch.sin(az), radius * torch.sin(el)],
        dim=-1,
    )


def cartesian_to_spherical(xyz: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    radius = xyz.norm(dim=-1)
    elevation = torch.rad2deg(torch.asin((xyz[..., 2] / radius.clamp_min(1e-12)).clamp(-1.0, 1.0)))
    azimuth = torch.rad2deg(torch.atan2(xyz[..., 1], xyz[..., 0]))
    return azimuth, elevation, radius


def look_at(eye: Tensor, target: Tensor | None = None, up: Sequence[float] = (0.0, 0.0, 1.0)) -> Tensor:
    """Camera-to-world matrices ``[B, 4, 4]`` for cameras at ``eye [B, 3]`` looking at ``target``.

    When the view direction is parallel to ``up`` (a camera straight overhead) the
    image-up vector falls back to +X so the matrix stays well defined.
    """
    if target is None:
        target = torch.zeros_like(eye)
    up_t = torch.tensor(up, dtype=eye.dtype, device=eye.device).expand_as(eye)
    backward = eye - target
    backward = backward / backward.norm(dim=-1, keepdim=True)
    right = torch.cross(up_t, backward, dim=-1)
    degenerate = right.norm(dim=-1, keepdim=True) < 1e-6
    alt_up = torch.tensor((1.0, 0.0, 0.0), dtype=eye.dtype, device=eye.device).expand_as(eye)
    right = torch.where(degenerate, torch.cross(alt_up, backward, dim=-1), right)
    right = right / right.norm(dim=-1, keepdim=True)
    cam_up = torch.cross(backward, right, dim=-1)
    c2w = torch.zeros(eye.shape[0], 4, 4, dtype=eye.dtype, device=eye.device)
    c2w[:, :3, 0] = right
    c2w[:, :3, 1] = cam_up
    c2w[:, :3, 2] = backward
    c2w[:, :3, 3] = eye
    c2w[:, 3, 3] = 1.0
    return c2w


def orbit_cameras(
    azimuth_deg: Tensor | Sequence[float],
    elevation_deg: Tensor | Sequence[float],
    radius: Tensor | Sequence[float] | float,
    fov_y_deg: Tensor | Sequence[float] | float,
    width: int,
    height: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Cameras:
    """Cameras on a sphere around the origin, all looking at the origin."""
    az = torch.as_tensor(azimuth_deg, dtype=dtype, device=device).reshape(-1)
    el = torch.as_tensor(elevation_deg, dtype=dtype, device=device).reshape(-1)
    n = max(az.numel(), el.numel())
    az, el = az.expand(n), el.expand(n)
    r = torch.as_tensor(radius, dtype=dtype, device=device).reshape(-1).expand(n)
    fov = torch.as_tensor(fov_y_deg, dtype=dtype, device=device).reshape(-1).expand(n)
    eye = spherical_to_cartesian(az, el, r)
    return Cameras(look_at(eye), torch.deg2rad(fov).clone(), width, height or width)


def turntable_cameras(
    num_views: int, elevation_deg: float = 15.0, radius: float = 3.0, fov_y_deg: float = 40.0, width: int = 64
) -> Cameras:
    """Evenly spaced azimuths starting at the front, for turntable videos and evaluation."""
    az = torch.arange(num_views, dtype=torch.float32) * (360.0 / num_views)
    return orbit_cameras(az, [elevation_deg], radius, fov_y_deg, width)


def wrap_azimuth(azimuth_deg: Tensor) -> Tensor:
    """Map azimuths to (-180, 180]."""
    return -((-azimuth_deg + 180.0) % 360.0 - 180.0)


def view_index(
    azimuth_deg: Tensor, elevation_deg: Tensor, front_half_angle: float = 45.0, overhead_elevation: float = 60.0
) -> Tensor:
    """Index into ``VIEW_LABELS`` of each camera ``[B]`` (long), computed on the angles' device
    without a host sync: overhead above ``overhead_elevation``; otherwise front within
    ``front_half_angle`` of azimuth 0, back within it of 180, side in between."""
    a = wrap_azimuth(azimuth_deg.detach().float()).abs()
    e = elevation_deg.detach().float()
    idx = torch.ones(a.shape, dtype=torch.long, device=a.device)  # side
    idx = torch.where(a >= 180.0 - front_half_angle, VIEW_LABELS.index("back"), idx)
    idx = torch.where(a <= front_half_angle, VIEW_LABELS.index("front"), idx)
    return torch.where(e >= overhead_elevation, VIEW_LABELS.index("overhead"), idx)


def view_labels(
    azimuth_deg: Tensor, elevation_deg: Tensor, front_half_angle: float = 45.0, overhead_elevation: float = 60.0
) -> list[str]:
    """DreamFusion's view words of :func:`view_index` (a host sync: for captions, not for a step)."""
    return [VIEW_LABELS[i] for i in view_index(azimuth_deg, elevation_deg, front_half_angle,
                                                overhead_elevation).tolist()]


@dataclass
class CameraSamplerConfig:
    """Random cameras on a sphere shell looking near the origin (DreamFusion's ranges, scaled to
    a scene in the [-1, 1]^3 box)."""

    radius_range: tuple[float, float] = (2.2, 2.8)
    """Distance of the camera from the origin."""
    elevation_range: tuple[float, float] = (-10.0, 70.0)
    """Elevation in degrees (0 = horizon, 90 = straight down from above)."""
    azimuth_range: tuple[float, float] = (-180.0, 180.0)
    """Azimuth in degrees (0 = front of the object, +X)."""
    fov_range: tuple[float, float] = (35.0, 45.0)
    """Vertical field of view in degrees."""
    uniform_sphere: bool = False
    """Sample directions uniformly on the sphere (area-uniform) instead of uniform in elevation."""
    target_jitter: float = 0.0
    """Standard deviation of a random offset of the look-at point (scene units)."""
    position_jitter: float = 0.0
    """Standard deviation of a random offset of the camera centre (scene units)."""


def _uniform(lo: float, hi: float, n: int, generator: torch.Generator | None) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def sample_cameras(
    config: CameraSamplerConfig,
    batch_size: int,
    width: int,
    height: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Cameras, Tensor, Tensor]:
    """Random cameras; returns ``(cameras, azimuth_deg [B], elevation_deg [B])``.

    The returned angles are the sampled ones (before jitter), which is what view-dependent
    prompting should use.
    """
    radius = _uniform(*config.radius_range, batch_size, generator)
    azimuth = _uniform(*config.azimuth_range, batch_size, generator)
    if config.uniform_sphere:
        lo, hi = (math.sin(math.radians(v)) for v in config.elevation_range)
        elevation = torch.rad2deg(torch.asin(_uniform(lo, hi, batch_size, generator)))
    else:
        elevation = _uniform(*config.elevation_range, batch_size, generator)
    fov = _uniform(*config.fov_range, batch_size, generator)
    eye = spherical_to_cartesian(azimuth, elevation, radius)
    target = torch.zeros_like(eye)
    if config.position_jitter > 0:
        eye = eye + config.position_jitter * torch.randn(eye.shape, generator=generator)
    if config.target_jitter > 0:
        target = target + config.target_jitter * torch.randn(eye.shape, generator=generator)
    cams = Cameras(look_at(eye, target), torch.deg2rad(fov), width, height or width).to(device)
    return cams, azimuth.to(device), elevation.to(device)
