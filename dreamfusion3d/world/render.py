"""Analytic renderer for procedural scenes: SDF sphere tracing + Lambertian shading in torch.

Rays first clip against the scene's bounding ball (rays that miss it never touch the SDF), then
march by the signed distance, dropping rays as soon as they hit or leave the ball, so the
work per step shrinks quickly. Normals come from a tetrahedral finite difference of the SDF.

Shading shared with meshes (``shade``): ``albedo * (ambient + (1 - ambient) * max(0, n·l))``,
composited over a plain background. The default light sits just above and a little to the
right of each camera ("headlight from the upper front"), so every side the camera sees is lit.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import Cameras, look_at
from .scene import Scene

HIT_EPS = 1e-4  # a ray has hit when the SDF is below this (scene units)
_TETRA = torch.tensor([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0], [-1.0, 1.0, -1.0], [1.0, 1.0, 1.0]])


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op threads. The renderer's kernels are tiny (a few thousand
    rays per step), so one thread is fastest, and it does not collapse when the CPU is shared
    (measured: 2 threads on a busy 2-core machine were 20x slower than 1)."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_light_dirs(cameras: Cameras) -> Tensor:  # [B, 3] unit, pointing from the surface to the light
    """Headlight from the upper front: the camera's backward axis tilted up and slightly right."""
    rot = cameras.c2w[:, :3, :3]
    light = rot[:, :, 2] + 0.6 * rot[:, :, 1] + 0.25 * rot[:, :, 0]
    return light / light.norm(dim=-1, keepdim=True)


def _light_dirs(cameras: Cameras, light_dir) -> Tensor:  # [B, 3]
    if light_dir is None:
        return default_light_dirs(cameras)
    light = torch.as_tensor(light_dir, dtype=cameras.c2w.dtype, device=cameras.device).reshape(-1, 3)
    light = light.expand(cameras.batch_size, 3)
    return light / light.norm(dim=-1, keepdim=True)


def headlight_positions(positions: Tensor, distance: float = 1000.0) -> Tensor:  # [B, 3] -> [B, 3]
    """Point lights far along :func:`default_light_dirs` for cameras at ``positions`` looking at the
    origin: the directional headlight every world render (hence every training view of the shipped
    priors) is lit with, for renderers that take point lights."""
    rot = look_at(positions)
    dirs = default_light_dirs(Cameras(rot, torch.zeros(len(positions)), 1, 1))
    return dirs * distance


def shade(albedo: Tensor, normals: Tensor, light: Tensor, ambient: float) -> Tensor:
    """Lambertian shading; ``albedo``/``normals`` ``[..., 3]``, ``light`` broadcastable ``[..., 3]``."""
    lambert = (normals * light).sum(-1, keepdim=True).clamp_min(0.0)
    return albedo * (ambient + (1.0 - ambient) * lambert)


def sphere_trace(
    sdf: Callable[[Tensor], Tensor],
    origins: Tensor,  # [N, 3]
    dirs: Tensor,  # [N, 3] unit
    bound_radius: float,
    max_steps: int = 96,
    eps: float = HIT_EPS,
    compact_every: int = 4,
) -> tuple[Tensor, Tensor]:
    """March rays through an SDF; returns ``(hit [N] bool, t [N])`` (t = inf where missed)."""
    n = origins.shape[0]
    hit = torch.zeros(n, dtype=torch.bool, device=origins.device)
    t_hit = torch.full((n,), float("inf"), dtype=origins.dtype, device=origins.device)
    # Entry/exit distances of the bounding ball |o + t d| = R.
    b = (origins * dirs).sum(-1)
    c = (origins * origins).sum(-1) - bound_radius**2
    disc = b * b - c
    idx = torch.nonzero(disc > 0).squeeze(-1)
    root = disc[idx].sqrt()
    # One packed state per active ray, compacted every ``compact_every`` steps: [o(3), d(3), t, t_max].
    state = torch.cat([origins[idx], dirs[idx], (-b[idx] - root).clamp_min(0.0)[:, None], (-b[idx] + root)[:, None]], 1)
    dist = torch.zeros(idx.numel(), dtype=origins.dtype, device=origins.device)
    done = torch.zeros(idx.numel(), dtype=torch.bool, device=origins.device)
    for step in range(max_steps):
        if idx.numel() == 0:
            break
        t = state[:, 6]
        dist = sdf(torch.addcmul(state[:, :3], state[:, 3:6], t[:, None]))
        done = done | (dist < eps)
        t.add_(torch.where(done, 0.0, dist))  # converged rays stay put until the next compaction
        if step % compact_every == compact_every - 1 or step == max_steps - 1:
            finished = done | (t >= state[:, 7])
            got = done & (t < state[:, 7] + eps)
            hit[idx[got]] = True
            t_hit[idx[got]] = t[got]
            keep = ~finished
            idx, state, dist, done = idx[keep], state[keep], dist[keep], done[keep]
    if idx.numel() > 0:  # out of steps: grazing rays crawling along a surface count as hits
        close = dist < 1e-2
        hit[idx[close]] = True
        t_hit[idx[close]] = state[close, 6]
    return hit, t_hit


def sdf_normals(sdf: Callable[[Tensor], Tensor], points: Tensor, h: float = 1e-3) -> Tensor:  # [N, 3]
    """Unit outward normals from a tetrahedral finite difference (4 SDF evaluations)."""
    k = _TETRA.to(points)  # [4, 3]
    values = sdf((points[None] + h * k[:, None]).reshape(-1, 3)).reshape(4, -1)  # [4, N]
    grad = (values[..., None] * k[:, None]).sum(0)
    return F.normalize(grad, dim=-1)


def downsample(buffers: dict[str, Tensor], factor: int) -> dict[str, Tensor]:
    """Average supersampled ``[B, H*f, W*f, C]`` buffers to ``[B, H, W, C]``.

    rgb and alpha are plain means; depth, normals and albedo are means over the covered
    subpixels (normals renormalised), so they stay meaningful at the silhouette."""
    if factor == 1:
        return buffers

    def pool(x: Tensor) -> Tensor:
        return F.avg_pool2d(x.permute(0, 3, 1, 2), factor).permute(0, 2, 3, 1)

    alpha = pool(buffers["alpha"])
    out = {"rgb": pool(buffers["rgb"]), "alpha": alpha}
    covered = alpha.clamp_min(1e-8)
    for key in ("depth", "albedo"):
        out[key] = torch.where(alpha > 0, pool(buffers[key] * buffers["alpha"]) / covered, 0.0)
    out["normals"] = F.normalize(pool(buffers["normals"] * buffers["alpha"]), dim=-1)
    return out


def composite(
    hit: Tensor,  # [B, H, W] bool
    t: Tensor,  # [B, H, W]
    albedo: Tensor,  # [B, H, W, 3] (anything where not hit)
    normals: Tensor,  # [B, H, W, 3]
    light: Tensor,  # [B, 3]
    ambient: float,
    background: Sequence[float] | Tensor,
) -> dict[str, Tensor]:
    """Shade hits and fill empty pixels: rgb over the background, depth/normals/albedo 0."""
    mask = hit[..., None]
    bg = torch.as_tensor(background, dtype=albedo.dtype, device=albedo.device).reshape(-1)[:3]
    normals = torch.where(mask, normals, 0.0)
    albedo = torch.where(mask, albedo, 0.0)
    colour = shade(albedo, normals, light[:, None, None, :], ambient)
    return {
        "rgb": torch.where(mask, colour, bg.expand_as(colour)),
        "alpha": mask.to(albedo.dtype),
        "depth": torch.where(mask, t[..., None], 0.0),
        "normals": normals,
        "albedo": albedo,
    }


@torch.no_grad()
def render_scene(
    scene: Scene,
    cameras: Cameras,
    light_dir: Sequence[float] | Tensor | None = None,
    background: Sequence[float] | Tensor = (1.0, 1.0, 1.0),
    ambient: float = 0.3,
    supersample: int = 1,
    max_steps: int = 96,
    chunk_rays: int = 1 << 17,
    threads: int | None = 1,
) -> dict[str, Tensor]:
    """Render ``scene`` from every camera.

    Returns ``rgb [B,H,W,3]`` (composited over ``background``), ``alpha [B,H,W,1]`` (exactly 0/1
    unless ``supersample > 1``), ``depth [B,H,W,1]`` (distance along the unit ray; 0 where
    empty), ``normals [B,H,W,3]`` (world space, unit; 0 where empty) and ``albedo [B,H,W,3]``.
    ``light_dir`` is a world direction towards the light (``[3]`` or ``[B,3]``); None = headlight
    from the upper front of each camera. ``supersample=f`` renders at f×f rays per pixel and
    averages (anti-aliasing; alpha becomes fractional at the silhouette). ``threads``: torch
    threads while rendering (restored afterwards; None leaves the setting alone).
    """
    if supersample < 1:
        raise ValueError("supersample must be >= 1")
    with torch_threads(threads):
        return _render_scene(scene, cameras, light_dir, background, ambient, supersample, max_steps, chunk_rays)


def _render_scene(scene, cameras, light_dir, background, ambient, supersample, max_steps, chunk_rays):
    cams = Cameras(cameras.c2w, cameras.fov_y, cameras.width * supersample, cameras.height * supersample)
    origins, dirs = cams.generate_rays()  # [B, H, W, 3]
    shape = origins.shape[:-1]
    origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    bound = scene.bound_radius() + 1e-2
    hit = torch.zeros(origins.shape[0], dtype=torch.bool, device=origins.device)
    t = torch.zeros(origins.shape[0], dtype=origins.dtype, device=origins.device)
    for start in range(0, origins.shape[0], chunk_rays):
        sl = slice(start, start + chunk_rays)
        hit[sl], t[sl] = sphere_trace(scene.sdf, origins[sl], dirs[sl], bound, max_steps)
    albedo = torch.zeros_like(origins)
    normals = torch.zeros_like(origins)
    if hit.any():
        points = origins[hit] + t[hit, None] * dirs[hit]
        albedo[hit] = scene.albedo(points)
        normals[hit] = sdf_normals(scene.sdf, points)
    out = composite(
        hit.reshape(shape), t.reshape(shape), albedo.reshape(*shape, 3), normals.reshape(*shape, 3),
        _light_dirs(cameras, light_dir), ambient, background,
    )
    return downsample(out, supersample)
