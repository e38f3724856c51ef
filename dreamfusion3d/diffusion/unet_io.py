"""Pretrained-folder IO for the project's own UNet models (the bundled text prior, the novel-view
model): a diffusers-style folder ``unet/`` (config.json + safetensors), ``scheduler/`` and one
JSON file of the model's own metadata (its name differs per model, so a folder says what it is)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch

from ..utils.errors import UserError
from ..utils.io import write_json_atomic


def save_unet_folder(folder: str | Path, unet: torch.nn.Module, scheduler, meta_name: str, meta: dict[str, Any],
                     fp16: bool = False) -> Path:
    """Write ``unet/`` (a half-precision copy with ``fp16``), ``scheduler/`` and ``meta_name``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (copy.deepcopy(unet).half() if fp16 else unet).save_pretrained(folder / "unet", safe_serialization=True)
    scheduler.save_pretrained(folder / "scheduler")
    write_json_atomic(folder / meta_name, meta)
    return folder


def read_unet_meta(folder: Path, meta_name: str, what: str) -> dict[str, Any]:
    """The metadata JSON of a model folder; a folder without it is not a ``what`` folder."""
    path = folder / meta_name
    if not path.is_file():
        raise UserError(f"{folder} is not a {what} folder (no {meta_name})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"cannot load the {what} from {folder}: {str(exc).splitlines()[0]}") from exc


def load_unet_parts(folder: Path, what: str, dtype: torch.dtype = torch.float32):
    """``(unet, scheduler)`` of a folder written by :func:`save_unet_folder`, errors as one line."""
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from . import cpu_bfloat16  # imports diffusers' ResNet block: as lazily as diffusers

    try:
        # low_cpu_mem_usage=False: the models are small, and it skips diffusers' nag about `accelerate`
        unet = UNet2DConditionModel.from_pretrained(folder / "unet", use_safetensors=True, torch_dtype=dtype,
                                                    low_cpu_mem_usage=False)
        scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot load the {what} from {folder}: {str(exc).splitlines()[0]}") from exc
    if dtype == torch.bfloat16:  # oneDNN's fast bfloat16 convolutions want channels-last
        unet.to(memory_format=torch.channels_last)
        cpu_bfloat16.speed_up(unet)  # and two layers that are slow in bfloat16 get stand-ins
    return unet, scheduler
