"""``dreamfusion3d train-classifier``: trains the shape/colour evaluation classifier (the judge)
on world renders (own seed, object-level hold-out) and reports its held-out accuracy."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import CameraSamplerConfig, sample_cameras
from ..rendering.background import random_backgrounds
from ..utils.config import save_config
from ..utils.logging import info, progress
from ..utils.outdir import check_output_folder, output_folder
from .model import SHIPPED_CLASSIFIER, ClassifierConfig, ShapeColorClassifier, augment


def render_labelled(
    num_objects: int, views: int, resolution: int, seed: int, cameras: CameraSamplerConfig, supersample: int = 2,
    alpha: bool = False,
) -> tuple[Tensor, Tensor, Tensor, tuple[str, ...], tuple[str, ...]]:
    """Views of random single primitives: images ``[N,3,H,W]`` in [0,1] over white (``[N,4,H,W]``
    with the alpha channel last when ``alpha``), shape ids, colour ids."""
    from ..world import COLORS, SHAPES, primitive_scene, render_scene

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    shapes, colors = tuple(SHAPES), tuple(COLORS)
    images, shape_ids, color_ids = [], [], []
    for _ in progress(range(num_objects), desc="rendering labelled views", unit="object"):
        s, c = int(rng.integers(len(shapes))), int(rng.integers(len(colors)))
        scene = primitive_scene(shapes[s], colors[c], seed=int(rng.integers(2**31)))
        cams, _, _ = sample_cameras(cameras, views, resolution * supersample, generator=gen)
        out = render_scene(scene, cams)
        rgb = (torch.cat([out["rgb"], out["alpha"]], -1) if alpha else out["rgb"]).permute(0, 3, 1, 2)
        images.append(F.avg_pool2d(rgb, supersample) if supersample > 1 else rgb)
        shape_ids += [s] * views
        color_ids += [c] * views
    return torch.cat(images).clamp(0, 1), torch.tensor(shape_ids), torch.tensor(color_ids), shapes, colors


def over_random_backgrounds(rgba: Tensor, prob: float, generator: torch.Generator) -> Tensor:
    """Labelled views with alpha (``[N,4,H,W]`` over white) as ``[N,3,H,W]``, each over a uniformly
    random colour with probability ``prob`` (``rendering.background.random_backgrounds``)."""
    last = (0, 2, 3, 1)  # channels last, the renderer's layout
    out = random_backgrounds(rgba[:, :3].permute(*last), rgba[:, 3:].permute(*last), prob, generator)
    return out.permute(0, 3, 1, 2)


@dataclass
class TrainClassifierConfig:
    """Train the shape/colour evaluation classifier on world renders (held-out objects for testing)."""

    out: Path = SHIPPED_CLASSIFIER
    """Folder for model.safetensors + config.json (default: the package's shipped classifier)."""
    train_objects: int = 1500
    """Random primitives for training."""
    test_objects: int = 300
    """Other random primitives (another seed) for the held-out accuracy."""
    views: int = 4
    """Random views per object."""
    resolution: int = 32
    """Image size."""
    steps: int = 1500
    """Optimisation steps."""
    batch_size: int = 64
    """Images per step."""
    lr: float = 2e-3
    """Adam learning rate (cosine decay)."""
    seed: int = 7
    """Seed (differs from the prior's so the judge sees other objects)."""
    random_background_prob: float = 0.0
    """Share of the training images (one coin per image and step) drawn over a uniformly random
    colour instead of white, so that the judge also reads objects on coloured backgrounds (the
    bundled prior's samples, session 37). The held-out accuracy is reported on white and on random
    backgrounds."""
    overwrite: bool = False
    """Replace an existing classifier in ``out``."""


CLASSIFIER_FILES = ("model.safetensors", "config.json", "train_config.yaml")


def run_train_classifier(cfg: TrainClassifierConfig) -> None:
    check_output_folder(cfg.out, overwrite=cfg.overwrite, owns=CLASSIFIER_FILES)
    cams = CameraSamplerConfig()
    t0 = time.time()
    x, ys, yc, shapes, colors = render_labelled(cfg.train_objects, cfg.views, cfg.resolution, cfg.seed, cams, alpha=True)
    xt, yst, yct, _, _ = render_labelled(cfg.test_objects, cfg.views, cfg.resolution, cfg.seed + 1000, cams, alpha=True)
    info(f"rendered {len(x)} train / {len(xt)} held-out views in {time.time() - t0:.0f} s")
    torch.manual_seed(cfg.seed)
    model = ShapeColorClassifier(ClassifierConfig(shapes, colors, cfg.resolution))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    bar = progress(range(cfg.steps), desc="train-classifier", unit="step")
    for _ in bar:
        idx = torch.randint(0, len(x), (cfg.batch_size,), generator=gen)
        ls, lc = model(augment(over_random_backgrounds(x[idx], cfg.random_background_prob, gen), gen))
        loss = F.cross_entropy(ls, ys[idx]) + F.cross_entropy(lc, yc[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    acc = classifier_accuracy(model, xt[:, :3], yst, yct)
    info(f"held-out accuracy: shape {acc['shape']:.3f}, colour {acc['color']:.3f}")
    coloured = over_random_backgrounds(xt, 1.0, torch.Generator().manual_seed(cfg.seed + 1000))
    acc_bg = classifier_accuracy(model, coloured, yst, yct)
    acc["random_background"] = acc_bg
    info(f"held-out accuracy on random backgrounds: shape {acc_bg['shape']:.3f}, colour {acc_bg['color']:.3f}")
    with output_folder(cfg.out, overwrite=cfg.overwrite, owns=CLASSIFIER_FILES) as out:
        model.save_pretrained(out, info={"heldout_accuracy": acc, "training": {
            "objects": cfg.train_objects, "views": cfg.views, "steps": cfg.steps, "seed": cfg.seed,
            "random_background_prob": cfg.random_background_prob}})
        save_config(cfg, out / "train_config.yaml", command="train-classifier")


@torch.no_grad()
def classifier_accuracy(model: ShapeColorClassifier, x: Tensor, ys: Tensor, yc: Tensor) -> dict[str, float]:
    model.eval()
    ps, pc = [], []
    for i in range(0, len(x), 256):
        s, c = model(x[i : i + 256])
        ps.append(s.argmax(-1))
        pc.append(c.argmax(-1))
    ps, pc = torch.cat(ps), torch.cat(pc)
    return {
        "shape": (ps == ys).float().mean().item(),
        "color": (pc == yc).float().mean().item(),
        "both": ((ps == ys) & (pc == yc)).float().mean().item(),
    }
