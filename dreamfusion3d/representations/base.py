"""The one protocol every 3D representation g(θ) offers to the code above it.

``generate``, ``image-to-3d``, ``export``, ``evaluate``, ``bench`` and ``reconstruct`` talk to a
representation only through this class: render from cameras (rgb, opacity, depth, normals), its
parameter groups, a per-step update, its own regularisers, the scalar + colour fields that export
meshes, and its config sections (what ``save``/``load`` in :mod:`.registry` write and rebuild
from). A new representation is one folder that subclasses it plus one line in ``REGISTRY``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Literal

import torch
from torch import Tensor, nn

FieldFn = Callable[[Tensor], Tensor]  # points [N, 3] -> [N]
ColorFn = Callable[[Tensor], Tensor]  # points [N, 3] -> [N, 3] in [0, 1]


@dataclass
class ExportFields:
    """What a mesh is cut from: ``field_type="sdf"`` meshes ``field_fn`` at 0 (inside below);
    ``"density"`` at a density level (inside above; ``"auto"`` matches the rendered silhouettes)."""

    field_fn: FieldFn
    color_fn: ColorFn
    field_type: Literal["density", "sdf"]


class Representation(nn.Module):
    """Base class of 3D representations (an ``nn.Module``; ``state_dict`` holds all of its state).

    Subclasses set ``kind`` (the registry name) and ``sections`` (config-section name → dataclass
    type, e.g. ``{"field": FieldConfig, "renderer": RendererConfig}``): ``from_sections`` gets
    those configs back, and checkpoints store them as JSON.
    """

    kind: ClassVar[str] = ""
    sections: ClassVar[dict[str, type]] = {}

    @classmethod
    def from_sections(cls, sections: dict[str, Any]) -> "Representation":
        raise NotImplementedError

    def section_configs(self) -> dict[str, Any]:
        """The config dataclasses this representation was built from, by section name."""
        raise NotImplementedError

    # -- rendering -------------------------------------------------------------------------
    def render(self, cameras, shading: str = "albedo", light_positions: Tensor | None = None,
               ambient: float = 0.1, with_normals: bool | None = None) -> dict[str, Tensor | int]:
        """Every pixel of ``cameras``: rgb [B,H,W,3], opacity/depth [B,H,W,1], normals [B,H,W,3],
        orientation_loss (scalar), num_samples."""
        raise NotImplementedError

    def render_rays(self, origins: Tensor, dirs: Tensor, shading: str = "albedo",
                    light_positions: Tensor | None = None, ambient: float = 0.1,
                    with_normals: bool | None = None) -> dict[str, Tensor | int]:
        raise NotImplementedError

    @contextmanager
    def for_display(self) -> Iterator["Representation"]:
        """Renders inside this block are for people to look at (turntables, previews), not for
        the loss: a representation may draw its surface sharper than it trains. Default: as trained."""
        yield self

    # -- optimisation ----------------------------------------------------------------------
    def param_groups(self, lr: float, lr_network: float, lr_background: float) -> list[dict]:
        """Adam groups ``{"params", "lr", "name"}``: the spatial encoding (``lr``), the networks
        (``lr_network``) and the background (``lr_background``)."""
        raise NotImplementedError

    def update(self, step: int) -> None:
        """Housekeeping after optimisation step ``step`` (occupancy grids, schedules)."""

    def regularisers(self, out: dict[str, Any], step: int) -> dict[str, Tensor]:
        """The representation's own weighted loss terms for a step whose render was ``out``."""
        return {}

    # -- export ----------------------------------------------------------------------------
    def export_fields(self) -> ExportFields:
        raise NotImplementedError

    def albedo(self, points: Tensor) -> Tensor:  # [N, 3] -> [N, 3]
        return self.export_fields().color_fn(points)

    def stats(self) -> dict[str, float]:
        """A few JSON-able figures for logs and metrics (e.g. the occupied share of the grid)."""
        return {}


def grouped_params(module: torch.nn.Module, lr: float, lr_network: float, lr_background: float) -> list[dict]:
    """Adam groups by parameter name: ``background.*``, ``field.encoding.*`` (the spatial grid,
    at ``lr``) and the rest (the MLP heads, at ``lr_network``)."""
    groups: dict[str, list] = {"encoding": [], "network": [], "background": []}
    for name, param in module.named_parameters():
        if name.startswith("background."):
            groups["background"].append(param)
        elif name.startswith("field.encoding."):
            groups["encoding"].append(param)
        else:
            groups["network"].append(param)
    lrs = {"encoding": lr, "network": lr_network, "background": lr_background}
    return [{"params": ps, "lr": lrs[name], "name": name} for name, ps in groups.items() if ps]
