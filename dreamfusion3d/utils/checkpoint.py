"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is a folder holding ``tensors.safetensors`` (model weights under ``<name>.``, optimizer
moments under ``optim.<group>.<param>.<key>``, RNG states as uint8 tensors) and ``state.json``
(step counters, optimizer hyper-parameters, anything JSON-able). Folders are written beside the
target and renamed into place, so a killed run keeps its previous checkpoint intact.
"""

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
from torch import nn

from .errors import UserError
from .io import replace_folder


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, extra in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(extra)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    folder: str | os.PathLike,
    modules: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer | None = None,
    generators: dict[str, torch.Generator] | None = None,
    state: dict[str, Any] | None = None,
) -> Path:
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().cpu().contiguous()
    meta: dict[str, Any] = {"state": state or {}, "modules": list(modules)}
    if optimizer is not None:
        opt_tensors, meta["optimizer"] = _optimizer_tensors(optimizer)
        tensors.update(opt_tensors)
    for name, gen in (generators or {}).items():
        tensors[f"rng.{name}"] = gen.get_state()
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save_file(tensors, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))
        replace_folder(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


def load_checkpoint(
    folder: str | os.PathLike,
    modules: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer | None = None,
    generators: dict[str, torch.Generator] | None = None,
) -> dict[str, Any]:
    """Restore modules/optimizer/generators in place; returns the JSON ``state``."""
    folder = Path(folder)
    if not (folder / "state.json").is_file() or not (folder / "tensors.safetensors").is_file():
        raise UserError(f"{folder} is not a checkpoint (expected state.json and tensors.safetensors)")
    try:
        meta = json.loads((folder / "state.json").read_text())
        tensors = load_file(str(folder / "tensors.safetensors"))
    except (json.JSONDecodeError, SafetensorError, OSError) as exc:
        raise UserError(f"checkpoint {folder} is corrupt: {str(exc).splitlines()[0]}") from exc
    for name, module in modules.items():
        prefix = f"{name}."
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(sd)
        except RuntimeError as exc:
            raise UserError(f"checkpoint {folder} does not match the model ({name}): {str(exc).splitlines()[0]}") from exc
    if optimizer is not None and "optimizer" in meta:
        _restore_optimizer(optimizer, tensors, meta["optimizer"])
    for name, gen in (generators or {}).items():
        if f"rng.{name}" in tensors:
            gen.set_state(tensors[f"rng.{name}"])
    return meta["state"]
