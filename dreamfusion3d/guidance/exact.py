"""The exact diffusion prior of a finite image set, in closed form.

For data {x_i} and x_t = √ᾱ x + √(1−ᾱ) ε, the optimal denoiser is the posterior mean
E[x | x_t] = Σ_i softmax_i(−‖x_t − √ᾱ x_i‖² / (2(1−ᾱ))) x_i, and the optimal noise prediction is
ε̂ = (x_t − √ᾱ E[x | x_t]) / √(1−ᾱ). Text conditioning restricts (or re-weights) the set: a
prompt's embedding is a vector of non-negative weights over the images, added to the logits
as log-weights; the unconditional embedding weights all images equally. No network, no
training — an exact reference that SDS must converge against.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from torch import Tensor

from ..utils.errors import UserError
from .base import Prior

_VIEW_SUFFIX = re.compile(r",\s*(front|side|back|overhead) view$")


class ExactPrior(Prior):
    """Closed-form ε̂ for a finite set of images (model space: images in [-1, 1])."""

    name = "exact"

    def __init__(
        self,
        images: Tensor,  # [N, 3, H, W] in [0, 1]
        captions: Mapping[str, Sequence[int]] | None = None,
        scheduler: DDPMScheduler | None = None,
        device: torch.device | str = "cpu",
        guidance_scale: float = 1.0,
    ):
        super().__init__()
        if images.ndim != 4 or images.shape[1] != 3:
            raise UserError(f"the exact prior needs images [N, 3, H, W], got {tuple(images.shape)}")
        self.device = torch.device(device)
        self.data = (2.0 * images.float() - 1.0).to(self.device)  # [N, 3, H, W]
        self.resolution = (int(images.shape[2]), int(images.shape[3]))
        self.captions = {k: list(v) for k, v in (captions or {}).items()}
        for prompt, idx in self.captions.items():
            if not idx or min(idx) < 0 or max(idx) >= len(images):
                raise UserError(f"caption {prompt!r} lists image indices {idx} outside 0..{len(images) - 1}")
        self.scheduler = scheduler or DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
        self.guidance_scale = guidance_scale

    @classmethod
    def from_folder(cls, folder: str | Path, device: torch.device | str = "cpu", **kwargs) -> "ExactPrior":
        """Images ``*.png``/``*.jpg`` of one size, plus optional ``captions.json``
        ``{"a red cube": ["cube0.png", ...]}``."""
        import imageio.v3 as iio
        import numpy as np

        folder = Path(folder)
        if not folder.is_dir():
            raise UserError(f"exact prior: image folder {folder} does not exist")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if not files:
            raise UserError(f"exact prior: no .png/.jpg images in {folder}")
        arrays = []
        for p in files:
            try:
                a = np.asarray(iio.imread(p))
            except Exception as exc:  # imageio raises many types for a non-image
                raise UserError(f"exact prior: cannot read image {p}: {exc}") from exc
            a = a[..., None].repeat(3, -1) if a.ndim == 2 else a[..., :3]
            arrays.append(a.astype(np.float32) / (65535.0 if a.dtype == np.uint16 else 255.0))
        if len({a.shape for a in arrays}) != 1:
            raise UserError(f"exact prior: images in {folder} differ in size")
        images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        captions = None
        cap_file = folder / "captions.json"
        if cap_file.is_file():
            try:
                raw = json.loads(cap_file.read_text())
                index = {p.name: i for i, p in enumerate(files)}
                captions = {k: [index[n] for n in v] for k, v in raw.items()}
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise UserError(f"exact prior: {cap_file} must map prompts to lists of image names ({exc})") from exc
        return cls(images, captions, device=device, **kwargs)

    # ---- Prior interface --------------------------------------------------------------------
    def _encode_text(self, prompts: list[str]) -> Tensor:  # [P, N] weights over the images
        out = torch.zeros(len(prompts), self.data.shape[0], device=self.device)
        for row, prompt in enumerate(prompts):
            idx = self._lookup(prompt)
            out[row, idx] = 1.0
        return out

    def _lookup(self, prompt: str) -> list[int] | slice:
        if prompt == "" or not self.captions:
            return slice(None)
        if prompt in self.captions:
            return self.captions[prompt]
        base = _VIEW_SUFFIX.sub("", prompt)
        if base in self.captions:
            return self.captions[base]
        raise UserError(f"exact prior: unknown prompt {prompt!r}; known prompts: {sorted(self.captions)}")

    def posterior_mean(self, x_t: Tensor, t: Tensor, weights: Tensor) -> Tensor:
        """E[x | x_t] under the (re-weighted) empirical distribution; ``weights`` [B, N] ≥ 0."""
        a = self.alphas_cumprod.to(x_t.device)[t].view(-1, 1).double()  # [B, 1]
        flat = self.data.flatten(1).double()  # [N, D]
        xt = x_t.flatten(1).double()  # [B, D]
        # ‖x_t − √ᾱ x_i‖² = ‖x_t‖² − 2√ᾱ⟨x_t, x_i⟩ + ᾱ‖x_i‖², in float64 to avoid cancellation
        d2 = xt.pow(2).sum(1, keepdim=True) - 2.0 * a.sqrt() * (xt @ flat.T) + a * flat.pow(2).sum(1)[None]
        logits = -d2 / (2.0 * (1.0 - a)) + torch.log(weights.double().clamp_min(0.0))
        post = torch.softmax(logits, dim=1)  # [B, N]
        return (post @ flat).view_as(x_t).to(x_t.dtype)

    def _model_output(self, z_t: Tensor, t: Tensor, emb: Tensor) -> Tensor:
        if bool((emb.sum(dim=1) <= 0).any()):
            raise UserError("exact prior: a conditioning weight vector is all zero")
        a = self.alphas_cumprod.to(z_t.device)[t].view(-1, 1, 1, 1)
        mean = self.posterior_mean(z_t, t, emb)
        return (z_t - a.sqrt() * mean) / (1.0 - a).sqrt()

    def encode_images(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if tuple(images.shape[-2:]) != self.resolution:
            images = F.interpolate(images, size=self.resolution, mode="bilinear", align_corners=False, antialias=True)
        return 2.0 * images.float() - 1.0

    def decode(self, z: Tensor) -> Tensor:
        return ((z.float() + 1.0) / 2.0).clamp(0.0, 1.0)

    def latent_shape(self, batch_size: int) -> tuple[int, ...]:
        return (batch_size, 3, *self.resolution)
