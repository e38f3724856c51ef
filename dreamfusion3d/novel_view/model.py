"""The pose-conditioned image-to-image diffusion model (3DiM / Zero-1-to-3 at toy scale).

A diffusers ``UNet2DConditionModel`` without cross-attention blocks. Its input is the noisy
target view concatenated with the clean source view (6 channels; 18 with per-pixel ray maps of
both cameras); the camera pair enters as ``class_labels`` through the UNet's ``projection`` class
embedding, added to the time embedding and applied as scale/shift in every ResNet block.
Classifier-free guidance drops the source view and pose together (both zero).

Folder layout (diffusers-style): ``unet/`` (config.json + safetensors), ``scheduler/`` (DDPM) and
``novel_view.json`` (resolution, canonical input camera, object framing, training info).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..diffusion.unet_io import load_unet_parts, read_unet_meta, save_unet_folder
from ..utils.errors import UserError
from .pose import POSE_FEATURES, pose_features, ray_maps

SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "assets" / "novel_view"
META_NAME = "novel_view.json"


@dataclass
class NovelViewArchitecture:
    """Size of the novel-view UNet."""

    resolution: int = 32
    """Image size (pixels) the model works at."""
    block_out_channels: tuple[int, ...] = (32, 64, 128)
    """Channels per UNet level."""
    layers_per_block: int = 1
    """ResNet blocks per down level (up levels get one more)."""
    norm_num_groups: int = 8
    """GroupNorm groups."""
    ray_conditioning: bool = False
    """Also feed per-pixel ray origins/directions of both cameras (12 extra input channels)."""
    num_train_timesteps: int = 1000
    """DDPM steps."""
    beta_schedule: str = "squaredcos_cap_v2"
    """DDPM beta schedule (diffusers name)."""
    prediction_type: str = "v_prediction"
    """What the UNet predicts: "epsilon" (the noise) or "v_prediction" (v = √ᾱ ε − √(1−ᾱ) x0, the same
    DDPM objective reparametrised; its x0 estimates stay usable at high noise, which short CPU
    training runs need for sampling)."""


@dataclass
class CameraPrior:
    """What the model assumes about cameras it was trained with (used for user images)."""

    azimuth: float = 0.0
    elevation: float = 20.0
    radius: float = 3.0
    fov_y_deg: float = 40.0
    object_fraction: float = 0.5
    """Typical size of the object's bounding box as a fraction of the image side."""


class NovelViewModel(nn.Module):
    """Denoising UNet for p(target view | source view, camera pair); images in [-1, 1]."""

    def __init__(self, unet, scheduler, arch: NovelViewArchitecture, camera: CameraPrior | None = None,
                 info: dict | None = None):
        super().__init__()
        self.unet = unet
        self.scheduler = scheduler
        self.arch = arch
        self.camera = camera or CameraPrior()
        self.info = dict(info or {})
        self._cross_dim = int(unet.config.cross_attention_dim)  # unused (no cross-attention), but required

    @property
    def resolution(self) -> int:
        return self.arch.resolution

    @classmethod
    def from_architecture(cls, arch: NovelViewArchitecture, camera: CameraPrior | None = None) -> "NovelViewModel":
        from diffusers import DDPMScheduler, UNet2DConditionModel

        n = len(arch.block_out_channels)
        unet = UNet2DConditionModel(
            sample_size=arch.resolution,
            in_channels=6 + (12 if arch.ray_conditioning else 0),
            out_channels=3,
            down_block_types=("DownBlock2D",) * n,
            up_block_types=("UpBlock2D",) * n,
            mid_block_type="UNetMidBlock2D",
            block_out_channels=tuple(arch.block_out_channels),
            layers_per_block=arch.layers_per_block,
            norm_num_groups=arch.norm_num_groups,
            class_embed_type="projection",
            projection_class_embeddings_input_dim=POSE_FEATURES,
            resnet_time_scale_shift="scale_shift",
            cross_attention_dim=8,
            attention_head_dim=8,
        )
        if arch.prediction_type not in ("epsilon", "v_prediction"):
            raise UserError(f"prediction_type must be 'epsilon' or 'v_prediction', got {arch.prediction_type!r}")
        # No x0 clipping when sampling (as for the text prior): +0.2 dB PSNR on held-out objects
        # with v-prediction, and it keeps ε-prediction models from saturating (docs/RESULTS.md).
        scheduler = DDPMScheduler(num_train_timesteps=arch.num_train_timesteps, beta_schedule=arch.beta_schedule,
                                  clip_sample=False, prediction_type=arch.prediction_type)
        return cls(unet, scheduler, arch, camera)

    @classmethod
    def from_pretrained(cls, folder: str | Path | None = None, device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float32) -> "NovelViewModel":
        """Load a folder written by :meth:`save_pretrained` (None = the shipped weights)."""
        folder = Path(folder) if folder is not None else SHIPPED_MODEL
        meta = read_unet_meta(folder, META_NAME, "novel-view model")
        try:
            arch = NovelViewArchitecture(**{**meta["architecture"],
                                            "block_out_channels": tuple(meta["architecture"]["block_out_channels"])})
            camera = CameraPrior(**meta.get("camera", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"cannot load the novel-view model from {folder}: {str(exc).splitlines()[0]}") from exc
        unet, scheduler = load_unet_parts(folder, "novel-view model", dtype)
        model = cls(unet, scheduler, arch, camera, meta.get("info"))
        return model.to(device).eval()

    def save_pretrained(self, folder: str | Path, fp16: bool = False, info: dict | None = None) -> None:
        """The folder layout of :mod:`~dreamfusion3d.diffusion.unet_io`; ``info`` joins the model's training info."""
        arch = asdict(self.arch)
        arch["block_out_channels"] = list(arch["block_out_channels"])
        meta = {"architecture": arch, "camera": asdict(self.camera), "info": {**self.info, **(info or {})},
                "pose_encoding": "[d_el, sin d_az, cos d_az, d_r] + sin/cos(2,3 d_az) + src_el (radians)",
                "image_space": "x = 2 * rgb - 1, composited over white"}
        save_unet_folder(folder, self.unet, self.scheduler, META_NAME, meta, fp16)

    def condition(self, source: Tensor, src_sph: Tensor, tgt_sph: Tensor) -> tuple[Tensor, Tensor]:
        """Network inputs for camera pairs: (extra input channels [B,C,H,W], pose vector [B,F]).

        ``source`` is the clean source view in [-1, 1] ``[B, 3, H, W]``; the cameras are
        (azimuth_deg, elevation_deg, radius) rows ``[B, 3]``.
        """
        pose = pose_features(src_sph, tgt_sph).to(source.dtype)
        channels = source
        if self.arch.ray_conditioning:
            h = source.shape[-1]
            fov = self.camera.fov_y_deg
            rays = torch.cat([ray_maps(src_sph.float(), fov, h), ray_maps(tgt_sph.float(), fov, h)], 1)
            channels = torch.cat([source, rays.to(source.dtype)], dim=1)
        return channels, pose

    def forward(self, x_t: Tensor, t: Tensor, cond_channels: Tensor, pose: Tensor) -> Tensor:
        """ε̂ (or v̂, see ``arch.prediction_type``) for noisy targets ``x_t [B,3,H,W]`` at timesteps ``t [B]`` given :meth:`condition`'s output."""
        dtype = next(self.unet.parameters()).dtype
        inp = torch.cat([x_t, cond_channels], dim=1).to(dtype)
        states = torch.zeros(x_t.shape[0], 1, self._cross_dim, dtype=dtype, device=x_t.device)
        out = self.unet(inp, t, encoder_hidden_states=states, class_labels=pose.to(dtype)).sample
        return out.to(x_t.dtype)


def drop_condition(cond_channels: Tensor, pose: Tensor, drop: Tensor) -> tuple[Tensor, Tensor]:
    """Zero the source view (its 3 image channels; ray maps are kept) and the pose where
    ``drop [B]`` is True: the unconditional branch of classifier-free guidance."""
    keep = (~drop).to(cond_channels.dtype)
    cond = cond_channels.clone()
    cond[:, :3] = cond[:, :3] * keep.view(-1, 1, 1, 1)
    return cond, pose * keep.view(-1, 1)
