"""train-prior end to end on a tiny configuration, the shipped prior, and the shipped judge."""

import json

import pytest
import torch
from safetensors.torch import load_file

from dreamfusion3d.cli import main
from dreamfusion3d.text_prior import SHIPPED_PRIOR, SentenceEncoder, TextPriorModel
from dreamfusion3d.judge.model import SHIPPED_CLASSIFIER, ShapeColorClassifier

TINY = [
    "--batch-size", "4", "--arch.resolution", "16", "--arch.block-out-channels", "8", "16",
    "--arch.layers-per-block", "1", "--arch.norm-num-groups", "4", "--data.num-scenes", "4",
    "--data.views-per-scene", "2", "--data.supersample", "1", "--sample-every", "0", "--warmup-steps", "2",
    "--quiet",
]


@pytest.mark.slow
def test_resume_in_chunks_matches_an_uninterrupted_run(tmp_path):
    straight = tmp_path / "straight"
    assert main(["train-prior", "--out", str(straight), "--steps", "6", *TINY]) == 0
    # a second run into the same folder without --resume is refused (nothing overwritten)
    before = (straight / "checkpoints" / "latest" / "tensors.safetensors").read_bytes()
    assert main(["train-prior", "--out", str(straight), "--steps", "6", *TINY]) == 2
    assert (straight / "checkpoints" / "latest" / "tensors.safetensors").read_bytes() == before

    chunked = tmp_path / "chunked"
    assert main(["train-prior", "--out", str(chunked), "--steps", "6", "--session-steps", "3", *TINY]) == 0
    state = json.loads((chunked / "checkpoints" / "latest" / "state.json").read_text())
    assert state["state"]["step"] == 3 and not (chunked / "prior").exists()
    assert main(["train-prior", "--out", str(chunked), "--steps", "6", "--resume", *TINY]) == 0
    a = load_file(str(straight / "checkpoints" / "latest" / "tensors.safetensors"))
    b = load_file(str(chunked / "checkpoints" / "latest" / "tensors.safetensors"))
    assert a.keys() == b.keys()
    for k in a:  # weights, EMA, optimizer moments and the data RNG
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    logs = [json.loads(line) for line in (chunked / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == [1, 2, 3, 4, 5, 6]
    assert (chunked / "prior" / "prior.json").is_file()


@pytest.mark.skipif(not (SHIPPED_PRIOR / "prior.json").is_file(), reason="the shipped prior is not in this checkout")
def test_shipped_prior_loads_offline_and_is_small():
    model = TextPriorModel.from_pretrained()
    assert model.resolution == 32
    size = sum(p.stat().st_size for p in SHIPPED_PRIOR.rglob("*") if p.is_file())
    assert size < 20 * 2**20
    enc = SentenceEncoder.from_pretrained(model.text_encoder_id)
    with torch.no_grad():
        eps = model(torch.zeros(1, 3, 32, 32), torch.tensor([500]), enc.encode(["a red cube"]))
    assert eps.shape == (1, 3, 32, 32) and torch.isfinite(eps).all()


@pytest.mark.slow
@pytest.mark.skipif(not (SHIPPED_CLASSIFIER / "config.json").is_file(), reason="the shipped classifier is not in this checkout")
def test_shipped_classifier_is_a_good_judge_on_unseen_renders():
    """≥ 95% shape and colour accuracy on freshly rendered objects it never saw (new seed), over
    white and over random background colours (the bundled prior draws its samples over those)."""
    from dreamfusion3d.cameras import CameraSamplerConfig
    from dreamfusion3d.judge.train import classifier_accuracy, over_random_backgrounds, render_labelled

    judge = ShapeColorClassifier.from_pretrained()
    x, ys, yc, shapes, colors = render_labelled(120, 2, 32, seed=424242, cameras=CameraSamplerConfig(), alpha=True)
    assert tuple(judge.config.shapes) == shapes and tuple(judge.config.colors) == colors
    acc = classifier_accuracy(judge, x[:, :3], ys, yc)
    assert acc["shape"] >= 0.95 and acc["color"] >= 0.95, acc
    coloured = over_random_backgrounds(x, 1.0, torch.Generator().manual_seed(0))
    assert ((coloured - x[:, :3]).abs().amax(dim=(1, 2, 3)) > 0.05).float().mean() > 0.9  # backgrounds changed
    acc = classifier_accuracy(judge, coloured, ys, yc)
    assert acc["shape"] >= 0.95 and acc["color"] >= 0.95, acc


@pytest.mark.slow
@pytest.mark.skipif(not (SHIPPED_PRIOR / "prior.json").is_file(), reason="the shipped prior is not in this checkout")
@pytest.mark.parametrize("sampler,steps", [("ddim", 50), ("dpmsolver", 25)])
def test_shipped_prior_draws_the_shape_and_colour_it_is_asked_for(sampler, steps):
    """Samples of the shipped prior, judged by the shipped classifier: a regression guard on the
    model and on the sampling path (x0 clipping once held shape accuracy at 0.4)."""
    from dreamfusion3d.text_prior.sampling import sample_images

    model = TextPriorModel.from_pretrained()
    assert model.scheduler.config.clip_sample is False
    enc = SentenceEncoder.from_pretrained(model.text_encoder_id)
    judge = ShapeColorClassifier.from_pretrained()
    cases = [("sphere", "blue"), ("cube", "red"), ("cylinder", "green"), ("torus", "purple"), ("cube", "yellow"),
             ("cylinder", "orange")]
    prompts = [f"a {c} {s}" for s, c in cases for _ in range(2)]
    imgs = sample_images(model, enc, prompts, steps, 5.0, torch.Generator().manual_seed(0), sampler=sampler)
    shapes, colors = judge.predict(imgs)
    want = [(s, c) for s, c in cases for _ in range(2)]
    shape_acc = sum(p == s for p, (s, _) in zip(shapes, want)) / len(want)
    color_acc = sum(p == c for p, (_, c) in zip(colors, want)) / len(want)
    assert shape_acc >= 0.75 and color_acc >= 0.75, (shape_acc, color_acc, shapes, colors)


def test_unknown_sampler_is_a_user_error():
    from dreamfusion3d.text_prior.sampling import sample_images
    from dreamfusion3d.utils.errors import UserError

    with pytest.raises(UserError, match="unknown sampler"):
        sample_images(None, None, ["a red cube"], sampler="euler")
