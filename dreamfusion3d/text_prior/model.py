"""The bundled text-conditioned pixel-space diffusion model.

A diffusers ``UNet2DConditionModel`` with no cross-attention blocks: the sentence embedding of
the caption enters through ``class_labels`` (a learned projection added to the time embedding),
which at 32 px costs half of what cross-attention does (measured in docs/RESULTS.md). The folder
layout is diffusers-style: ``unet/`` (config.json + safetensors), ``scheduler/`` and
``prior.json`` (resolution and the text encoder it was trained with).

Sentence embeddings of captions are unit vectors that share most of their direction (cosine 0.97
between captions that differ only in the view word; entries ≈ 0.05), so their differences are tiny
inputs to the projection.
Training therefore centres them and scales them to unit RMS (:meth:`TextPriorModel.set_text_normalisation`);
the affine map is folded into the projection's first layer on save, so a saved model takes raw
embeddings and its folder format does not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..diffusion.unet_io import load_unet_parts, read_unet_meta, save_unet_folder
from ..utils.errors import UserError
from .text_encoder import BUNDLED_ENCODER

SHIPPED_PRIOR = Path(__file__).resolve().parents[1] / "assets" / "text_prior"
META_NAME = "prior.json"


@dataclass
class TextPriorArchitecture:
    """Size of the bundled prior's UNet."""

    resolution: int = 32
    """Image size the model is trained at."""
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    """Channels per UNet level."""
    layers_per_block: int = 2
    """ResNet blocks per level."""
    norm_num_groups: int = 8
    """GroupNorm groups."""
    text_dim: int = 384
    """Size of the sentence embedding (384 for all-MiniLM-L6-v2)."""
    num_train_timesteps: int = 1000
    """DDPM steps."""
    beta_schedule: str = "squaredcos_cap_v2"
    """DDPM beta schedule (diffusers name)."""


class TextPriorModel(nn.Module):
    """ε-prediction UNet conditioned on a sentence embedding; inputs in [-1, 1]."""

    def __init__(self, unet, scheduler, resolution: int, text_encoder_id: str = BUNDLED_ENCODER):
        super().__init__()
        self.unet = unet
        self.scheduler = scheduler
        self.resolution = resolution
        self.text_encoder_id = text_encoder_id
        # The UNet's signature insists on encoder states; with no cross-attention they are unused.
        self._cross_dim = int(unet.config.cross_attention_dim)
        self.text_mean: Tensor | None = None  # [D] centre of the training captions' embeddings
        self.text_scale: float = 1.0  # 1 / RMS of the centred embeddings

    def set_text_normalisation(self, mean: Tensor, scale: float) -> None:
        """Feed ``(emb - mean) * scale`` to the projection from now on, without changing the
        model's function: the inverse map is folded into the projection's first layer."""
        if self.text_mean is not None:
            raise ValueError("text normalisation is already set")
        layer = self.unet.class_embedding.linear_1
        with torch.no_grad():
            mean = mean.to(layer.weight)
            # W x + b = (W / s) (s (x - m)) + (b + W m)
            layer.bias.add_(layer.weight @ mean)
            layer.weight.div_(scale)
        self.text_mean = mean.clone()
        self.text_scale = float(scale)

    def _folded_unet(self):
        """A copy of the UNet that takes raw embeddings (normalisation folded into its weights)."""
        import copy

        unet = copy.deepcopy(self.unet)
        if self.text_mean is not None:
            layer = unet.class_embedding.linear_1
            with torch.no_grad():
                layer.weight.mul_(self.text_scale)
                layer.bias.sub_(layer.weight @ self.text_mean.to(layer.weight))
        return unet

    @classmethod
    def from_architecture(cls, arch: TextPriorArchitecture, text_encoder_id: str = BUNDLED_ENCODER) -> "TextPriorModel":
        from diffusers import DDPMScheduler, UNet2DConditionModel

        n = len(arch.block_out_channels)
        unet = UNet2DConditionModel(
            sample_size=arch.resolution,
            in_channels=3,
            out_channels=3,
            down_block_types=("DownBlock2D",) * n,
            up_block_types=("UpBlock2D",) * n,
            mid_block_type="UNetMidBlock2D",
            block_out_channels=tuple(arch.block_out_channels),
            layers_per_block=arch.layers_per_block,
            norm_num_groups=arch.norm_num_groups,
            class_embed_type="projection",
            projection_class_embeddings_input_dim=arch.text_dim,
            cross_attention_dim=8,
            attention_head_dim=8,
        )
        # No x0 clipping when sampling: with this schedule sqrt(alpha_bar) is 0.03 at t=980, so early x0
        # estimates are huge and clipping them to [-1, 1] drives samples to saturated, frame-filling
        # blobs (measured: shape accuracy 0.41 with clipping, 0.86 without; docs/RESULTS.md).
        scheduler = DDPMScheduler(num_train_timesteps=arch.num_train_timesteps, beta_schedule=arch.beta_schedule,
                                  clip_sample=False)
        return cls(unet, scheduler, arch.resolution, text_encoder_id)

    @classmethod
    def from_pretrained(cls, folder: str | Path | None = None, device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float32) -> "TextPriorModel":
        folder = Path(folder) if folder is not None else SHIPPED_PRIOR
        meta = read_unet_meta(folder, META_NAME, "text-prior")
        unet, scheduler = load_unet_parts(folder, "text prior", dtype)
        try:
            model = cls(unet, scheduler, int(meta["resolution"]), meta.get("text_encoder", BUNDLED_ENCODER))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"cannot load the text prior from {folder}: {exc}") from exc
        return model.to(device).eval()

    def save_pretrained(self, folder: str | Path, fp16: bool = False, info: dict | None = None) -> None:
        """The folder layout of :mod:`~dreamfusion3d.diffusion.unet_io`; ``info`` joins prior.json."""
        meta = {"resolution": self.resolution, "text_encoder": self.text_encoder_id, **(info or {})}
        save_unet_folder(folder, self._folded_unet(), self.scheduler, META_NAME, meta, fp16)

    def forward(self, x_t: Tensor, t: Tensor, text_emb: Tensor) -> Tensor:  # [B,3,H,W] -> [B,3,H,W]
        dtype = next(self.unet.parameters()).dtype
        if self.text_mean is not None:
            text_emb = (text_emb - self.text_mean.to(text_emb)) * self.text_scale
        states = torch.zeros(x_t.shape[0], 1, self._cross_dim, dtype=dtype, device=x_t.device)
        out = self.unet(x_t.to(dtype), t, encoder_hidden_states=states, class_labels=text_emb.to(dtype)).sample
        return out.to(x_t.dtype)
