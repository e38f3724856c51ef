"""Finding and loading diffusers/transformers components safely and with one-line errors.

A model is a local folder (loaded with ``local_files_only``) or a Hugging Face hub id. Only
safetensors weights are accepted and no repository code is ever executed.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..utils.errors import UserError
from ..utils.logging import warn

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# diffusers warns on every load when asked for low-memory loading without accelerate
LOW_CPU_MEM = importlib.util.find_spec("accelerate") is not None
LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, json.JSONDecodeError, AttributeError)


def resolve_model(model: str, what: str, required: Sequence[str | tuple[str, ...]]) -> tuple[str, bool]:
    """Return ``(source, local)``. A local folder must contain each ``required`` relative path
    (a tuple means "any of these"); otherwise one clear line says what is missing."""
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{what} model {path} is a file, not a model folder")
        for item in required:
            options = (item,) if isinstance(item, str) else tuple(item)
            if not any((path / o).exists() for o in options):
                raise UserError(f"model folder {path} has no {' or '.join(options)} (is it a diffusers {what} folder?)")
        return str(path), True
    if _HUB_ID.match(model) and not model.startswith((".", "~")):
        return model, False
    raise UserError(f"{what} model folder {model} does not exist (give a local folder or a hub id like org/name)")


def load_component(what: str, source: str, local: bool, loader: Callable[..., Any], **kwargs) -> Any:
    """``loader(source, **kwargs)`` with hub/offline/malformed-folder failures as one line."""
    try:
        return loader(source, local_files_only=local, **kwargs)
    except LOAD_ERRORS as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"model folder {source}" if local else f"hub model {source} (no internet or not cached?)"
        raise UserError(f"cannot load {what} from {where}: {first}") from exc


def load_latent_diffusion(config: Any, device: torch.device, what: str, layout: Sequence[str | tuple[str, ...]]):
    """The parts every latent-diffusion folder has: ``(source, local, dtype, unet, vae, scheduler)``
    (UNet and VAE in the config's precision, the training DDPM scheduler)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    dtype = resolve_dtype(config.dtype, device)
    source, local = resolve_model(config.resolved_model(), what, layout)
    common = dict(torch_dtype=dtype, use_safetensors=True, variant=config.variant, low_cpu_mem_usage=LOW_CPU_MEM)
    unet = load_component("unet", source, local, UNet2DConditionModel.from_pretrained, subfolder="unet", **common)
    vae = load_component("vae", source, local, AutoencoderKL.from_pretrained, subfolder="vae", **common)
    scheduler = load_component("scheduler", source, local, DDPMScheduler.from_pretrained, subfolder="scheduler")
    return source, local, dtype, unet, vae, scheduler


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """"auto" = float16 on CUDA, float32 elsewhere (half precision on CPU is slow and lossy)."""
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    table = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in table:
        raise UserError(f"unknown dtype {dtype!r}; choose auto, float32, float16 or bfloat16")
    return table[dtype]


def cpu_has_amx() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (Intel AMX tiles)."""
    try:
        return bool(torch.cpu._is_amx_tile_supported())  # a private probe: absent from some builds
    except (AttributeError, RuntimeError):
        return False


def resolve_pixel_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The dtype of the project's own small pixel-space UNets (bundled prior, novel-view model):
    as :func:`resolve_dtype`, except that "auto" is bfloat16 on a CPU with AMX, where oneDNN's
    bfloat16 convolutions (channels-last, see ``diffusion.unet_io``) take about 0.6× the float32
    time at 32 px and the ε prediction moves by under 1 % (relative L2; docs/RESULTS.md, Speed,
    ``scripts/bench_step_levers.py``). Without AMX bfloat16 is slower: float32."""
    if dtype == "auto" and device.type == "cpu" and cpu_has_amx():
        return torch.bfloat16
    return resolve_dtype(dtype, device)


def freeze(*modules: torch.nn.Module) -> None:
    for m in modules:
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)


def apply_memory_options(unet: torch.nn.Module, attention_slicing: bool, channels_last: bool) -> None:
    if attention_slicing:
        unet.set_attention_slice("auto")
    if channels_last:
        unet.to(memory_format=torch.channels_last)


def enable_cpu_offload(modules: Sequence[torch.nn.Module], device: torch.device) -> bool:
    """Keep models on the CPU and move each to the GPU only while it runs (needs accelerate and
    CUDA). Returns whether offloading is active."""
    if device.type != "cuda":
        warn("cpu_offload only applies on a CUDA device; ignored")
        return False
    try:
        from accelerate import cpu_offload_with_hook
    except ImportError as exc:
        raise UserError("cpu_offload needs the package accelerate (pip install accelerate)") from exc
    hook = None
    for m in modules:
        m.to("cpu")
        _, hook = cpu_offload_with_hook(m, device, prev_module_hook=hook)
    return True


def text_encoder_rest(device: torch.device, offloaded: bool) -> torch.device | None:
    """Where a large text encoder waits between encodings: the CPU when the prior runs on a GPU
    (its embeddings are cached, so it is needed only for new prompts); None (stay) on a CPU or
    when accelerate's offload hooks already move it."""
    return torch.device("cpu") if device.type == "cuda" and not offloaded else None
