"""Volume rendering of a field: sampler (occupancy grid), shading, nerfacc compositing.

The field is anything with ``query(points, with_normals) -> (density, albedo, normals)`` and
``density(points)``: a NeRF's density field, or an SDF turned into density (VolSDF). The 3D
representations (:mod:`dreamfusion3d.representations`) build on this class.

One interface for both devices: ``VolumeRenderer.render`` picks the sampler by the rays' device
(CUDA: nerfacc's grid traversal; CPU: a fixed-step march that skips empty occupancy cells, see
``sampler.py``). Weights come from nerfacc's ``render_weight_from_density`` (packed on CUDA,
batched on CPU) and every per-ray quantity from ``accumulate_along_rays``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from nerfacc import OccGridEstimator, accumulate_along_rays, render_weight_from_density
from torch import Tensor, nn

from ..cameras import Cameras
from .background import Background
from .kernels import nerfacc_cuda_ready
from .sampler import RaySamples, march_cpu, march_cuda

Shading = Literal["albedo", "lambertian", "textureless"]
SCENE_AABB = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)


class OccupancyGrid(OccGridEstimator):
    """nerfacc's occupancy grid with a reproducible update.

    After the warm-up nerfacc refreshes a random sample of cells plus the occupied ones, and the
    two lists overlap, so a cell can appear more than once; it then writes ``occs[ids] = new`` in
    one indexed assignment, where with repeated ids the value that lands depends on how torch splits
    the write between threads. With two threads two runs from the same checkpoint drifted apart
    from the first refresh after the warm-up (docs/RESULTS.md, Speed, session 34). Here the last
    occurrence of each cell is the one written — what a single thread does — so a run is the same
    on any thread count and on one thread the same as nerfacc's. Everything else is nerfacc's
    ``_update`` (nerfacc is pinned to 0.5.3).
    """

    @torch.no_grad()
    def _update(self, step: int, occ_eval_fn, occ_thre: float = 0.01, ema_decay: float = 0.95,
                warmup_steps: int = 256) -> None:
        if step < warmup_steps:
            lvl_indices = self._get_all_cells()
        else:
            lvl_indices = self._sample_uniform_and_occupied_cells(self.cells_per_lvl // 4)
        for lvl, indices in enumerate(lvl_indices):
            coords = self.grid_coords[indices]
            x = (coords + torch.rand_like(coords, dtype=torch.float32)) / self.resolution  # jittered, in [0, 1]³
            x = self.aabbs[lvl, :3] + x * (self.aabbs[lvl, 3:] - self.aabbs[lvl, :3])
            occ = occ_eval_fn(x).squeeze(-1)
            cell_ids = lvl * self.cells_per_lvl + indices
            new = torch.maximum(self.occs[cell_ids] * ema_decay, occ)
            order = torch.arange(len(cell_ids), device=cell_ids.device)
            last = torch.full_like(self.occs, -1, dtype=torch.long).scatter_reduce_(0, cell_ids, order, "amax")
            keep = last[cell_ids] == order  # each cell once: its last occurrence
            self.occs[cell_ids[keep]] = new[keep]
        thre = torch.clamp(self.occs[self.occs >= 0].mean(), max=occ_thre)
        self.binaries = (self.occs > thre).view(self.binaries.shape)


@dataclass
class RendererConfig:
    """Ray sampling, occupancy grid and compositing."""

    num_steps: int = 64
    """Samples along the box diagonal (step size = 2√3 / num_steps)."""
    near_plane: float = 0.0
    """Samples start at least this far from the camera."""
    stratified: bool = True
    """Jitter the samples of each ray while training (anti-aliasing in depth)."""
    use_occupancy: bool = True
    """Skip samples in empty cells of the occupancy grid."""
    occupancy_resolution: int = 32
    """Cells per side of the occupancy grid over [-1, 1]^3."""
    occupancy_threshold: float = 0.01
    """A cell is occupied when σ · step exceeds this (or the mean, if lower)."""
    occupancy_ema_decay: float = 0.95
    """Decay of the running maximum of each cell's occupancy."""
    occupancy_update_every: int = 16
    """Refresh the grid every n optimisation steps."""
    occupancy_warmup_steps: int = 256
    """Before this step every cell is re-evaluated; afterwards a random quarter plus occupied ones."""
    early_stop_eps: float = 1e-4
    """CUDA only: stop marching once transmittance falls below this."""
    chunk_rays: int = 32768
    """Rays per chunk when rendering without gradients."""


class VolumeRenderer(nn.Module):
    """Renders a density field with a ``Background``; owns the occupancy grid (nerfacc estimator)."""

    def __init__(self, config: RendererConfig, field: nn.Module, background: Background) -> None:
        super().__init__()
        self.config = config
        self.field = field
        self.background = background
        self.estimator = OccupancyGrid(roi_aabb=list(SCENE_AABB), resolution=config.occupancy_resolution, levels=1)
        # Until the first update every cell counts as occupied (nerfacc starts from an empty grid).
        self.estimator.binaries.fill_(True)

    @property
    def step_size(self) -> float:
        return 2.0 * math.sqrt(3.0) / self.config.num_steps

    # -- occupancy -----------------------------------------------------------------------------
    @torch.no_grad()
    def occupancy(self, points: Tensor, chunk: int = 1 << 16) -> Tensor:  # [N, 3] -> [N, 1] ≈ alpha per step
        out = [self.field.density(points[i : i + chunk]) for i in range(0, points.shape[0], chunk)]
        return (torch.cat(out) * self.step_size)[:, None]

    def update_occupancy(self, step: int) -> None:
        """Refresh the occupancy grid on every ``occupancy_update_every``-th step (training mode only)."""
        if not self.config.use_occupancy or not self.training:
            return
        cfg = self.config
        self.estimator.update_every_n_steps(
            step, occ_eval_fn=self.occupancy, occ_thre=cfg.occupancy_threshold, ema_decay=cfg.occupancy_ema_decay,
            warmup_steps=cfg.occupancy_warmup_steps, n=cfg.occupancy_update_every,
        )

    def occupied_fraction(self) -> float:
        return float(self.estimator.binaries.float().mean().item())

    # -- sampling + compositing ----------------------------------------------------------------
    def sample(self, origins: Tensor, dirs: Tensor) -> RaySamples:
        cfg = self.config
        stratified = self.training and cfg.stratified
        if origins.is_cuda and nerfacc_cuda_ready():  # else the portable sampler, on the GPU too
            sigma_fn = None
            if cfg.early_stop_eps > 0:
                def sigma_fn(t_starts: Tensor, t_ends: Tensor, ray_indices: Tensor) -> Tensor:
                    t = 0.5 * (t_starts + t_ends)[:, None]
                    return self.field.density(origins[ray_indices] + t * dirs[ray_indices])
            return march_cuda(self.estimator, origins, dirs, self.step_size, cfg.near_plane, cfg.use_occupancy,
                              stratified, sigma_fn, cfg.early_stop_eps)
        return march_cpu(self.estimator, origins, dirs, self.step_size, cfg.near_plane, cfg.use_occupancy, stratified)

    @staticmethod
    def weights(samples: RaySamples, density: Tensor) -> Tensor:  # [M] -> [M]
        """Compositing weights w_i = T_i (1 - exp(-σ_i δ_i)) by nerfacc (packed on CUDA, batched on CPU)."""
        if samples.batch_index is None:
            w, _, _ = render_weight_from_density(
                samples.t_starts, samples.t_ends, density, ray_indices=samples.ray_indices, n_rays=samples.n_rays
            )
            return w
        shape = (samples.n_rays, samples.batch_width)
        size = shape[0] * shape[1]
        idx = (samples.batch_index,)
        t0 = samples.t_starts.new_zeros(size).index_put(idx, samples.t_starts).view(shape)
        t1 = samples.t_ends.new_zeros(size).index_put(idx, samples.t_ends).view(shape)
        sigma = density.new_zeros(size).index_put(idx, density).view(shape)  # empty slots: δ = 0
        w, _, _ = render_weight_from_density(t0, t1, sigma)  # [R, K]
        return w.reshape(-1)[samples.batch_index]

    def render_rays(
        self,
        origins: Tensor,  # [R, 3]
        dirs: Tensor,  # [R, 3] unit
        shading: Shading = "albedo",
        light_positions: Tensor | None = None,  # [R, 3]; None = at the ray origins (headlight)
        ambient: float = 0.1,
        with_normals: bool | None = None,
    ) -> dict[str, Tensor | int]:
        """Per-ray outputs: rgb [R,3], opacity [R,1], depth [R,1], normals [R,3], orientation [R,1],
        num_samples, num_dense. Normals are computed when shading needs them or ``with_normals``."""
        if shading not in ("albedo", "lambertian", "textureless"):
            raise ValueError(f"unknown shading {shading!r}")
        need_normals = shading != "albedo" if with_normals is None else (with_normals or shading != "albedo")
        n_rays = origins.shape[0]
        samples = self.sample(origins, dirs)
        out = self.field.query(samples.positions, with_normals=need_normals)
        ri = samples.ray_indices
        if shading == "albedo":
            color = out.albedo
        else:
            albedo = torch.ones_like(out.albedo) if shading == "textureless" else out.albedo
            lights = origins if light_positions is None else light_positions
            to_light = F.normalize(lights[ri] - samples.positions, dim=-1)
            lambert = (out.normals * to_light).sum(-1, keepdim=True).clamp_min(0.0)
            color = albedo * (ambient + (1.0 - ambient) * lambert)
        w = self.weights(samples, out.density)  # [M]
        t_mid = 0.5 * (samples.t_starts + samples.t_ends)
        rgb_fg = accumulate_along_rays(w, color, ri, n_rays)
        opacity = accumulate_along_rays(w, None, ri, n_rays)
        depth = accumulate_along_rays(w, t_mid[:, None], ri, n_rays)
        if need_normals:
            normals = accumulate_along_rays(w, out.normals, ri, n_rays)
            # DreamFusion's orientation penalty: normals facing away from the camera, weighted
            # by the (detached) rendering weights.
            facing = (out.normals * dirs[ri]).sum(-1, keepdim=True).clamp_min(0.0).square()
            orientation = accumulate_along_rays(w.detach(), facing, ri, n_rays)
        else:
            normals = origins.new_zeros(n_rays, 3)
            orientation = origins.new_zeros(n_rays, 1)
        rgb = rgb_fg + (1.0 - opacity) * self.background(dirs)
        return {
            "rgb": rgb, "opacity": opacity, "depth": depth, "normals": normals, "orientation": orientation,
            "num_samples": samples.num_samples, "num_dense": samples.num_dense,
        }

    def render(
        self,
        cameras: Cameras,
        shading: Shading = "albedo",
        light_positions: Tensor | None = None,  # [B, 3]; None = at each camera
        ambient: float = 0.1,
        with_normals: bool | None = None,
    ) -> dict[str, Tensor | int]:
        """Render every pixel of ``cameras``: rgb [B,H,W,3], opacity/depth [B,H,W,1], normals [B,H,W,3],
        orientation_loss (scalar), num_samples (field evaluations), num_dense (a plain march's count, a 0-d tensor)."""
        origins, dirs = cameras.generate_rays()  # [B, H, W, 3]
        b, h, w = origins.shape[:3]
        o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
        lights = None
        if light_positions is not None:
            lights = light_positions.to(o).reshape(b, 1, 3).expand(b, h * w, 3).reshape(-1, 3)
        if torch.is_grad_enabled():
            outs = [self.render_rays(o, d, shading, lights, ambient, with_normals)]
        else:
            step = self.config.chunk_rays
            outs = [
                self.render_rays(o[i : i + step], d[i : i + step], shading, None if lights is None else lights[i : i + step],
                                 ambient, with_normals)
                for i in range(0, o.shape[0], step)
            ]
        cat = {k: torch.cat([x[k] for x in outs]) for k in ("rgb", "opacity", "depth", "normals", "orientation")}
        return {
            "rgb": cat["rgb"].view(b, h, w, 3),
            "opacity": cat["opacity"].view(b, h, w, 1),
            "depth": cat["depth"].view(b, h, w, 1),
            "normals": cat["normals"].view(b, h, w, 3),
            "orientation_loss": cat["orientation"].mean(),
            "num_samples": sum(int(x["num_samples"]) for x in outs),
            "num_dense": sum(x["num_dense"] for x in outs),  # 0-d tensor: int() it when needed
        }
