"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is a folder holding ``tensors.safetensors`` (model weights under ``<name>.``, optimizer
moments under ``optim.<group>.<param>.<key>``, RNG states as uint8 tensors: ``rng.<name>`` for
named generators, ``rng_global.torch`` / ``rng_global.cuda`` for the process-wide CPU generator and
the CUDA generator of the run's device, which nerfacc's CUDA sampler draws from) and ``state.json``
(step counters, optimizer hyper-parameters, anything JSON-able). Folders are written beside the
target and renamed into place, so a killed run keeps its previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import UserError
from .io import staged_folder
from .logging import warn


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
    for param, param_state in optimizer.state.items():  # saved contiguous: back in the parameter's layout
        for key, value in param_state.items():
            if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                param_state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def global_rng_states(device: torch.device | str | None) -> dict[str, torch.Tensor]:
    """The process-wide generators: the CPU one, plus the CUDA one of ``device`` when it is a GPU."""
    states = {"torch": torch.get_rng_state()}
    if device is not None and torch.device(device).type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(torch.device(device))
    return states


def restore_global_rng_states(tensors: dict[str, torch.Tensor], device: torch.device | str | None,
                              where: str = "checkpoint") -> None:
    """Inverse of :func:`global_rng_states` (keys ``rng_global.*`` of a checkpoint's tensors); a
    CUDA state that cannot be restored, or a missing one on a GPU, is one warning: the run goes on
    but is not bit-identical to an uninterrupted one."""
    if "rng_global.torch" in tensors:
        torch.set_rng_state(tensors["rng_global.torch"])
    on_cuda = device is not None and torch.device(device).type == "cuda"
    if on_cuda and "rng_global.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng_global.cuda"], torch.device(device))
    elif on_cuda or "rng_global.cuda" in tensors:
        saved = "a CUDA" if "rng_global.cuda" in tensors else "no CUDA"
        warn(f"{where} holds {saved} RNG state but this run is on {device}: the resumed run will not be "
             "bit-identical to an uninterrupted one")


def save_checkpoint(
    folder: str | os.PathLike,
    modules: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer | None = None,
    generators: dict[str, torch.Generator] | None = None,
    state: dict[str, Any] | None = None,
    global_rng: torch.device | str | None = None,
    staged: bool = True,
) -> Path:
    """Write the checkpoint folder; ``global_rng``: the run's device, whose process-wide RNG
    states (CPU, and CUDA on a GPU) are saved too (None: not saved). ``staged``: written into a
    sibling folder that is then swapped in (:func:`~dreamfusion3d.utils.io.staged_folder`), so a
    killed run keeps its previous checkpoint; False: straight into ``folder`` (a caller that
    stages a larger folder itself)."""
    folder = Path(folder)
    if staged:
        with staged_folder(folder) as tmp:
            save_checkpoint(tmp, modules, optimizer, generators, state, global_rng, staged=False)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
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
    if global_rng is not None:
        tensors.update({f"rng_global.{k}": v for k, v in global_rng_states(global_rng).items()})
    save_file(tensors, str(folder / "tensors.safetensors"))
    (folder / "state.json").write_text(json.dumps(meta, indent=1))
    return folder


def load_checkpoint(
    folder: str | os.PathLike,
    modules: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer | None = None,
    generators: dict[str, torch.Generator] | None = None,
    global_rng: torch.device | str | None = None,
) -> dict[str, Any]:
    """Restore modules/optimizer/generators (and, with ``global_rng`` = the run's device, the
    process-wide RNG states) in place; returns the JSON ``state``."""
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
    if global_rng is not None and any(k.startswith("rng_global.") for k in tensors):
        restore_global_rng_states(tensors, global_rng, where=f"checkpoint {folder}")
    return meta["state"]
