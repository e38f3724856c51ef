"""CLIP scores against the model's own forward pass."""

import pytest
import torch

from dreamfusion3d.evaluation.clip import ClipScorer
from dreamfusion3d.utils.errors import UserError


def test_clip_scores_match_the_models_logits(tiny_clip):
    scorer = ClipScorer(str(tiny_clip))
    images = torch.rand(3, 3, 24, 24)
    texts = ["a red cube", "a blue sphere"]
    scores = scorer.scores(images, texts)  # [3, 2] cosine similarities
    assert scores.shape == (3, 2) and (scores.abs() <= 1 + 1e-5).all()
    inputs = scorer.processor(text=texts, images=list(images), return_tensors="pt", padding=True, do_rescale=False)
    with torch.no_grad():
        logits = scorer.model(**inputs).logits_per_image
    assert torch.allclose(scores * scorer.model.logit_scale.exp(), logits, atol=1e-4)


def test_missing_clip_model_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot load CLIP model"):
        ClipScorer(str(tmp_path / "nothing"))
