"""The bundled novel-view model (``dreamfusion3d/assets/novel_view``) as an image-conditioned prior.

Model space = images in [-1, 1] at the model's resolution (32 px shipped), over white, the
object framed as in its training views. The condition of a view is what the model's own sampler
feeds it (:meth:`NovelViewModel.condition`): the clean reference image as extra input channels
and the camera-pair vector as the class embedding; the unconditional branch zeroes both
(:func:`drop_condition`), as in training with condition dropout.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..novel_view.model import NovelViewModel, drop_condition
from ..utils.errors import UserError
from .base import Condition
from .config import PriorConfig
from .loading import apply_memory_options, resolve_pixel_dtype
from .pixel import PixelPrior


class NovelViewPrior(PixelPrior):
    name = "novel_view"
    conditioning = "image"

    @classmethod
    def from_config(cls, config: PriorConfig, device: torch.device | str = "cpu") -> "NovelViewPrior":
        device = torch.device(device)
        model = NovelViewModel.from_pretrained(config.resolved_model(), device=device,
                                               dtype=resolve_pixel_dtype(config.dtype, device))
        apply_memory_options(model.unet, False, config.channels_last)
        return cls(model, device).configure(config)

    @property
    def camera(self):
        """The model's canonical input camera and framing (``CameraPrior``)."""
        return self.model.camera

    def _encode_text(self, prompts: list[str]) -> Tensor:
        raise UserError("the novel-view prior is conditioned on an image and a camera, not on text "
                        "(give --image)")

    def encode_image(self, image: Tensor) -> Tensor:  # [1, 3, R, R] in [-1, 1]
        return self.encode_images(image)

    def image_condition(self, features: Tensor, source: Tensor, target: Tensor) -> tuple[Condition, Condition]:
        b = target.shape[0]
        channels, pose = self.model.condition(features.expand(b, -1, -1, -1), source.float(), target.float())
        u_channels, u_pose = drop_condition(channels, pose, torch.ones(b, dtype=torch.bool, device=channels.device))
        return {"channels": channels, "pose": pose}, {"channels": u_channels, "pose": u_pose}

    def _model_output(self, z_t: Tensor, t: Tensor, emb: Condition) -> Tensor:
        return self.model(z_t, t, emb["channels"], emb["pose"])
