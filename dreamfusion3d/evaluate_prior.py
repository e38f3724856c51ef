"""The judge and the measurement of the bundled prior.

* ``dreamfusion3d train-classifier``: trains the shape/colour evaluation classifier on world renders
  (own seed, object-level hold-out) and reports its held-out accuracy.
* ``dreamfusion3d evaluate-prior``: samples K images per caption from a text prior with CFG and
  reports shape and colour accuracy per caption and overall, for training phrasings and for
  paraphrases that never occur in training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .cameras import CameraSamplerConfig, sample_cameras
from .models.classifier import SHIPPED_CLASSIFIER, ClassifierConfig, ShapeColorClassifier, augment
from .utils.config import save_config
from .utils.device import resolve_device
from .utils.io import write_json_atomic, write_text_atomic
from .utils.logging import info, progress
from .utils.outdir import check_output_folder, output_folder


def render_labelled(
    num_objects: int, views: int, resolution: int, seed: int, cameras: CameraSamplerConfig, supersample: int = 2
) -> tuple[Tensor, Tensor, Tensor, tuple[str, ...], tuple[str, ...]]:
    """Views of random single primitives: images ``[N,3,H,W]`` in [0,1], shape ids, colour ids."""
    from .world import COLORS, SHAPES, primitive_scene, render_scene

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    shapes, colors = tuple(SHAPES), tuple(COLORS)
    images, shape_ids, color_ids = [], [], []
    for _ in progress(range(num_objects), desc="rendering labelled views", unit="object"):
        s, c = int(rng.integers(len(shapes))), int(rng.integers(len(colors)))
        scene = primitive_scene(shapes[s], colors[c], seed=int(rng.integers(2**31)))
        cams, _, _ = sample_cameras(cameras, views, resolution * supersample, generator=gen)
        rgb = render_scene(scene, cams)["rgb"].permute(0, 3, 1, 2)
        images.append(F.avg_pool2d(rgb, supersample) if supersample > 1 else rgb)
        shape_ids += [s] * views
        color_ids += [c] * views
    return torch.cat(images).clamp(0, 1), torch.tensor(shape_ids), torch.tensor(color_ids), shapes, colors


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
    overwrite: bool = False
    """Replace an existing classifier in ``out``."""


CLASSIFIER_FILES = ("model.safetensors", "config.json", "train_config.yaml")


def run_train_classifier(cfg: TrainClassifierConfig) -> None:
    check_output_folder(cfg.out, overwrite=cfg.overwrite, owns=CLASSIFIER_FILES)
    cams = CameraSamplerConfig()
    t0 = time.time()
    x, ys, yc, shapes, colors = render_labelled(cfg.train_objects, cfg.views, cfg.resolution, cfg.seed, cams)
    xt, yst, yct, _, _ = render_labelled(cfg.test_objects, cfg.views, cfg.resolution, cfg.seed + 1000, cams)
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
        ls, lc = model(augment(x[idx], gen))
        loss = F.cross_entropy(ls, ys[idx]) + F.cross_entropy(lc, yc[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    acc = classifier_accuracy(model, xt, yst, yct)
    info(f"held-out accuracy: shape {acc['shape']:.3f}, colour {acc['color']:.3f}")
    with output_folder(cfg.out, overwrite=cfg.overwrite, owns=CLASSIFIER_FILES) as out:
        model.save_pretrained(out, info={"heldout_accuracy": acc, "training": {
            "objects": cfg.train_objects, "views": cfg.views, "steps": cfg.steps, "seed": cfg.seed}})
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


@dataclass
class EvaluatePriorConfig:
    """Sample K images per caption from a text prior and judge them with the evaluation classifier."""

    out: Path = Path("outputs/evaluate_prior")
    """Folder for results.json, results.md and sample grids."""
    overwrite: bool = False
    """Replace a non-empty --out folder (the new results are swapped in only when all are done)."""
    prior: Path | None = None
    """Text-prior folder (default: the shipped one)."""
    classifier: Path | None = None
    """Classifier folder (default: the shipped one)."""
    samples_per_caption: int = 8
    """K images per caption."""
    steps: int = 50
    """DDIM steps."""
    guidance_scale: float = 5.0
    """Classifier-free guidance scale."""
    sampler: Literal["ddim", "dpmsolver"] = "ddim"
    """Sampler: DDIM, or DPM-Solver++ (as good at 25 steps as DDIM at 50)."""
    paraphrases: bool = True
    """Also evaluate paraphrased captions (words never used in training)."""
    seed: int = 0
    """Sampling seed."""
    device: str = "auto"
    """auto (cuda:LOCAL_RANK if CUDA is available, else cpu), cpu, cuda, cuda:N, mps."""


def evaluation_captions(paraphrase: bool, seed: int = 0) -> list[tuple[str, str, str]]:
    """(caption, shape, colour) for every shape × colour of the world."""
    from .world import COLORS, SHAPES, caption, primitive_scene

    rng = np.random.default_rng(seed)
    return [
        (caption(primitive_scene(s, c), view=None, rng=rng, paraphrase=paraphrase), s, c)
        for s in SHAPES
        for c in COLORS
    ]


def run_evaluate_prior(cfg: EvaluatePriorConfig) -> None:
    from .models import SentenceEncoder, TextPriorModel
    from .train_prior import sample_images, save_grid

    cfg.device = str(resolve_device(cfg.device))
    check_output_folder(cfg.out, overwrite=cfg.overwrite)
    model = TextPriorModel.from_pretrained(cfg.prior, device=cfg.device)
    judge = ShapeColorClassifier.from_pretrained(cfg.classifier, device=cfg.device)
    encoder = SentenceEncoder.from_pretrained(model.text_encoder_id, device=cfg.device)
    with output_folder(cfg.out, overwrite=cfg.overwrite, staged=True) as out:
        save_config(cfg, out / "config.yaml", command="evaluate-prior")
        results: dict[str, dict] = {}
        t0 = time.time()
        for split, para in (("training", False), ("paraphrase", True)):
            if para and not cfg.paraphrases:
                continue
            rows = []
            gen = torch.Generator().manual_seed(cfg.seed)
            grid = []
            for text, shape, color in progress(evaluation_captions(para), desc=f"evaluate-prior ({split})", unit="caption"):
                imgs = sample_images(model, encoder, [text] * cfg.samples_per_caption, cfg.steps, cfg.guidance_scale, gen,
                                     cfg.device, cfg.sampler)
                ps, pc = judge.predict(imgs.to(cfg.device))
                rows.append({
                    "caption": text, "shape": shape, "color": color,
                    "shape_acc": float(np.mean([p == shape for p in ps])),
                    "color_acc": float(np.mean([p == color for p in pc])),
                    "both_acc": float(np.mean([a == shape and b == color for a, b in zip(ps, pc)])),
                })
                grid.append(imgs[:8])
            save_grid(torch.cat(grid), out / f"samples_{split}.png", ncol=8, scale=1)
            results[split] = {
                "captions": rows,
                "shape_acc": float(np.mean([r["shape_acc"] for r in rows])),
                "color_acc": float(np.mean([r["color_acc"] for r in rows])),
                "both_acc": float(np.mean([r["both_acc"] for r in rows])),
            }
            info(f"{split}: shape {results[split]['shape_acc']:.3f}, colour {results[split]['color_acc']:.3f}")
        results["settings"] = {"samples_per_caption": cfg.samples_per_caption, "steps": cfg.steps, "sampler": cfg.sampler,
                               "guidance_scale": cfg.guidance_scale, "seconds": time.time() - t0}
        write_json_atomic(out / "results.json", results)
        lines = ["| split | caption | shape acc | colour acc |", "|---|---|---|---|"]
        for split in ("training", "paraphrase"):
            if split in results:
                r = results[split]
                lines += [f"| {split} | {row['caption']} | {row['shape_acc']:.2f} | {row['color_acc']:.2f} |" for row in r["captions"]]
                lines.append(f"| **{split}** | **overall** | **{r['shape_acc']:.3f}** | **{r['color_acc']:.3f}** |")
        write_text_atomic(out / "results.md", "\n".join(lines) + "\n")
    info(f"results in {cfg.out / 'results.md'}")


@torch.no_grad()
def judge_generation(run_dir: Path, num_views: int = 8, seed: int = 0, classifier: Path | None = None,
                     device: str = "cpu") -> dict:
    """Render a generate run from random cameras (32 px, lambertian, white background) and let the
    evaluation classifier name shape and colour of every view (``dreamfusion3d evaluate`` does
    this and more for many runs)."""
    from .evaluation.views import judge_images, render_views
    from .representations import load_representation

    renderer, extra = load_representation(run_dir, device=device)
    judge = ShapeColorClassifier.from_pretrained(classifier, device=device)
    images = judge_images(render_views(renderer, num_views, seed, 32, device=device))
    shapes, colors = judge.predict(images)
    return {"prompt": extra.get("prompt"), "shapes": shapes, "colors": colors, "images": images}
