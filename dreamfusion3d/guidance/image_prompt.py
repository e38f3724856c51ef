"""Image conditioning: the image-to-3D counterpart of :class:`~.prompts.PromptProcessor`.

A reference image seen from a known camera (``source``: azimuth_deg, elevation_deg, radius)
conditions an image prior (``prior.conditioning == "image"``: the bundled novel-view model,
Zero-1-to-3 weights, the exact image prior). For each rendered view the prior receives the
camera pair (source → that view's camera) and scores the render as a view of the reference's
object; classifier-free guidance contrasts it with the prior's prediction without the image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cameras import Cameras
from ..utils.errors import UserError
from .base import Condition, Prior, SDSOutput


def camera_rows(cameras: Cameras) -> Tensor:  # [B, 3] (azimuth_deg, elevation_deg, radius)
    """Spherical coordinates of camera centres, the form image priors take cameras in."""
    az, el, r = cameras.spherical()
    return torch.stack([az, el, r], dim=-1)


class ImagePrompt:
    """A reference image (``[3, H, W]`` in [0, 1], object centred as the prior expects) and its
    camera; hands out per-view conditions and SDS losses."""

    def __init__(self, prior: Prior, image: Tensor, source: Tensor | tuple[float, float, float]):
        if getattr(prior, "conditioning", "text") != "image":
            raise UserError(f"prior {prior.name!r} is conditioned on text; image -> 3D needs an image prior "
                            "(--prior.kind novel_view or zero123)")
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"ImagePrompt expects an image [3, H, W] in [0, 1], got {tuple(image.shape)}")
        self.prior = prior
        self.image = image.float()
        self.source = torch.as_tensor(source, dtype=torch.float32).reshape(3)
        with torch.no_grad():
            self.features = prior.encode_image(self.image[None].to(prior.device))

    def conditioning(self, target: Tensor) -> tuple[Condition, Condition]:
        """``(cond, uncond)`` for target cameras ``[B, 3]`` (azimuth_deg, elevation_deg, radius)."""
        target = target.float().to(self.prior.device)
        source = self.source.to(self.prior.device).expand_as(target)
        with torch.no_grad():
            return self.prior.image_condition(self.features, source, target)

    def sds_loss(self, images: Tensor, cameras: Cameras | Tensor, **kwargs) -> SDSOutput:
        """``prior.sds_loss`` of renders ``[B, 3, H, W]`` of ``cameras`` (or their ``[B, 3]`` rows)."""
        target = camera_rows(cameras) if isinstance(cameras, Cameras) else cameras
        cond, uncond = self.conditioning(target)
        return self.prior.sds_loss(images, cond, uncond, **kwargs)


__all__ = ["ImagePrompt", "camera_rows"]
