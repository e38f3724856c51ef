"""A surface geometry: a signed-distance field rendered volumetrically (VolSDF), meshed at 0.

The field is the NeRF's encoding + MLP head, read as a signed distance
``d(x) = |x| − r₀ + s · head(x)₀`` (a sphere of radius ``init_radius`` at initialisation) and an
albedo ``sigmoid(head(x)₁..₃)``. Rendering turns it into density with VolSDF's Laplace CDF,
``σ(x) = Ψ_β(−d(x)) / β``, and goes through the same nerfacc sampler and compositing as the NeRF,
so the occupancy grid, shading and background are shared. Normals are ``∇d / |∇d|``; the eikonal
term ``(|∇d| − 1)²`` at random points of the box keeps ``d`` a distance, so the rendered surface is
the zero level set that export meshes. ``β`` (the surface's blur) is annealed from ``beta_start``
to ``beta_end``: coarse shapes first, crisp surfaces later.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...fields import FieldConfig, FieldOutput, build_encoding, mlp
from ...fields.dense_head import grid_head_and_gradient
from ...rendering import BackgroundConfig, RendererConfig, VolumeRenderer, build_background
from ..base import ExportFields, Representation, grouped_params


@dataclass
class SDFConfig:
    """The signed-distance geometry (``--geometry sdf``); encoding and MLP sizes come from ``field``."""

    init_radius: float = 0.5
    """Radius of the sphere the distance starts as."""
    residual_scale: float = 1.0
    """Scale of the MLP's output added to the sphere's distance."""
    beta_start: float = 0.08
    """VolSDF's β (surface blur, scene units) at step 0 ..."""
    beta_end: float = 0.02
    """... and from ``beta_steps`` on (linear in between)."""
    beta_steps: int = 400
    """Steps of the β anneal."""
    display_beta: float | None = 0.005
    """β of the turntable and preview renders, when below the trained β (None: the trained β).
    The surface is the zero level set the mesh is cut at; a soft β also draws a faint halo where
    rays graze it (turntable speckle), a small one shows the surface alone. Training is unchanged."""
    eikonal_weight: float = 0.1
    """Weight of the eikonal term (|∇d| − 1)²."""
    eikonal_points: int = 4096
    """Random points of the box the eikonal and smoothness terms are evaluated at per step."""
    smoothness_weight: float = 0.0
    """Weight of the normal-smoothness term: ‖n(x) − n(x + δ)‖² near the surface (weighted by
    exp(−|d(x)| / 0.1)), δ ~ N(0, smoothness_radius²) — irons out the bumps SDS noise leaves."""
    smoothness_radius: float = 0.02
    """Scale of the offset δ of the smoothness term (scene units)."""
    grid_tv_weight: float = 0.0
    """Weight of the total variation (mean squared difference of neighbouring voxels) of a dense
    feature grid: damps the voxel-scale bumps that the prior, at 32 px, cannot see."""


def laplace_density(d: Tensor, beta: Tensor) -> Tensor:
    """VolSDF: σ = Ψ_β(−d) / β with Ψ_β the CDF of a zero-mean Laplace distribution of scale β."""
    e = torch.exp(-d.abs() / beta)
    return torch.where(d > 0, 0.5 * e, 1.0 - 0.5 * e) / beta


def grid_tv(grid: Tensor) -> Tensor:  # [1, F, D, H, W] -> []
    """Mean squared difference between neighbouring voxels, over the three axes."""
    return sum((grid.diff(dim=d).square().mean() for d in (2, 3, 4)), grid.new_zeros(()))


class SDFField(nn.Module):
    """``sdf(points)``, ``density(points)``, ``query(points, with_normals)`` like a NeRF field."""

    def __init__(self, field: FieldConfig, sdf: SDFConfig) -> None:
        super().__init__()
        self.config, self.sdf_config = field, sdf
        self.encoding = build_encoding(field)
        self.head = mlp(self.encoding.output_dim, field.hidden_dim, field.hidden_layers, 4)
        with torch.no_grad():  # start as the sphere: a near-zero distance residual
            self.head[-1].weight[0].mul_(1e-2)
            self.head[-1].bias[0].zero_()
        self.register_buffer("beta", torch.tensor(float(sdf.beta_start)))

    def _sdf(self, raw: Tensor, points: Tensor) -> Tensor:  # -> [N]
        c = self.sdf_config
        return points.norm(dim=-1) - c.init_radius + c.residual_scale * raw[:, 0]

    def sdf(self, points: Tensor) -> Tensor:  # [N, 3] -> [N]
        return self._sdf(self.head(self.encoding(points)), points)

    def density(self, points: Tensor) -> Tensor:  # [N, 3] -> [N]
        return laplace_density(self.sdf(points), self.beta)

    def sdf_and_gradient(self, points: Tensor, create_graph: bool) -> tuple[Tensor, Tensor, Tensor]:
        """(d [N], ∇d [N,3], raw head output [N,4]), keeping the graph if asked.

        A dense grid with a one-hidden-layer ReLU head on a CPU goes through the compiled kernel
        (:mod:`...fields.dense_head`: no double backward at all). Else, with an encoding that gives
        its own Jacobian J = ∂f/∂x (the dense grid), the chain rule ∇d = ∂d/∂x|_f + (∂d/∂f) J:
        autograd differentiates the head twice but the grid only once (no grid_sample double
        backward). Otherwise autograd through the whole field."""
        with torch.set_grad_enabled(create_graph):
            fused = grid_head_and_gradient(self.encoding, self.head, points)
        if fused is not None:
            raw, head_grad = fused  # head_grad = ∂raw₀/∂x; d depends on the head through raw₀
            with torch.enable_grad():
                pts = points.detach().to(raw.dtype).requires_grad_(True)
                if not create_graph:
                    raw = raw.detach().requires_grad_(True)
                d = self._sdf(raw, pts)
                explicit, d_raw = torch.autograd.grad(d.sum(), (pts, raw), create_graph=create_graph)
            return d, explicit + d_raw[:, :1] * head_grad, raw
        if hasattr(self.encoding, "value_and_jacobian"):
            with torch.enable_grad():
                pts = points.detach().requires_grad_(True)
                feats, jac = self.encoding.value_and_jacobian(pts.detach())  # [N, F], [N, F, 3]
                if not feats.requires_grad:  # a frozen grid: still differentiate the head in f
                    feats = feats.detach().requires_grad_(True)
                raw = self.head(feats)
                d = self._sdf(raw, pts)
                explicit, head_grad = torch.autograd.grad(d.sum(), (pts, feats), create_graph=create_graph)
                grad = explicit + (head_grad[:, :, None] * jac).sum(1)
            return d, grad, raw
        with torch.enable_grad():
            pts = points.detach().requires_grad_(True)
            raw = self.head(self.encoding(pts))
            d = self._sdf(raw, pts)
            grad = torch.autograd.grad(d.sum(), pts, create_graph=create_graph)[0]
        return d, grad, raw

    def query(self, points: Tensor, with_normals: bool = False) -> FieldOutput:
        if with_normals:
            outer = torch.is_grad_enabled()
            d, grad, raw = self.sdf_and_gradient(points, create_graph=outer)
            normals = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-8)
            if not outer:
                d, raw, normals = d.detach(), raw.detach(), normals.detach()
        else:
            raw = self.head(self.encoding(points))
            d, normals = self._sdf(raw, points), None
        return FieldOutput(laplace_density(d, self.beta), torch.sigmoid(raw[:, 1:4]), normals)

    def forward(self, points: Tensor) -> tuple[Tensor, Tensor]:
        out = self.query(points)
        return out.density, out.albedo

    def albedo(self, points: Tensor) -> Tensor:
        return torch.sigmoid(self.head(self.encoding(points))[:, 1:4])


class SDFGeometry(VolumeRenderer, Representation):
    kind = "sdf"
    sections = {"field": FieldConfig, "sdf": SDFConfig, "renderer": RendererConfig, "background": BackgroundConfig}

    def __init__(self, renderer: RendererConfig, field: SDFField, background) -> None:
        super().__init__(renderer, field, background)

    @classmethod
    def from_sections(cls, sections: dict[str, Any]) -> "SDFGeometry":
        return cls(sections["renderer"], SDFField(sections["field"], sections["sdf"]),
                   build_background(sections["background"]))

    def section_configs(self) -> dict[str, Any]:
        return {"field": self.field.config, "sdf": self.field.sdf_config, "renderer": self.config,
                "background": self.background.config}

    def param_groups(self, lr: float, lr_network: float, lr_background: float) -> list[dict]:
        return grouped_params(self, lr, lr_network, lr_background)

    def beta_at(self, step: int) -> float:
        c = self.field.sdf_config
        frac = min(1.0, max(0.0, step / c.beta_steps)) if c.beta_steps > 0 else 1.0
        return c.beta_start + frac * (c.beta_end - c.beta_start)

    @contextmanager
    def for_display(self) -> Iterator["SDFGeometry"]:
        shown, trained = self.field.sdf_config.display_beta, self.field.beta.clone()
        if shown is not None:
            self.field.beta.fill_(min(float(trained), float(shown)))
        try:
            yield self
        finally:
            self.field.beta.copy_(trained)

    def update(self, step: int) -> None:
        self.field.beta.fill_(self.beta_at(step + 1))
        self.field.encoding.set_step(step + 1)
        self.update_occupancy(step)

    def eikonal(self, points: Tensor) -> Tensor:
        """Mean (|∇d| − 1)² at ``points`` (differentiable)."""
        _, grad, _ = self.field.sdf_and_gradient(points, create_graph=True)
        return (grad.norm(dim=-1) - 1.0).square().mean()

    def regularisers(self, out: dict[str, Any], step: int) -> dict[str, Tensor]:
        c = self.field.sdf_config
        if c.eikonal_points <= 0 or (c.eikonal_weight <= 0 and c.smoothness_weight <= 0 and c.grid_tv_weight <= 0):
            return {}
        device = self.field.beta.device
        points = torch.rand(c.eikonal_points, 3, device=device) * 2.0 - 1.0
        d, grad, _ = self.field.sdf_and_gradient(points, create_graph=True)
        terms = {}
        if c.eikonal_weight > 0:
            terms["eikonal"] = c.eikonal_weight * (grad.norm(dim=-1) - 1.0).square().mean()
        if c.smoothness_weight > 0:
            near = points + c.smoothness_radius * torch.randn(points.shape, device=device)
            _, grad_near, _ = self.field.sdf_and_gradient(near, create_graph=True)
            diff = (F.normalize(grad, dim=-1) - F.normalize(grad_near, dim=-1)).square().sum(-1)
            weight = torch.exp(-d.detach().abs() / 0.1)
            terms["smoothness"] = c.smoothness_weight * (weight * diff).sum() / weight.sum().clamp_min(1e-8)
        grid = getattr(self.field.encoding, "grid", None)
        if c.grid_tv_weight > 0 and grid is not None:
            terms["grid_tv"] = c.grid_tv_weight * grid_tv(grid)
        return terms

    def export_fields(self) -> ExportFields:
        return ExportFields(self.field.sdf, self.field.albedo, "sdf")

    def stats(self) -> dict[str, float]:
        return {"occupied_fraction": self.occupied_fraction(), "beta": float(self.field.beta)}
