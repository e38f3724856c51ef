"""The one interface every diffusion prior offers to score distillation and sampling.

A prior works in its own *model space* ``z`` (SD: VAE latents; pixel priors: images in
[-1, 1] at the model's resolution). Subclasses say how to get there from renders
(``encode_images``), how to come back (``decode``), how to encode their conditioning, and how to
call their network (``_model_output``); the SDS step itself is written once, here.

Two kinds of conditioning (``Prior.conditioning``):

* ``"text"``: a prompt → an embedding tensor (``encode_text``);
* ``"image"``: a reference image plus, per view, the camera pair (source = the image's camera,
  target = the view's) → :meth:`Prior.image_condition` (Zero-1-to-3 / 3DiM style). The
  unconditional branch of classifier-free guidance drops the image (and pose).

A condition is a tensor ``[B, ...]`` or a dict of such tensors (an image prior's extra input
channels and pose vector); :func:`expand_condition` / :func:`cat_conditions` batch either.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Mapping, Union

import torch
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

from ..utils.logging import warn
from . import sds as S


Condition = Union[Tensor, Mapping[str, Tensor]]


@dataclass
class SDSOutput:
    """Result of one score-distillation step.

    ``loss`` is the surrogate ``½ Σ_pixels ‖z − sg(z − grad)‖² / B``; back-propagating it gives
    ``∂loss/∂z = grad / B`` in model space, and the chain rule carries that to the renders.
    """

    loss: Tensor  # [] differentiable w.r.t. the images / latents
    grad: Tensor  # [B, C, h, w] w(t)(ε̂ − ε) (after grad-norm rescaling; zeros when not finite)
    t: Tensor  # [B] long, the timesteps used
    weights: Tensor  # [B] w(t)
    noise: Tensor  # [B, C, h, w] ε added to z
    noise_pred: Tensor  # [B, C, h, w] guided prediction ε̂
    latents: Tensor  # [B, C, h, w] z in model space (part of the autograd graph)
    grad_norm: Tensor  # [B] per-sample L2 norm of w(t)(ε̂ − ε) before any rescaling
    finite: Tensor | None = None  # [] bool: False when NaN/Inf was caught and the step turned into a no-op

    @property
    def nonfinite(self) -> bool:
        """Whether NaN/Inf was caught (reading it is a host sync on a GPU)."""
        return self.finite is not None and not bool(self.finite)


class Prior:
    """Base class: text encoding with a cache, noising with the prior's own scheduler, and SDS.

    Subclasses set ``scheduler`` (a diffusers scheduler with ``alphas_cumprod``/``add_noise``),
    ``device``, ``dtype`` (of the network) and the defaults below, and implement the four
    ``_``-methods plus ``encode_images``/``decode``/``latent_shape``.
    """

    name: str = "prior"
    conditioning: str = "text"  # "text" or "image" (reference image + relative camera)
    latent_space: bool = False  # True when z is not an image (SD)
    scheduler = None
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32
    guidance_scale: float = 100.0
    t_min: float = 0.02
    t_max: float = 0.98
    t_anneal: S.TAnneal = "none"
    t_max_end: float = 0.5
    t_min_end: float | None = None
    t_mid_prob: float = 0.0
    t_mid_range: tuple[float, float] = (0.4, 0.7)
    weighting: S.Weighting = "sds"
    defer_finite_check: bool = False
    """False: each SDS step checks its gradient for NaN/Inf at once and warns (a host sync). True
    (the optimisation loop): steps only count such cases on the device and
    :meth:`report_nonfinite` warns, every N steps."""

    text_encoder_rest: torch.device | None = None
    """Where the text encoder waits between encodings: the CPU for SD/IF on a GPU (it comes to
    ``device`` only to fill the embedding cache), None: it stays on ``device``."""

    _nonfinite_steps: Tensor | None = None  # [] long, counted on the device (defer_finite_check)

    def __init__(self) -> None:
        self._text_cache: dict[str, Tensor] = {}

    def _text_modules(self) -> list[torch.nn.Module]:
        """The text encoder(s) that :attr:`text_encoder_rest` applies to."""
        return []

    def _parked_while_encoding(self) -> list[torch.nn.Module]:
        """Networks moved to :attr:`text_encoder_rest` while the text encoder visits the device, so
        the two never share the GPU (IF: the 4.3 B UNet and the T5-XXL encoder)."""
        return []

    # ---- to implement -------------------------------------------------------------------
    def _encode_text(self, prompts: list[str]) -> Tensor:  # [N, ...]
        raise NotImplementedError

    def _model_output(self, z_t: Tensor, t: Tensor, emb: Condition) -> Tensor:
        """The network's raw output for a batch (no grad; the caller casts back to float32)."""
        raise NotImplementedError

    # image-conditioned priors implement these two instead of ``_encode_text``
    def encode_image(self, image: Tensor) -> Any:
        """Features of a reference image ``[1, 3, H, W]`` in [0, 1], computed once (no grad)."""
        raise NotImplementedError(f"the {self.name} prior is conditioned on text, not on an image")

    def image_condition(self, features: Any, source: Tensor, target: Tensor) -> tuple[Condition, Condition]:
        """``(cond, uncond)`` for views of the reference image's object from cameras ``target``
        ``[B, 3]``, the image seen from ``source`` ``[B, 3]`` (rows: azimuth_deg, elevation_deg,
        radius). ``uncond`` is the classifier-free-guidance branch without the image."""
        raise NotImplementedError(f"the {self.name} prior is conditioned on text, not on an image")

    def encode_images(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Renders ``[B, 3, H, W]`` in [0, 1] → model space ``z`` (differentiable)."""
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        """Model space → images ``[B, 3, H, W]`` in [0, 1] (for sampling and previews)."""
        raise NotImplementedError

    def latent_shape(self, batch_size: int) -> tuple[int, ...]:
        """Shape of ``z`` for a batch, for sampling from pure noise."""
        raise NotImplementedError

    # ---- shared ---------------------------------------------------------------------------
    def configure(self, config: Any) -> "Prior":
        """Apply a :class:`~dreamfusion3d.guidance.config.PriorConfig`'s SDS settings (guidance
        scale — the kind's default from the registry when unset —, t-range, annealing, weighting).
        Every ``from_config`` ends with this, so it gives what ``load_prior`` gives."""
        config.check()
        self.guidance_scale = config.resolved_guidance_scale()
        self.t_min, self.t_max = config.t_min, config.t_max
        self.t_anneal, self.t_max_end = config.t_anneal, config.t_max_end
        self.t_min_end = getattr(config, "t_min_end", None)
        self.t_mid_prob = float(getattr(config, "t_mid_prob", 0.0))
        self.t_mid_range = tuple(getattr(config, "t_mid_range", (0.4, 0.7)))
        self.weighting = config.weighting
        return self

    @property
    def num_train_timesteps(self) -> int:
        return int(self.scheduler.config.num_train_timesteps)

    @property
    def alphas_cumprod(self) -> Tensor:  # [T] float32 on the CPU
        return self.scheduler.alphas_cumprod.float()

    def encode_text(self, prompts: list[str]) -> Tensor:
        """Embeddings ``[N, ...]`` for the prompts, computed once per distinct string."""
        if isinstance(prompts, str):
            prompts = [prompts]
        missing = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        if missing:
            with torch.no_grad(), self._text_encoder_on_device():
                embs = self._encode_text(missing)
            for p, e in zip(missing, embs):
                self._text_cache[p] = e.detach()
        return torch.stack([self._text_cache[p] for p in prompts])

    @contextlib.contextmanager
    def _text_encoder_on_device(self):
        rest, modules = self.text_encoder_rest, self._text_modules()
        if rest is None or not modules:
            yield
            return
        parked = self._parked_while_encoding()
        for m in parked:
            m.to(rest)
        for m in modules:
            m.to(self.device)
        try:
            yield
        finally:
            for m in modules:
                m.to(rest)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()  # hand the encoder's memory back to the UNet
            for m in parked:
                m.to(self.device)

    @torch.no_grad()
    def predict_noise(self, z_t: Tensor, t: Tensor, emb: Condition) -> Tensor:
        """ε prediction (float32) whatever the model predicts (ε, v or x0)."""
        out = self._model_output(z_t, t, emb).float()
        kind = getattr(self.scheduler.config, "prediction_type", "epsilon")
        return S.noise_from_prediction(out, z_t.float(), self.alphas_cumprod.to(t.device)[t], kind)

    def timestep_bounds(self, progress: float | None = None) -> tuple[int, int]:
        return S.timestep_bounds(self.num_train_timesteps, self.t_min, self.t_max, progress, self.t_anneal,
                                 self.t_max_end, self.t_min_end)

    def sds_loss(self, images: Tensor, cond_emb: Condition, uncond_emb: Condition, **options: Any) -> SDSOutput:
        """Score distillation on rendered ``images [B, 3, H, W]`` in [0, 1]: encode them to model
        space, then :meth:`sds_loss_latents` (``options`` are its keyword arguments: ``t``,
        ``noise``, ``guidance_scale``, ``weighting``, ``generator``, ``progress``, Perp-Neg's
        ``negative_emb`` / ``negative_weights``)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"sds_loss expects images [B, 3, H, W] in [0, 1], got shape {tuple(images.shape)} "
                             "(renderer outputs [B, H, W, 3] need .permute(0, 3, 1, 2))")
        z = self.encode_images(images, generator=options.get("generator"))
        return self.sds_loss_latents(z, cond_emb, uncond_emb, **options)

    def sds_loss_latents(
        self,
        z: Tensor,  # [B, C, h, w] model space, float32, differentiable
        cond_emb: Condition,  # [B or 1, ...] (tensor or dict of tensors)
        uncond_emb: Condition,  # [B or 1, ...]
        t: Tensor | None = None,
        noise: Tensor | None = None,
        guidance_scale: float | None = None,
        weighting: S.Weighting | None = None,
        generator: torch.Generator | None = None,
        progress: float | None = None,
        negative_emb: Tensor | None = None,  # [B, K, ...] Perp-Neg negatives
        negative_weights: Tensor | None = None,  # [B, K]
    ) -> SDSOutput:
        """One SDS step in model space.

        ``t`` (``[B]`` long) and ``noise`` (shape of ``z``) are drawn when not given
        (``progress`` in [0, 1] drives t-annealing). The UNet sees conditional, unconditional
        (and Perp-Neg negative) inputs in one batch, under ``no_grad``.
        """
        B = z.shape[0]
        scale = self.guidance_scale if guidance_scale is None else float(guidance_scale)
        weighting = weighting or self.weighting
        if t is None:
            lo, hi = self.timestep_bounds(progress)
            t = S.sample_timesteps(B, lo, hi, generator=generator, device=z.device)
            if self.t_mid_prob > 0:
                t = S.mix_timesteps(t, self.t_mid_prob, self.num_train_timesteps, *self.t_mid_range,
                                    generator=generator)
        t = t.to(device=z.device, dtype=torch.long).expand(B) if t.ndim == 0 else t.to(z.device).long()
        if noise is None:
            noise = randn_tensor(tuple(z.shape), generator=generator, device=z.device, dtype=torch.float32)
        noise = noise.to(device=z.device, dtype=torch.float32)
        cond = expand_condition(cond_emb, B)
        uncond = expand_condition(uncond_emb, B)

        with torch.no_grad():
            z_t = self.scheduler.add_noise(z.detach().float(), noise, t)
            if negative_emb is None:
                eps = self.predict_noise(torch.cat([z_t, z_t]), torch.cat([t, t]), cat_conditions([cond, uncond]))
                eps_cond, eps_uncond = eps.chunk(2)
                eps_hat = S.classifier_free_guidance(eps_uncond, eps_cond, scale)
            else:
                if not isinstance(cond, Tensor):
                    raise ValueError("Perp-Neg needs text embeddings (tensors), not an image condition")
                if negative_weights is None:
                    raise ValueError("Perp-Neg needs negative_weights [B, K] with negative_emb [B, K, ...]")
                K = negative_emb.shape[1]
                negs = _expand(negative_emb, B).transpose(0, 1).reshape(K * B, *negative_emb.shape[2:])
                eps = self.predict_noise(torch.cat([z_t] * (K + 2)), torch.cat([t] * (K + 2)),
                                         torch.cat([cond, uncond, negs]))
                eps_cond, eps_uncond, eps_neg = eps[:B], eps[B:2 * B], eps[2 * B:]
                eps_neg = eps_neg.view(K, B, *eps_neg.shape[1:]).transpose(0, 1)  # [B, K, C, h, w]
                eps_hat = S.perp_neg_guidance(eps_uncond, eps_cond, eps_neg,
                                              _expand(negative_weights, B).to(z.device), scale)
            w = S.sds_weights(self.alphas_cumprod, t, weighting)
            grad = w.view(-1, *([1] * (z.ndim - 1))) * (eps_hat - noise)
            grad_norm = S.per_sample_norm(grad)
            if weighting == "grad-norm":
                grad = S.normalise_gradient(grad)
            # NaN/Inf turns the step into a no-op, decided on the device (no host sync here)
            finite = torch.isfinite(grad).all()
            grad = torch.where(finite, grad, torch.zeros_like(grad))
        z_safe = torch.where(finite, z.float(), torch.nan_to_num(z.float(), nan=0.0, posinf=0.0, neginf=0.0))
        loss = S.sds_surrogate_loss(z_safe, grad)
        if self.defer_finite_check:
            self._nonfinite_steps = (~finite).long() + (0 if self._nonfinite_steps is None else self._nonfinite_steps)
        elif not bool(finite):
            warn(f"{self.name}: non-finite SDS gradient (NaN/Inf) at t={t.tolist()}; "
                 "this step contributes no gradient")
        return SDSOutput(loss=loss, grad=grad, t=t, weights=w, noise=noise, noise_pred=eps_hat, latents=z,
                         grad_norm=grad_norm, finite=finite)

    def report_nonfinite(self) -> int:
        """Warn once about the steps with NaN/Inf SDS gradients counted since the last report
        (``defer_finite_check``); returns their number. One host sync."""
        if self._nonfinite_steps is None:
            return 0
        count, self._nonfinite_steps = int(self._nonfinite_steps), None
        if count:
            warn(f"{self.name}: {count} step(s) had a non-finite SDS gradient (NaN/Inf) and contributed no gradient")
        return count


def expand_condition(cond: Condition, batch: int) -> Condition:
    """A condition (tensor or dict of tensors) with batch size 1 or ``batch`` → ``batch``."""
    if isinstance(cond, Mapping):
        return {k: _expand(v, batch) for k, v in cond.items()}
    return _expand(cond, batch)


def cat_conditions(conds: list[Condition]) -> Condition:
    """Concatenate conditions along the batch (dicts key by key)."""
    if isinstance(conds[0], Mapping):
        return {k: torch.cat([c[k] for c in conds]) for k in conds[0]}
    return torch.cat(conds)


def condition_batch(cond: Condition) -> int:
    return int(next(iter(cond.values())).shape[0]) if isinstance(cond, Mapping) else int(cond.shape[0])


def _expand(emb: Tensor, batch: int) -> Tensor:
    if emb.shape[0] == batch:
        return emb
    if emb.shape[0] == 1:
        return emb.expand(batch, *emb.shape[1:])
    raise ValueError(f"embedding batch {emb.shape[0]} does not match image batch {batch}")
