"""``dreamfusion3d evaluate-prior``: the measurement of a text prior.

Samples K images per caption from a text prior with CFG and lets the judge
(:mod:`dreamfusion3d.judge`) report shape and colour accuracy per caption and overall, for
training phrasings and for paraphrases that never occur in training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..judge.model import ShapeColorClassifier
from ..utils.config import save_config
from ..utils.device import resolve_device
from ..utils.io import write_json_atomic, write_text_atomic
from ..utils.logging import info, progress
from ..utils.outdir import check_output_folder, output_folder


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
    from ..world import COLORS, SHAPES, caption, primitive_scene

    rng = np.random.default_rng(seed)
    return [
        (caption(primitive_scene(s, c), view=None, rng=rng, paraphrase=paraphrase), s, c)
        for s in SHAPES
        for c in COLORS
    ]


def run_evaluate_prior(cfg: EvaluatePriorConfig) -> None:
    from . import SentenceEncoder, TextPriorModel
    from .train import sample_images, save_grid

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
