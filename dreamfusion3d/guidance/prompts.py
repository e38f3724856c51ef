"""View-dependent prompting: which text embedding each camera is scored with.

DreamFusion appends the view direction to the prompt ("…, front view"), which helps a 2D prior
produce consistent sides of one object. Options: interpolate embeddings between neighbouring
directions by azimuth (front ↔ side ↔ back) instead of switching abruptly, and Perp-Neg
(Armandpour et al. 2023) against the multi-face (Janus) problem: the other views' prompts
become negatives whose parallel component is kept out of the guidance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..cameras import VIEW_LABELS, view_index, view_labels, wrap_azimuth
from .base import Prior, SDSOutput


def view_prompt(prompt: str, view: str) -> str:
    """``"<prompt>, <view> view"`` — the exact words the bundled prior's captions end with."""
    return f"{prompt}, {view} view"


@dataclass
class PromptConfig:
    """How the prompt becomes per-view conditioning."""

    negative_prompt: str = ""
    """Prompt to steer away from (replaces the empty unconditional prompt in guidance)."""
    view_dependent: bool = True
    """Append ', front view' / ', side view' / ', back view' / ', overhead view' by camera direction."""
    interpolate_views: bool = False
    """Blend embeddings between neighbouring directions by azimuth (front-side-back) instead of switching."""
    perp_neg: bool = False
    """Perp-Neg guidance: the other views' prompts act as negatives (against multi-face objects)."""
    perp_neg_weight: float = 1.0
    """Weight of the Perp-Neg negative prompts."""
    front_half_angle: float = 45.0
    """Half-angle (degrees of azimuth) of the 'front' and 'back' sectors."""
    overhead_elevation: float = 60.0
    """Elevation (degrees) above which a view is 'overhead'."""


@dataclass
class Conditioning:
    """Per-view inputs of one SDS step (negatives only with Perp-Neg)."""

    cond: Tensor  # [B, ...]
    uncond: Tensor  # [B, ...]
    negatives: Tensor | None = None  # [B, K, ...]
    negative_weights: Tensor | None = None  # [B, K]


class PromptProcessor:
    """Caches the embeddings of a prompt and its view variants; hands out per-camera batches."""

    def __init__(
        self,
        prior: Prior,
        prompt: str,
        negative_prompt: str = "",
        view_dependent: bool = True,
        interpolate_views: bool = False,
        perp_neg: bool = False,
        perp_neg_weight: float = 1.0,
        front_half_angle: float = 45.0,
        overhead_elevation: float = 60.0,
    ):
        self.prior = prior
        self.prompt = prompt
        self.negative_prompt = negative_prompt
        self.view_dependent = view_dependent
        self.interpolate_views = interpolate_views
        self.perp_neg = perp_neg
        self.perp_neg_weight = float(perp_neg_weight)
        self.front_half_angle = front_half_angle
        self.overhead_elevation = overhead_elevation
        views = list(VIEW_LABELS)
        self.prompts = {v: view_prompt(prompt, v) for v in views}
        texts = [prompt, negative_prompt] + [self.prompts[v] for v in views]
        embs = prior.encode_text(texts)
        self.base_emb = embs[0]
        self.uncond_emb = embs[1]
        self.view_embs = {v: embs[2 + i] for i, v in enumerate(views)}
        self._view_stack = embs[2:]  # [4, ...] in VIEW_LABELS order

    @classmethod
    def from_config(cls, prior: Prior, prompt: str, config: PromptConfig) -> "PromptProcessor":
        return cls(prior, prompt, config.negative_prompt, config.view_dependent, config.interpolate_views,
                   config.perp_neg, config.perp_neg_weight, config.front_half_angle, config.overhead_elevation)

    def labels(self, azimuth_deg: Tensor, elevation_deg: Tensor) -> list[str]:
        return view_labels(azimuth_deg, elevation_deg, self.front_half_angle, self.overhead_elevation)

    def _index(self, azimuth_deg: Tensor, elevation_deg: Tensor) -> Tensor:  # [B] long, on the embeddings' device
        idx = view_index(azimuth_deg, elevation_deg, self.front_half_angle, self.overhead_elevation)
        return idx.to(self._view_stack.device)

    def _positive(self, azimuth_deg: Tensor, elevation_deg: Tensor) -> Tensor:  # [B, ...]
        """Per-camera embeddings by tensor indexing on the device (no host sync in a step)."""
        idx = self._index(azimuth_deg, elevation_deg)
        if not self.view_dependent:
            return self.base_emb.expand(idx.shape[0], *self.base_emb.shape)
        if not self.interpolate_views:
            return self._view_stack[idx]
        front, side, back = self.view_embs["front"], self.view_embs["side"], self.view_embs["back"]
        a = _abs_azimuth(azimuth_deg).to(idx.device)
        shape = (-1,) + (1,) * front.ndim
        near = a <= 90.0
        r = torch.where(near, a / 90.0, (a - 90.0) / 90.0).view(shape)
        blend = torch.where(near.view(shape), torch.lerp(front, side, r), torch.lerp(side, back, r))
        return torch.where((idx == VIEW_LABELS.index("overhead")).view(shape), self.view_embs["overhead"], blend)

    def embeddings(self, azimuth_deg: Tensor, elevation_deg: Tensor) -> tuple[Tensor, Tensor]:
        """``(cond [B, ...], uncond [B, ...])`` for cameras at these angles (degrees)."""
        cond = self._positive(azimuth_deg, elevation_deg)
        return cond, self.uncond_emb.expand(cond.shape[0], *self.uncond_emb.shape)

    def negative_weights(self, azimuth_deg: Tensor, elevation_deg: Tensor) -> Tensor:  # [B, 2]
        """Perp-Neg weights of the negatives (front view, side view) for each camera.

        Along the front→side arc (r = |az|/90) the side negative fades out and the front one
        fades in; along side→back (r = (|az|−90)/90) the front negative stays at full weight and
        the side one fades in. Weights are continuous in azimuth; overhead views get none.
        """
        idx = view_index(azimuth_deg, elevation_deg, self.front_half_angle, self.overhead_elevation)
        a = _abs_azimuth(azimuth_deg)
        near = a <= 90.0
        r = torch.where(near, a / 90.0, (a - 90.0) / 90.0)
        w = torch.stack([torch.where(near, r, torch.ones_like(r)), torch.where(near, 1.0 - r, r)], dim=-1)
        w = torch.where((idx == VIEW_LABELS.index("overhead"))[:, None], torch.zeros_like(w), w)
        return w * self.perp_neg_weight

    def conditioning(self, azimuth_deg: Tensor, elevation_deg: Tensor) -> Conditioning:
        cond, uncond = self.embeddings(azimuth_deg, elevation_deg)
        if not self.perp_neg:
            return Conditioning(cond, uncond)
        negs = torch.stack([self.view_embs["front"], self.view_embs["side"]])  # [2, ...]
        negs = negs.unsqueeze(0).expand(cond.shape[0], *negs.shape)
        weights = self.negative_weights(azimuth_deg, elevation_deg).to(cond.device)
        return Conditioning(cond, uncond, negs, weights)

    def sds_loss(self, images: Tensor, azimuth_deg: Tensor, elevation_deg: Tensor, **kwargs) -> SDSOutput:
        """``prior.sds_loss`` with this prompt's per-view conditioning (kwargs pass through)."""
        c = self.conditioning(azimuth_deg, elevation_deg)
        return self.prior.sds_loss(images, c.cond, c.uncond, negative_emb=c.negatives,
                                   negative_weights=c.negative_weights, **kwargs)


def _abs_azimuth(azimuth_deg: Tensor) -> Tensor:  # [B] in [0, 180], where the angles live
    return wrap_azimuth(azimuth_deg.detach().float()).abs()
