"""Zero-1-to-3-family weights as an image-conditioned SDS prior (latent space, diffusers parts).

Folder layout (hub or local) of the diffusers community Zero1to3 pipeline: ``vae/``
(AutoencoderKL), ``image_encoder/`` (CLIPVisionModelWithProjection), ``unet/``
(UNet2DConditionModel with 8 input channels), ``cc_projection/`` (a Linear 772 → 768 stored as
safetensors ``projection.weight``/``projection.bias``), ``scheduler/``, ``feature_extractor/``
(CLIPImageProcessor: input size, mean and std).

Conditioning of one view, as the pipeline builds it:

* cross-attention: the CLIP image embedding of the reference ``[1, 768]`` concatenated with the
  relative camera ``[Δpolar = el_src − el_tgt (rad), sin Δaz, cos Δaz, Δradius]`` and projected by
  ``cc_projection`` back to 768;
* input channels: the VAE latent (posterior mode, unscaled, as Zero-1-to-3 was trained) of the
  reference, concatenated with the noisy latent (4 + 4 = 8 channels).

The unconditional branch zeroes both, as Zero-1-to-3's classifier-free guidance does. Renders are
encoded like Stable Diffusion's (:class:`StableDiffusionPrior`, whose VAE code this reuses).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..utils.errors import UserError
from .base import Condition
from .config import PriorConfig
from .loading import apply_memory_options, enable_cpu_offload, freeze, load_component, load_latent_diffusion
from .stable_diffusion import StableDiffusionPrior

ZERO123_LAYOUT = (
    "unet/config.json",
    "vae/config.json",
    "image_encoder/config.json",
    "cc_projection/diffusion_pytorch_model.safetensors",
    "scheduler/scheduler_config.json",
    "feature_extractor/preprocessor_config.json",
)


def relative_camera(source: Tensor, target: Tensor) -> Tensor:  # [B, 3] x2 -> [B, 4]
    """Zero-1-to-3's pose code: [Δpolar (rad), sin Δaz, cos Δaz, Δradius], polar = 90° − elevation."""
    d_polar = torch.deg2rad(source[:, 1] - target[:, 1])
    d_az = torch.deg2rad(target[:, 0] - source[:, 0])
    return torch.stack([d_polar, torch.sin(d_az), torch.cos(d_az), target[:, 2] - source[:, 2]], dim=-1)


def _fetch(source: str, local: bool, subfolder: str, name: str) -> str:
    if local:
        return str(Path(source) / subfolder / name)
    from huggingface_hub import hf_hub_download

    return hf_hub_download(source, name, subfolder=subfolder)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def load_cc_projection(source: str, local: bool, dtype: torch.dtype) -> torch.nn.Linear:
    """The ``cc_projection`` Linear from ``cc_projection/diffusion_pytorch_model.safetensors``."""
    from safetensors.torch import load_file

    try:
        state = load_file(_fetch(source, local, "cc_projection", "diffusion_pytorch_model.safetensors"))
        weight, bias = state["projection.weight"], state.get("projection.bias")
    except Exception as exc:  # missing file, offline hub, wrong keys
        raise UserError(f"cannot load cc_projection from {source}: {_first_line(exc)}") from exc
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer.to(dtype)


def load_image_preprocessing(source: str, local: bool) -> tuple[int, list[float], list[float]]:
    """(input size, mean, std) of the CLIP image encoder from ``feature_extractor/preprocessor_config.json``
    (applied to tensors here, so renders need no PIL round trip)."""
    try:
        cfg = json.loads(Path(_fetch(source, local, "feature_extractor", "preprocessor_config.json")).read_text())
        crop = cfg.get("crop_size", 224)
        size = int(crop.get("height", 224) if isinstance(crop, dict) else crop)
        return size, [float(v) for v in cfg["image_mean"]], [float(v) for v in cfg["image_std"]]
    except Exception as exc:
        raise UserError(f"cannot read feature_extractor/preprocessor_config.json of {source}: {_first_line(exc)}") from exc


class Zero123Prior(StableDiffusionPrior):
    name = "zero123"
    conditioning = "image"

    def __init__(self, unet, vae, image_encoder, cc_projection, scheduler, image_size: int,
                 image_mean: list[float], image_std: list[float], device: torch.device | str = "cpu",
                 vae_resolution: int = 256, guidance_scale: float | None = None):
        super().__init__(unet, vae, image_encoder, None, scheduler, device, vae_resolution, guidance_scale)
        self.image_encoder, self.cc_projection, self.text_encoder = image_encoder, cc_projection, None
        self.image_size = int(image_size)
        self.image_mean = torch.tensor(image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.image_std = torch.tensor(image_std, dtype=torch.float32).view(1, 3, 1, 1)
        self.pose_dims = int(cc_projection.in_features) - int(image_encoder.config.projection_dim)
        if self.pose_dims != 4:
            raise UserError(f"cc_projection takes {cc_projection.in_features} features, expected the image "
                            f"embedding ({image_encoder.config.projection_dim}) + 4 pose values")
        if int(unet.config.in_channels) != 2 * int(vae.config.latent_channels):
            raise UserError(f"a Zero-1-to-3 UNet takes noisy + reference latents ({2 * vae.config.latent_channels} "
                            f"channels), this one {unet.config.in_channels}")
        freeze(cc_projection)

    @classmethod
    def from_config(cls, config: PriorConfig, device: torch.device | str = "cpu") -> "Zero123Prior":
        from transformers import CLIPVisionModelWithProjection

        device = torch.device(device)
        source, local, dtype, unet, vae, scheduler = load_latent_diffusion(config, device, "Zero-1-to-3", ZERO123_LAYOUT)
        encoder = load_component("image_encoder", source, local, CLIPVisionModelWithProjection.from_pretrained,
                                 subfolder="image_encoder", dtype=dtype, use_safetensors=True, variant=config.variant)
        size, mean, std = load_image_preprocessing(source, local)
        projection = load_cc_projection(source, local, dtype)
        apply_memory_options(unet, config.attention_slicing, config.channels_last)
        offloaded = config.cpu_offload and enable_cpu_offload([encoder, unet, vae], device)
        if not offloaded:
            for m in (unet, vae, encoder):
                m.to(device)
        return cls(unet, vae, encoder, projection.to(device), scheduler, size, mean, std, device,
                   config.vae_resolution).configure(config)

    def _encode_text(self, prompts: list[str]) -> Tensor:
        raise UserError("Zero-1-to-3 weights are conditioned on an image and a camera, not on text (give --image)")

    def latent_shape(self, batch_size: int) -> tuple[int, ...]:
        side = self.vae_resolution // self.vae_scale
        return (batch_size, int(self.vae.config.latent_channels), side, side)

    @torch.no_grad()
    def encode_image(self, image: Tensor) -> dict[str, Tensor]:
        """CLIP image embedding ``[1, 1, D]`` and the unscaled VAE latent mode of the reference."""
        image = image.float().to(self.device)
        clip_in = F.interpolate(image, size=(self.image_size, self.image_size), mode="bilinear",
                                align_corners=False, antialias=True)
        clip_in = (clip_in - self.image_mean.to(self.device)) / self.image_std.to(self.device)
        embeds = self.image_encoder(clip_in.to(self.image_encoder.dtype)).image_embeds.float()[:, None]
        size = self.vae_resolution
        x = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        latent = self.vae.encode((2.0 * x - 1.0).to(self.vae.dtype)).latent_dist.mode().float()
        return {"clip": embeds, "latent": latent}

    def image_condition(self, features: dict[str, Tensor], source: Tensor,
                        target: Tensor) -> tuple[Condition, Condition]:
        b = target.shape[0]
        pose = relative_camera(source.float(), target.float())[:, None]  # [B, 1, 4]
        clip = features["clip"].expand(b, -1, -1)
        weight = self.cc_projection.weight
        hidden = self.cc_projection(torch.cat([clip, pose], dim=-1).to(weight.device, weight.dtype)).float()
        latent = features["latent"].expand(b, -1, -1, -1)
        cond = {"hidden": hidden, "latent": latent}
        return cond, {"hidden": torch.zeros_like(hidden), "latent": torch.zeros_like(latent)}

    def _model_output(self, z_t: Tensor, t: Tensor, emb: Condition) -> Tensor:
        x = torch.cat([z_t, emb["latent"].to(z_t.dtype)], dim=1).to(self.dtype)
        return self.unet(x, t, encoder_hidden_states=emb["hidden"].to(self.dtype)).sample

