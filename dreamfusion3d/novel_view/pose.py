"""Camera-pair encodings for the novel-view model.

The core code is Zero-1-to-3's relative pose ``[Δelevation, sin Δazimuth, cos Δazimuth, Δradius]``
(angles in radians, target minus source) between two cameras on spheres around the object. The
network sees a few more harmonics of Δazimuth and the source elevation, because "up" is fixed in
this world (+Z) and the light is fixed in world space, so absolute elevation changes appearance.
A dropped condition (classifier-free guidance) is the all-zero vector, which no real pose
produces (sin² + cos² = 1).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cameras import Cameras, cartesian_to_spherical

POSE_HARMONICS = (2, 3)  # extra multiples of Δazimuth given to the network
POSE_FEATURES = 4 + 2 * len(POSE_HARMONICS) + 1  # relative pose + harmonics + source elevation


def spherical_of(cameras: Cameras) -> Tensor:  # [B, 3] (azimuth_deg, elevation_deg, radius)
    az, el, r = cartesian_to_spherical(cameras.positions)
    return torch.stack([az, el, r], dim=-1)


def relative_pose(source: Tensor, target: Tensor) -> Tensor:  # [..., 3] x2 -> [..., 4]
    """Zero-1-to-3's relative camera code from (azimuth_deg, elevation_deg, radius) triples."""
    d_az = torch.deg2rad(target[..., 0] - source[..., 0])
    d_el = torch.deg2rad(target[..., 1] - source[..., 1])
    d_r = target[..., 2] - source[..., 2]
    return torch.stack([d_el, torch.sin(d_az), torch.cos(d_az), d_r], dim=-1)


def pose_features(source: Tensor, target: Tensor) -> Tensor:  # [..., 3] x2 -> [..., POSE_FEATURES]
    """The vector the UNet's class-embedding projection receives for one camera pair."""
    rel = relative_pose(source, target)
    d_az = torch.deg2rad(target[..., 0] - source[..., 0])
    extra = [f(k * d_az) for k in POSE_HARMONICS for f in (torch.sin, torch.cos)]
    src_el = torch.deg2rad(source[..., 1])
    return torch.cat([rel, torch.stack(extra + [src_el], dim=-1)], dim=-1)


def ray_maps(spherical: Tensor, fov_y_deg: float, size: int) -> Tensor:  # [B, 3] -> [B, 6, H, W]
    """Per-pixel world-space ray origins (scaled by 1/3) and unit directions of orbit cameras
    looking at the origin (3DiM's ray conditioning), channels first."""
    from ..cameras import orbit_cameras

    cams = orbit_cameras(spherical[:, 0], spherical[:, 1], spherical[:, 2], fov_y_deg, size,
                         dtype=spherical.dtype, device=spherical.device)
    origins, dirs = cams.generate_rays()  # [B, H, W, 3] each
    return torch.cat([origins / 3.0, dirs], dim=-1).permute(0, 3, 1, 2).contiguous()


def angular_distance_deg(a: Tensor, b: Tensor) -> Tensor:  # [..., 3] x2 -> [...]
    """Angle between the viewing directions of two cameras (degrees), used to order views."""
    def unit(s: Tensor) -> Tensor:
        az, el = torch.deg2rad(s[..., 0]), torch.deg2rad(s[..., 1])
        return torch.stack([torch.cos(el) * torch.cos(az), torch.cos(el) * torch.sin(az), torch.sin(el)], -1)

    cos = (unit(a) * unit(b)).sum(-1).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos))


__all__ = ["POSE_FEATURES", "relative_pose", "pose_features", "spherical_of", "ray_maps", "angular_distance_deg"]
