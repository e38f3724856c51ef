"""The registry of 3D representations and their checkpoints.

A checkpoint folder holds ``model.safetensors`` (the representation's ``state_dict``) and
``representation.json`` (its kind, its config sections and the caller's ``extra``). No pickle;
loading never executes code. Folders written by earlier versions (``nerf.json``) still load.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..utils.config import from_dict, to_dict
from ..utils.errors import UserError
from ..utils.io import staged_folder
from .base import Representation
from .nerf import NeRF
from .sdf import SDFGeometry

# One line per representation: its name (``--geometry NAME``) and its class.
REGISTRY: dict[str, type[Representation]] = {
    NeRF.kind: NeRF,
    SDFGeometry.kind: SDFGeometry,
}

FORMAT = "dreamfusion3d-representation/1"
META = "representation.json"
LEGACY_META, LEGACY_FORMAT = "nerf.json", "dreamfusion3d-nerf/1"


def representation_class(kind: str) -> type[Representation]:
    if kind not in REGISTRY:
        raise UserError(f"unknown geometry {kind!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[kind]


def build_representation(kind: str, config: Any) -> Representation:
    """Build ``kind`` from the config sections it declares, read as attributes of ``config``
    (e.g. a ``GenerateConfig`` with ``field``, ``renderer``, ``background``, ``sdf``)."""
    cls = representation_class(kind)
    return cls.from_sections({name: getattr(config, name) for name in cls.sections})


def save_representation(folder: str | os.PathLike, rep: Representation, extra: dict[str, Any] | None = None,
                        staged: bool = True) -> Path:
    """Write ``model.safetensors`` and ``representation.json``: into a staged sibling folder swapped
    into place (``staged``), or straight into ``folder`` (a caller that stages a larger folder)."""
    folder = Path(folder)
    if staged:
        with staged_folder(folder) as tmp:
            save_representation(tmp, rep, extra, staged=False)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in rep.state_dict().items()}
    meta = {"format": FORMAT, "kind": rep.kind,
            "sections": {name: to_dict(cfg) for name, cfg in rep.section_configs().items()}, "extra": extra or {}}
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / META).write_text(json.dumps(meta, indent=1))
    return folder


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder, or a run folder (``checkpoints/final``, else ``checkpoints/latest``)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist")
    for candidate in (path, path / "checkpoints" / "final", path / "checkpoints" / "latest"):
        if is_checkpoint(candidate):
            return candidate
    raise UserError(f"{path} is not a checkpoint (no {META} there or in checkpoints/final|latest)")


def _read_meta(folder: Path) -> dict[str, Any]:
    if (folder / META).is_file():
        meta = json.loads((folder / META).read_text())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise UserError(f"checkpoint {folder} has an unknown format")
        return meta
    meta = json.loads((folder / LEGACY_META).read_text())
    if not isinstance(meta, dict) or meta.get("format") != LEGACY_FORMAT:
        raise UserError(f"checkpoint {folder} has an unknown format")
    return {"kind": NeRF.kind, "sections": {k: meta.get(k, {}) for k in NeRF.sections}, "extra": meta.get("extra", {})}


def load_representation(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Representation, dict[str, Any]]:
    """Rebuild the representation from its config sections and load its tensors; ``(rep, extra)``."""
    folder = resolve_checkpoint(path)
    try:
        meta = _read_meta(folder)
        tensors = load_file(str(folder / "model.safetensors"))
    except (json.JSONDecodeError, SafetensorError, OSError, UnicodeDecodeError) as exc:
        raise UserError(f"checkpoint {folder} is corrupt: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    cls = representation_class(str(meta.get("kind")))
    stored = meta.get("sections", {})
    sections = {name: from_dict(typ, stored.get(name, {}), f"{folder}/{META}:{name}") for name, typ in cls.sections.items()}
    rep = cls.from_sections(sections)
    try:
        rep.load_state_dict(tensors)
    except RuntimeError as exc:
        raise UserError(f"checkpoint {folder} does not match its config: {str(exc).splitlines()[0]}") from exc
    return rep.to(device), meta.get("extra", {})


def load_weights(folder: str | os.PathLike, rep: Representation) -> None:
    """Load a checkpoint folder's ``model.safetensors`` into an already built ``rep``."""
    path = Path(folder) / "model.safetensors"
    try:
        rep.load_state_dict(load_file(str(path)))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"checkpoint {folder} is corrupt: {str(exc).splitlines()[0]}") from exc
    except RuntimeError as exc:
        raise UserError(f"checkpoint {folder} does not match the run's config: {str(exc).splitlines()[0]}") from exc


def is_checkpoint(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a representation checkpoint (of this version or an earlier one)."""
    folder = Path(folder)
    return (folder / META).is_file() or (folder / LEGACY_META).is_file()


def checkpoint_extra(path: str | os.PathLike) -> dict[str, Any]:
    """The caller's ``extra`` record of a checkpoint (or a run's final/latest one)."""
    folder = resolve_checkpoint(path)
    try:
        extra = _read_meta(folder).get("extra", {})
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as exc:
        raise UserError(f"checkpoint {folder} is corrupt: {exc}") from exc
    return extra if isinstance(extra, dict) else {}
