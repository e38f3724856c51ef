"""NeRF checkpoints: ``model.safetensors`` (field, background, occupancy grid) + ``nerf.json``
(the three configs and caller's ``extra``). No pickle; loading never executes code."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..utils.io import replace_folder
from ..fields import FieldConfig, build_field
from ..utils.config import from_dict, to_dict
from ..utils.errors import UserError
from .background import BackgroundConfig, build_background
from .renderer import NeRFRenderer, RendererConfig

FORMAT = "dreamfusion3d-nerf/1"


def build_renderer(field: FieldConfig, renderer: RendererConfig, background: BackgroundConfig) -> NeRFRenderer:
    return NeRFRenderer(renderer, build_field(field), build_background(background))


def save_nerf(folder: str | os.PathLike, renderer: NeRFRenderer, extra: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint folder atomically (a sibling temp folder renamed into place)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in renderer.state_dict().items()}
    meta = {
        "format": FORMAT,
        "field": to_dict(renderer.field.config),
        "renderer": to_dict(renderer.config),
        "background": to_dict(renderer.background.config),
        "extra": extra or {},
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save_file(tensors, str(tmp / "model.safetensors"))
        (tmp / "nerf.json").write_text(json.dumps(meta, indent=1))
        replace_folder(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder, or a run folder (``checkpoints/final``, else ``checkpoints/latest``)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"NeRF checkpoint {path} does not exist")
    for candidate in (path, path / "checkpoints" / "final", path / "checkpoints" / "latest"):
        if (candidate / "nerf.json").is_file():
            return candidate
    raise UserError(f"{path} is not a NeRF checkpoint (no nerf.json there or in checkpoints/final|latest)")


def load_nerf(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[NeRFRenderer, dict[str, Any]]:
    """Rebuild the renderer from its configs and load its tensors; returns ``(renderer, extra)``."""
    folder = resolve_checkpoint(path)
    try:
        meta = json.loads((folder / "nerf.json").read_text())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise UserError(f"NeRF checkpoint {folder} has an unknown format")
        tensors = load_file(str(folder / "model.safetensors"))
    except (json.JSONDecodeError, SafetensorError, OSError, UnicodeDecodeError) as exc:
        raise UserError(f"NeRF checkpoint {folder} is corrupt: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    renderer = build_renderer(
        from_dict(FieldConfig, meta.get("field", {}), f"{folder}/nerf.json:field"),
        from_dict(RendererConfig, meta.get("renderer", {}), f"{folder}/nerf.json:renderer"),
        from_dict(BackgroundConfig, meta.get("background", {}), f"{folder}/nerf.json:background"),
    )
    try:
        renderer.load_state_dict(tensors)
    except RuntimeError as exc:
        raise UserError(f"NeRF checkpoint {folder} does not match its config: {str(exc).splitlines()[0]}") from exc
    return renderer.to(device), meta.get("extra", {})
