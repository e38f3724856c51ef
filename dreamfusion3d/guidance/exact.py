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
    def from_config(cls, config, device: torch.device | str = "cpu") -> "ExactPrior":
        if config.model is None:
            raise UserError("prior kind 'exact' needs --prior.model FOLDER (images + optional captions.json)")
        return cls.from_folder(config.model, device=device).configure(config)

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


class ExactImagePrior(ExactPrior):
    """The exact prior of posed views of a few objects, conditioned on an image and a camera.

    ``views [O, V, 3, H, W]`` with cameras ``[O, V, 3]`` (azimuth_deg, elevation_deg, radius).
    The reference image (seen from ``source``) gives a posterior over objects,
    ``p(o) ∝ Σ_v k(source, cam_ov) · exp(−‖image − x_ov‖² / 2τ²)``; a target camera weights that
    object's views by ``k(target, cam_ov) = exp(−angle² / 2σ²)``. The conditional "embedding" of a
    view is this weight vector over all ``O·V`` images, the unconditional one is uniform, and the
    closed-form denoiser of :class:`ExactPrior` does the rest — the independent reference that
    image-conditioned SDS is checked against.
    """

    name = "exact-image"
    conditioning = "image"

    def __init__(self, views: Tensor, cameras: Tensor, image_bandwidth: float = 0.1,
                 camera_bandwidth_deg: float = 10.0, **kwargs):
        if views.ndim != 5 or cameras.shape != (*views.shape[:2], 3):
            raise ValueError(f"need views [O, V, 3, H, W] and cameras [O, V, 3], got {tuple(views.shape)}, "
                             f"{tuple(cameras.shape)}")
        super().__init__(views.flatten(0, 1), **kwargs)
        self.num_objects, self.num_views = int(views.shape[0]), int(views.shape[1])
        self.cameras = cameras.float().reshape(-1, 3).to(self.device)  # [N, 3]
        self.image_bandwidth = float(image_bandwidth)
        self.camera_bandwidth_deg = float(camera_bandwidth_deg)

    def _camera_kernel(self, rows: Tensor) -> Tensor:  # [B, 3] -> [B, N]
        from ..novel_view.pose import angular_distance_deg

        b, n = rows.shape[0], self.cameras.shape[0]
        angle = angular_distance_deg(rows[:, None].expand(b, n, 3), self.cameras[None].expand(b, n, 3))
        return torch.exp(-0.5 * (angle / self.camera_bandwidth_deg) ** 2)

    def encode_image(self, image: Tensor) -> Tensor:  # [1, 3, H, W] -> [1, N] per-image likelihoods
        z = self.encode_images(image.to(self.device)).flatten(1).double()  # [1, D]
        d2 = (z - self.data.flatten(1).double()).pow(2).mean(1)  # [N] mean squared difference in [-1, 1]
        return torch.exp(-(d2 - d2.min()) / (2.0 * self.image_bandwidth ** 2))[None].float()

    def image_condition(self, features: Tensor, source: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        like = features.expand(source.shape[0], -1) * self._camera_kernel(source.float())  # [B, N]
        p_obj = like.view(-1, self.num_objects, self.num_views).sum(-1)  # [B, O]
        p_obj = p_obj / p_obj.sum(-1, keepdim=True).clamp_min(1e-30)
        k = self._camera_kernel(target.float()).view(-1, self.num_objects, self.num_views)
        k = k / k.sum(-1, keepdim=True).clamp_min(1e-30)  # each object's views, weighted by camera
        cond = (p_obj[..., None] * k).flatten(1) + 1e-12  # strictly positive (log-weights of ExactPrior)
        return cond, torch.ones_like(cond)
