"""The judge applied to a generate run: render it and name shape and colour of every view."""

from __future__ import annotations

from pathlib import Path

import torch

from .model import ShapeColorClassifier


@torch.no_grad()
def judge_generation(run_dir: Path, num_views: int = 8, seed: int = 0, classifier: Path | None = None,
                     device: str = "cpu") -> dict:
    """Render a generate run from random cameras (32 px, lambertian, white background) and let the
    evaluation classifier name shape and colour of every view (``dreamfusion3d evaluate`` does
    this and more for many runs)."""
    from .views import judge_images, render_judged_views
    from ..representations import load_representation

    renderer, extra = load_representation(run_dir, device=device)
    judge = ShapeColorClassifier.from_pretrained(classifier, device=device)
    images = judge_images(render_judged_views(renderer, num_views, seed, 32, device=device))
    shapes, colors = judge.predict(images)
    return {"prompt": extra.get("prompt"), "shapes": shapes, "colors": colors, "images": images}
