"""The prior's training renders recomposited over random background colours."""

import pytest
import torch
import torch.nn.functional as F

from dreamfusion3d.cameras import CameraSamplerConfig, sample_cameras
from dreamfusion3d.cli import main
from dreamfusion3d.text_prior.data import PriorDataConfig, build_prior_dataset, training_images
from dreamfusion3d.world import random_scene, render_scene


def test_recomposited_render_matches_the_world_drawn_over_that_colour():
    """A render over white + its alpha, stored as the dataset stores them (supersampled, uint8) and
    recomposited, equals the world renderer's own composite over the new colour to uint8 rounding."""
    cfg = PriorDataConfig(num_scenes=2, views_per_scene=3, supersample=2)
    images, captions, _ = build_prior_dataset(cfg, 16, seed=5)
    assert images.shape == (6, 4, 16, 16) and images.dtype == torch.uint8 and len(captions) == 6
    alpha = images[:, 3].float() / 255
    assert (alpha == 0).any() and (alpha == 1).any() and ((alpha > 0) & (alpha < 1)).any()

    scene = random_scene(3)
    cams, _, _ = sample_cameras(CameraSamplerConfig(), 4, 32, generator=torch.Generator().manual_seed(3))
    white = render_scene(scene, cams)
    rgba = torch.cat([white["rgb"], white["alpha"]], -1).permute(0, 3, 1, 2)
    stored = (F.avg_pool2d(rgba, 2).clamp(0, 1) * 255).round().to(torch.uint8)
    out = (training_images(stored, 1.0, torch.Generator().manual_seed(0)) + 1) / 2
    assert out.shape == (4, 3, 16, 16)
    transparent = stored[:, 3] == 0
    partial = (stored[:, 3] > 0) & (stored[:, 3] < 255)
    assert transparent.flatten(1).any(1).all() and partial.any()
    for i in range(4):  # the colour each image got, read at a transparent pixel, drawn by the world
        ys, xs = torch.nonzero(transparent[i], as_tuple=True)
        colour = out[i, :, ys[0], xs[0]]
        assert (colour - 1).abs().max() > 0.05  # not white
        drawn = render_scene(scene, cams[i : i + 1], background=colour.tolist())["rgb"].permute(0, 3, 1, 2)
        torch.testing.assert_close(out[i : i + 1], F.avg_pool2d(drawn, 2), rtol=0, atol=2.5 / 255)


def test_prob_zero_is_the_plain_white_renders_and_prob_one_changes_every_background():
    images = torch.zeros(8, 4, 4, 4, dtype=torch.uint8)
    images[:, :3] = 255  # white background everywhere ...
    images[:, :, 1:3, 1:3] = torch.tensor([200, 10, 10, 255], dtype=torch.uint8)[:, None, None]  # ... a red opaque centre
    plain = training_images(images, 0.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(plain, images[:, :3].float() / 127.5 - 1)
    mixed = training_images(images, 1.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(mixed[:, :, 1:3, 1:3], plain[:, :, 1:3, 1:3])  # the opaque object is kept
    corner = mixed[:, :, 0, 0]
    assert (corner < 0.999).any(dim=1).all()  # every background recoloured
    assert corner.std(0).min() > 0.1  # and not all to one colour
    half = training_images(images, 0.5, torch.Generator().manual_seed(1))[:, :, 0, 0]
    white = (half > 0.999).all(dim=1)
    assert 0 < int(white.sum()) < 8
    with pytest.raises(ValueError, match="alpha"):
        training_images(images[:, :3], 0.5, torch.Generator())


def test_an_old_cache_without_alpha_is_one_clear_error_and_the_range_is_checked(tmp_path, capsys):
    import json
    from types import SimpleNamespace

    from safetensors.torch import save_file

    from dreamfusion3d.text_prior.data import load_or_build_dataset
    from dreamfusion3d.utils.errors import UserError

    save_file({"images": torch.zeros(2, 3, 16, 16, dtype=torch.uint8)}, str(tmp_path / "dataset.safetensors"))
    (tmp_path / "dataset_captions.json").write_text(json.dumps({"captions": ["a red cube", "a blue cone"]}))
    cfg = SimpleNamespace(out=tmp_path, data=PriorDataConfig(random_background_prob=0.5))
    with pytest.raises(UserError, match="without alpha"):
        load_or_build_dataset(cfg)
    cfg.data.random_background_prob = 0.0  # the old cache still trains on white
    images, captions = load_or_build_dataset(cfg)
    assert images.shape == (2, 3, 16, 16) and captions == ["a red cube", "a blue cone"]

    out = tmp_path / "run"
    assert main(["train-prior", "--out", str(out), "--steps", "1", "--data.random-background-prob", "1.5", "--quiet"]) == 2
    assert "random-background-prob" in capsys.readouterr().err
    assert not out.exists()


def test_the_judges_labelled_views_with_alpha_are_the_same_views():
    from dreamfusion3d.judge.train import render_labelled

    a = render_labelled(3, 2, 16, seed=11, cameras=CameraSamplerConfig(), alpha=True)
    b = render_labelled(3, 2, 16, seed=11, cameras=CameraSamplerConfig())
    assert a[0].shape == (6, 4, 16, 16) and b[0].shape == (6, 3, 16, 16)
    torch.testing.assert_close(a[0][:, :3], b[0], rtol=0, atol=0)
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    alpha = a[0][:, 3]
    assert (alpha == 0).any() and (alpha == 1).any()
