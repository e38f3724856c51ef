"""Caption-embedding normalisation of the bundled prior: function-preserving when set, folded into
the weights on save, and carried through fine-tuning (``--init-from``) and checkpoint export."""

import copy

import pytest
import torch

from dreamfusion3d.cli import main
from dreamfusion3d.text_prior import TextPriorArchitecture, TextPriorModel
from dreamfusion3d.text_prior.train import export_checkpoint, text_normalisation

from tests.text_prior.test_train_prior import TINY

ARCH = TextPriorArchitecture(resolution=16, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4)


def _inputs(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 16, 16, generator=g)
    t = torch.tensor([10, 500, 990][:n])
    emb = torch.nn.functional.normalize(torch.randn(n, 384, generator=g) + 3.0, dim=-1)  # shared direction, like MiniLM
    return x, t, emb


def test_setting_the_normalisation_keeps_the_function():
    model = TextPriorModel.from_architecture(ARCH).eval()
    x, t, emb = _inputs()
    with torch.no_grad():
        before = model(x, t, emb)
        model.set_text_normalisation(emb.mean(0), 37.0)
        after = model(x, t, emb)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        model.set_text_normalisation(emb.mean(0), 2.0)


def test_normalised_forward_matches_a_plain_unet_fed_by_hand_and_save_folds_it(tmp_path):
    model = TextPriorModel.from_architecture(ARCH).eval()
    x, t, emb = _inputs()
    mean = emb.mean(0)
    model.set_text_normalisation(mean, 25.0)
    with torch.no_grad():  # "training" moves the projection away from the folded initialisation
        model.unet.class_embedding.linear_1.weight.add_(0.05 * torch.randn_like(model.unet.class_embedding.linear_1.weight))
        out = model(x, t, emb)
    # reference: the same weights, no normalisation in the model, the affine map applied by hand
    plain = TextPriorModel(copy.deepcopy(model.unet), model.scheduler, 16).eval()
    with torch.no_grad():
        ref = plain(x, t, (emb - mean) * 25.0)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    # a saved model takes raw embeddings: the map is folded into its weights
    model.save_pretrained(tmp_path / "prior")
    loaded = TextPriorModel.from_pretrained(tmp_path / "prior")
    assert loaded.text_mean is None
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, t, emb), out, rtol=1e-4, atol=1e-5)
    # and the model's own weights were left in the normalised space
    with torch.no_grad():
        torch.testing.assert_close(model(x, t, emb), out)


def test_statistics_centre_and_scale_to_unit_rms():
    table = torch.nn.functional.normalize(torch.randn(50, 384) + 2.0, dim=-1)
    mean, scale = text_normalisation(table)
    z = (table - mean) * scale
    assert z.mean(0).abs().max() < 1e-5
    assert abs(float(z.pow(2).mean()) - 1.0) < 1e-4
    assert scale > 5  # the raw differences are small, hence the point of scaling them


@pytest.mark.slow
def test_fine_tuning_with_zero_lr_round_trips_the_initial_prior(tmp_path, tiny_prior):
    """init-from → normalise → train (lr 0) → fold on export gives back the starting prior."""
    run = tmp_path / "ft"
    args = ["train-prior", "--out", str(run), "--steps", "3", "--lr", "0", "--init-from", str(tiny_prior), *TINY]
    assert main(args) == 0
    start = TextPriorModel.from_pretrained(tiny_prior)
    final = TextPriorModel.from_pretrained(run / "prior")
    assert export_checkpoint(run, tmp_path / "exported") == 3
    exported = TextPriorModel.from_pretrained(tmp_path / "exported")
    x, t, emb = _inputs()
    with torch.no_grad():
        want = start(x, t, emb)
        torch.testing.assert_close(final(x, t, emb), want, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(exported(x, t, emb), want, rtol=1e-4, atol=1e-5)
    # with a real learning rate the weights move, and the export still equals the run's own model
    run2 = tmp_path / "ft2"
    assert main(["train-prior", "--out", str(run2), "--steps", "3", "--lr", "0.01", "--init-from", str(tiny_prior), *TINY]) == 0
    assert export_checkpoint(run2, tmp_path / "exported2") == 3
    with torch.no_grad():
        moved = TextPriorModel.from_pretrained(run2 / "prior")(x, t, emb)
        assert (moved - want).abs().max() > 1e-4
        torch.testing.assert_close(TextPriorModel.from_pretrained(tmp_path / "exported2")(x, t, emb), moved, rtol=1e-4, atol=1e-5)


def test_init_from_a_prior_of_another_shape_is_one_clear_error(tmp_path, tiny_prior, capsys):
    args = ["train-prior", "--out", str(tmp_path / "bad"), "--steps", "1", "--init-from", str(tiny_prior), *TINY,
            "--arch.block-out-channels", "8", "8"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not match the configured architecture" in err[0]
