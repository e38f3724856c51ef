"""The NeRF: a density + albedo field (dense or hash grid + MLP), volume-rendered through nerfacc
with an occupancy grid, meshed at a density level."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ...fields import FieldConfig, build_field
from ...rendering import BackgroundConfig, RendererConfig, VolumeRenderer, build_background, occupied
from ..base import ExportFields, Representation, grouped_params


class NeRF(VolumeRenderer, Representation):
    kind = "nerf"
    sections = {"field": FieldConfig, "renderer": RendererConfig, "background": BackgroundConfig}

    @classmethod
    def from_sections(cls, sections: dict[str, Any]) -> "NeRF":
        return cls(sections["renderer"], build_field(sections["field"]), build_background(sections["background"]))

    def section_configs(self) -> dict[str, Any]:
        return {"field": self.field.config, "renderer": self.config, "background": self.background.config}

    def param_groups(self, lr: float, lr_network: float, lr_background: float) -> list[dict]:
        return grouped_params(self, lr, lr_network, lr_background)

    def update(self, step: int) -> None:
        self.field.encoding.set_step(step + 1)
        self.update_occupancy(step)

    def export_fields(self) -> ExportFields:
        """Density is zero in cells the occupancy grid marks empty: the renderer skips samples
        there, so that density never shows in renders, and skipping it makes export faster."""
        field = self.field
        density_fn = field.density
        if self.config.use_occupancy:
            binaries, aabb = self.estimator.binaries[0], self.estimator.aabbs[0]

            def density_fn(points: Tensor) -> Tensor:  # [N, 3] -> [N]
                keep = occupied(binaries, aabb.to(points.dtype), points)
                sigma = torch.zeros(len(points), dtype=points.dtype, device=points.device)
                if keep.any():
                    sigma[keep] = field.density(points[keep]).to(points.dtype)
                return sigma

        return ExportFields(density_fn, lambda p: field(p)[1], "density")

    def stats(self) -> dict[str, float]:
        return {"occupied_fraction": self.occupied_fraction()}


def build_nerf(field: FieldConfig, renderer: RendererConfig, background: BackgroundConfig) -> NeRF:
    return NeRF.from_sections({"field": field, "renderer": renderer, "background": background})
