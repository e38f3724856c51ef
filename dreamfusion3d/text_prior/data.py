"""The bundled text prior's training data: captioned renders of random world scenes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..cameras import CameraSamplerConfig, sample_cameras, view_labels
from ..utils.errors import UserError
from ..utils.io import atomic_path
from ..utils.logging import info, progress


@dataclass
class PriorDataConfig:
    """How the captioned training renders are made."""

    num_scenes: int = 1200
    """Random world scenes (each rendered from ``views_per_scene`` cameras)."""
    views_per_scene: int = 8
    """Random cameras per scene."""
    composition_fraction: float = 0.15
    """Share of scenes that are two-part compositions or objects with a front."""
    no_view_word_fraction: float = 0.3
    """Share of captions without a view word, so plain prompts are in-distribution too."""
    supersample: int = 2
    """Render at this multiple of the resolution and average down (anti-aliasing)."""
    cameras: CameraSamplerConfig = field(default_factory=CameraSamplerConfig)
    """Camera distribution: the same one text-to-3D samples from."""
    random_background_prob: float = 0.0
    """Share of the training images (one coin per image and step) whose white background is
    replaced by a uniformly random colour, recomposited exactly from the renders' alpha. A prior
    that has seen coloured backgrounds keeps a white object visible when SDS draws its views over
    a random colour (``--background.random-prob``)."""



def build_prior_dataset(cfg: PriorDataConfig, resolution: int, seed: int) -> tuple[Tensor, list[str], list[dict]]:
    """Render captioned views of random world scenes: images uint8 ``[N,4,H,W]`` (RGB over white,
    then alpha), captions, metadata."""
    from ..world import caption, random_scene, render_scene

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    images, captions, meta = [], [], []
    for i in progress(range(cfg.num_scenes), desc="rendering training views", unit="scene"):
        scene = random_scene(rng, compositions=bool(rng.random() < cfg.composition_fraction))
        cams, az, el = sample_cameras(cfg.cameras, cfg.views_per_scene, resolution * cfg.supersample, generator=gen)
        out = render_scene(scene, cams)
        rgba = torch.cat([out["rgb"], out["alpha"]], -1).permute(0, 3, 1, 2)  # [V,4,H*s,W*s]
        if cfg.supersample > 1:
            rgba = F.avg_pool2d(rgba, cfg.supersample)
        images.append((rgba.clamp(0, 1) * 255).round().to(torch.uint8))
        for label in view_labels(az, el):
            view = None if rng.random() < cfg.no_view_word_fraction else label
            captions.append(caption(scene, view=view, rng=rng))
            meta.append({"scene": i, **scene.metadata(), "view": label})
    return torch.cat(images), captions, meta


def training_images(images: Tensor, prob: float, generator: torch.Generator) -> Tensor:
    """A batch of cached renders (uint8 ``[B,3|4,H,W]``) as float images in [-1, 1] ``[B,3,H,W]``,
    each one's white background replaced by a uniformly random colour with probability ``prob``
    (exact recomposition from the alpha channel, ``rendering.background.random_backgrounds``)."""
    from ..rendering.background import random_backgrounds

    x = images.float() / 255.0
    rgb = x[:, :3]
    if prob > 0.0:
        if x.shape[1] != 4:
            raise ValueError("random backgrounds need renders with alpha (rebuild the dataset cache)")
        last = (0, 2, 3, 1)  # channels last, the renderer's layout
        rgb = random_backgrounds(rgb.permute(*last), x[:, 3:4].permute(*last), prob, generator).permute(0, 3, 1, 2)
    return rgb * 2.0 - 1.0


def load_or_build_dataset(cfg) -> tuple[Tensor, list[str]]:
    """The training renders of a ``TrainPriorConfig`` (``data``, ``arch.resolution``, ``seed``),
    cached in its run folder (``dataset.safetensors`` + ``dataset_captions.json``)."""
    cache = cfg.out / "dataset.safetensors"
    caps = cfg.out / "dataset_captions.json"
    if cache.is_file() and caps.is_file():
        info(f"using cached training renders {cache}")
        images = load_file(str(cache))["images"]
        if cfg.data.random_background_prob > 0 and images.shape[1] != 4:
            raise UserError(f"{cache} holds renders without alpha (an older cache); --data.random-background-prob needs them: delete it to render again")
        return images, json.loads(caps.read_text())["captions"]
    info(f"rendering {cfg.data.num_scenes * cfg.data.views_per_scene} training views at {cfg.arch.resolution} px")
    images, captions, meta = build_prior_dataset(cfg.data, cfg.arch.resolution, cfg.seed)
    with atomic_path(cache) as tmp:
        save_file({"images": images.contiguous()}, str(tmp))
    with atomic_path(caps) as tmp:
        tmp.write_text(json.dumps({"captions": captions, "meta": meta}))
    return images, captions
