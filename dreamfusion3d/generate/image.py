"""Image → 3D: the text → 3D loop with an image-conditioned prior and a reference view.

Zero-1-to-3 / Magic123 recipe on :class:`~.loop.Generation`'s hooks:

* ``guidance_loss``: SDS from an image prior (the bundled novel-view model by default) given
  the input image and, for each random view, the camera pair (input camera → view camera), with
  classifier-free guidance on the image;
* ``extra_losses``: the input camera is rendered every step and compared with the input — RGB
  (mean squared error over the white-composited image) and mask (mean squared error between
  rendered opacity and the input's alpha);
* with ``--prompt``: a text prior's SDS on the same random views, added with ``text_prior.weight``
  (Magic123's joint 2D + 3D guidance; :mod:`.joint`).

Why the reference weights are large: the SDS surrogate's gradient is ``w(t)(ε̂ − ε)`` per pixel
(summed, not averaged, over pixels — see :mod:`..guidance.sds`), whereas the reference losses are
means over ``3·R²`` values. ``rgb = 2000`` and ``mask = 1000`` (chosen at R = 64, kept at the
default R = 32) put the reference view's per-pixel pull at about a third of a typical SDS pull for
a 0.1 colour error (reasoned, not yet swept): the input view is then matched closely while SDS
shapes the unseen sides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from dataclasses import field as dc_field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import CameraSamplerConfig, orbit_cameras
from ..fields import FieldConfig
from ..guidance import ImagePrompt, PriorConfig
from ..novel_view.model import CameraPrior
from ..rendering import BackgroundConfig
from ..representations import SDFConfig
from .config import GenerateConfig, LossConfig, Ramp, ShadingConfig
from .joint import TextPriorConfig, joint_sds_loss
from ..world.render import headlight_positions
from .loop import Generation


@dataclass
class ReferenceConfig:
    """The input view: where its camera is and how strongly the 3D must reproduce it."""

    azimuth: float = 0.0
    """Azimuth of the input's camera (degrees; 0 = the object's front)."""
    elevation: float | None = None
    """Elevation of the input's camera (None: the prior's canonical one, 20 for the shipped model)."""
    radius: float | None = None
    """Distance of the input's camera (None: the prior's canonical one)."""
    fov: float | None = None
    """Vertical field of view of the input's camera in degrees (None: the prior's)."""
    object_fraction: float | None = None
    """Share of the image side the cut-out object spans once centred (None: the prior's framing)."""
    recentre: bool = True
    """Cut the object out and centre it at object_fraction (for photos and any framing). False:
    the image is already framed by the input camera (e.g. a render from it): it is only padded to a
    square and resized, so the 3D keeps the object's size and position in that camera's view."""
    resolution: int = 32
    """Size at which the input view is rendered and compared (32: the prior's own resolution; 64
    measured 2.9× slower with no better mesh, docs/RESULTS.md)."""
    rgb: Ramp = dc_field(default_factory=lambda: Ramp(2000.0))
    """Weight of the RGB loss at the input camera (mean squared error)."""
    mask: Ramp = dc_field(default_factory=lambda: Ramp(1000.0))
    """Weight of the mask loss at the input camera (rendered opacity vs the input's alpha, MSE)."""


def _image_cameras() -> CameraSamplerConfig:
    # the novel-view model's training cameras (make-dataset's defaults)
    return CameraSamplerConfig(radius_range=(2.6, 3.2), elevation_range=(-10.0, 70.0), fov_range=(40.0, 40.0))


def _image_shading() -> ShadingConfig:
    # lambertian under the world renders' headlight (see headlight_positions): the input view and
    # every random view are lit as the novel-view model's training views were, so the field learns
    # the albedo and the shading carries the shape
    return ShadingConfig(albedo_only_steps=0, albedo_prob=0.0, lambertian_prob=1.0, ambient=0.3, light="headlight")


@dataclass
class ImageTo3DConfig(GenerateConfig):
    """Image to 3D: optimise a 3D representation (an SDF by default) so that it reproduces the
    input view and a novel-view prior likes its other views (SDS conditioned on the image and the
    relative camera)."""

    image: tuple[Path, ...] = ()
    """Input image(s) (PNG/JPG; alpha or a plain background is cut away and the object centred).
    Several images: one sub-folder of OUT per image."""
    prompt: str | None = None
    """Optional text prompt, e.g. "a red cube": a text prior (text_prior) then scores the same random
    views too and its SDS is added with text_prior.weight (joint text + image guidance, as
    Magic123); view-dependent wording as in generate (the prompting section). None: image only."""
    out: Path = Path("outputs/image_to_3d")
    """Output folder."""
    steps: int = 600
    """Optimisation steps."""
    geometry: str = "sdf"
    """The 3D representation: sdf (the surface geometry, the default since it measured IoU 0.85 vs
    the NeRF's 0.52 on the first held-out object; docs/RESULTS.md) or nerf."""
    sdf: SDFConfig = dc_field(default_factory=SDFConfig)
    """The signed-distance geometry's options (β to 0.02: text → 3D's 0.01 is not measured here)."""
    field: FieldConfig = dc_field(default_factory=lambda: FieldConfig(dense_resolution=32))
    """The field's encoding and MLP (a 32³ dense grid, as text → 3D's default but without its blur,
    which image → 3D has not been measured with)."""
    prior: PriorConfig = dc_field(default_factory=lambda: PriorConfig(kind="novel_view"))
    """The frozen image-conditioned prior (novel_view: the shipped model; zero123: Zero-1-to-3 weights)."""
    reference: ReferenceConfig = dc_field(default_factory=ReferenceConfig)
    """The input view's camera and loss weights."""
    sds_weight: Ramp = dc_field(default_factory=lambda: Ramp(1.0))
    """Weight of the image-conditioned SDS term."""
    text_prior: TextPriorConfig = dc_field(default_factory=TextPriorConfig)
    """With --prompt: the text prior (kind, model, guidance scale, t-range as the prior section) and
    its SDS weight (default 0.1: about half the image prior's pull, see joint.py)."""
    cameras: CameraSamplerConfig = dc_field(default_factory=_image_cameras)
    """Random training cameras (default: the ranges the novel-view model was trained on)."""
    shading: ShadingConfig = dc_field(default_factory=_image_shading)
    """Shading schedule (default: colour only, the input's lighting is baked in)."""
    background: BackgroundConfig = dc_field(default_factory=lambda: BackgroundConfig(kind="fixed"))
    """What is behind the object (white, as the centred input)."""
    losses: LossConfig = dc_field(default_factory=LossConfig)
    """Regulariser weights (the transmittance term off: not measured for image to 3D)."""


def input_camera(cfg: ImageTo3DConfig, prior) -> tuple[Tensor, float, float]:
    """((azimuth, elevation, radius) of the input's camera, its fov in degrees, the object fraction)."""
    canon = getattr(prior, "camera", None) or CameraPrior()
    r = cfg.reference
    el = canon.elevation if r.elevation is None else r.elevation
    radius = canon.radius if r.radius is None else r.radius
    fov = canon.fov_y_deg if r.fov is None else r.fov
    fraction = canon.object_fraction if r.object_fraction is None else r.object_fraction
    return torch.tensor([r.azimuth, el, radius], dtype=torch.float32), float(fov), float(fraction)


class ImageGeneration(Generation):
    """One input image's optimisation; ``pixels`` is the image as :func:`read_image` returns it."""

    def __init__(self, cfg: ImageTo3DConfig, name: str, pixels, out: Path, prior=None, text_prior=None):
        self._pixels = pixels
        self.text_prior = text_prior  # loaded by the caller when cfg.prompt is set (None: image guidance only)
        super().__init__(cfg, name, out, prior=prior)

    # ---- hooks of Generation -------------------------------------------------------------
    def _build_guidance(self) -> None:
        from ..novel_view.images import frame_input

        cfg: ImageTo3DConfig = self.cfg
        self.source, fov, fraction = input_camera(cfg, self.prior)
        res = cfg.reference.resolution
        rgb, alpha = frame_input(self._pixels, res, fraction, cfg.reference.recentre)
        self.reference_rgb = rgb.to(self.device)  # [3, R, R] over white
        self.reference_mask = alpha.to(self.device)  # [1, R, R]
        a, e, r = self.source.tolist()
        self.reference_camera = orbit_cameras([a], [e], r, fov, res).to(self.device)
        self.image_prompt = ImagePrompt(self.prior, rgb, self.source)
        self.reference_stats: dict[str, float] = {}
        self.text_prompts, self._terms = None, {}
        if cfg.prompt is not None:
            from ..guidance import PromptProcessor, load_prior

            if self.text_prior is None:
                self.text_prior = load_prior(cfg.text_prior, device=self.device)
            self.text_prior.defer_finite_check = True
            self.text_prompts = PromptProcessor.from_config(self.text_prior, cfg.prompt, cfg.prompting)

    def guidance_loss(self, images: Tensor, cams, az: Tensor, el: Tensor):
        cfg: ImageTo3DConfig = self.cfg
        sds, self._terms = joint_sds_loss(self.image_prompt, self.text_prompts, images, cams, az, el,
                                          cfg.sds_weight.at(self.step), cfg.text_prior.weight.at(self.step),
                                          generator=self.generator, progress=self.step / max(1, cfg.steps))
        return sds

    def step_terms(self) -> dict[str, Tensor]:
        return self._terms

    def report_nonfinite(self) -> None:
        super().report_nonfinite()
        if self.text_prompts is not None:
            self.text_prior.report_nonfinite()

    def _lights(self, cam_positions: Tensor) -> Tensor:
        return headlight_positions(cam_positions)

    def _render_reference(self):
        cam = self.reference_camera
        shading = "albedo" if self.cfg.shading.albedo_prob >= 1.0 else "lambertian"
        return self._representation().render(cam, shading=shading, light_positions=headlight_positions(cam.positions),
                                             ambient=self.cfg.shading.ambient)

    def extra_losses(self) -> dict[str, Tensor]:
        cfg: ImageTo3DConfig = self.cfg
        out = self._render_reference()
        rgb = out["rgb"].permute(0, 3, 1, 2)[0]  # [3, R, R]
        opacity = out["opacity"].permute(0, 3, 1, 2)[0]  # [1, R, R]
        loss_rgb = F.mse_loss(rgb, self.reference_rgb)
        loss_mask = F.mse_loss(opacity, self.reference_mask)
        self.reference_stats = {"rgb_mse": float(loss_rgb.detach()), "mask_mse": float(loss_mask.detach())}
        r = cfg.reference
        return {"reference_rgb": r.rgb.at(self.step) * loss_rgb, "reference_mask": r.mask.at(self.step) * loss_mask}

    def _representation(self):
        """The optimised 3D (``representation`` once the loop has that seam, ``renderer`` before)."""
        return getattr(self, "representation", None) or self.renderer

    # ---- outputs ---------------------------------------------------------------------------
    @torch.no_grad()
    def reference_psnr(self) -> float:
        out = self._render_reference()
        mse = F.mse_loss(out["rgb"].permute(0, 3, 1, 2)[0].clamp(0, 1), self.reference_rgb).clamp_min(1e-10)
        return float(-10.0 * torch.log10(mse))

    def run(self) -> dict:
        from ..utils.io import write_json_atomic

        metrics = super().run()
        metrics["input_camera"] = {"azimuth": float(self.source[0]), "elevation": float(self.source[1]),
                                   "radius": float(self.source[2])}
        metrics["reference_view"] = {**self.reference_stats, "psnr": self.reference_psnr()}
        if self.text_prompts is not None:
            tp = self.cfg.text_prior
            metrics["text_guidance"] = {
                "prompt": self.cfg.prompt, "prior": tp.kind, "model": tp.resolved_model(),
                "guidance_scale": self.text_prior.guidance_scale, "weight": asdict(tp.weight),
                "image_sds_weight": asdict(self.cfg.sds_weight), "view_dependent": self.cfg.prompting.view_dependent}
        write_json_atomic(self.out / "metrics.json", metrics)
        return metrics
