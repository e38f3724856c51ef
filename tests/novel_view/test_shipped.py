"""The shipped novel-view weights, measured on objects they were never trained on.

The objects come from the world generator with a seed that neither training dataset used, so
this is a small held-out evaluation that runs in CI; the full one is ``evaluate-novel-view``
(docs/RESULTS.md).
"""

import pytest
import torch

from dreamfusion3d.novel_view.data import load_view_set
from dreamfusion3d.novel_view.evaluate import input_and_targets, score
from dreamfusion3d.novel_view.model import NovelViewModel
from dreamfusion3d.novel_view.sampling import GUIDANCE_SCALE, INPUT_WEIGHT, generation_order, sample_views

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def unseen_objects(tmp_path_factory):
    """(model, source [B,3,R,R], src_sph [B,3], truth [B,K,3,R,R], tgt_sph [B,K,3]) of 8 fresh objects."""
    from dreamfusion3d.world.dataset import MakeDatasetConfig, write_dataset

    model = NovelViewModel.from_pretrained(None)
    root = write_dataset(MakeDatasetConfig(out=tmp_path_factory.mktemp("unseen") / "ds", num_objects=8, views=12,
                                           val_views=0, test_views=0, resolution=model.resolution,
                                           val_fraction=0.0, test_fraction=0.0, seed=11))
    return (model, *input_and_targets(load_view_set(root, "train", model.resolution), model, 4))


@pytest.mark.parametrize("stochastic", [True, False], ids=["stochastic", "single_view"])
def test_shipped_model_beats_copying_the_input(unseen_objects, stochastic):
    model, source, src_sph, truth, tgt_sph = unseen_objects
    views = sample_views(model, source, src_sph, tgt_sph, steps=50, guidance_scale=GUIDANCE_SCALE,
                         stochastic=stochastic, input_weight=INPUT_WEIGHT, generator=torch.Generator().manual_seed(0),
                         order=generation_order(src_sph[0], tgt_sph[0]))
    copy = score(source[:, None].expand_as(truth), truth)["psnr"]
    generated = score(views, truth)["psnr"]
    # Defaults (50 steps, guidance 2, input weight 0.75) on these 8 objects x 4 targets, copy 19.47 dB:
    # the shipped 14,715-step model is +5.00 stochastic / +5.09 single-view. The bar sits 1 dB
    # below that and above the issue's +3 dB; the 6,860-step model (+3.23 / +3.21) and the
    # 3,087-step model (-9.8 / -8.9 at guidance 2) would fail it (scripts/probe_novel_view_unseen.py).
    assert generated - copy >= 4.0, f"generated {generated:.2f} dB vs copy {copy:.2f} dB"
