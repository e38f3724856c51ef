"""`dreamfusion3d sample`: images from a prior with a diffusers scheduler, written safely."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import yaml

from dreamfusion3d.cli import main
from dreamfusion3d.guidance import ExactPrior
from dreamfusion3d.guidance.sampling import sample_images


def test_sample_stable_diffusion_writes_pngs_grid_and_config(tiny_sd_folder, tmp_path):
    out = tmp_path / "samples"
    args = ["sample", "--prompt", "a red cube", "--out", str(out), "--prior.kind", "stable-diffusion",
            "--prior.model", str(tiny_sd_folder), "--prior.vae-resolution", "32", "--steps", "3",
            "--num-images", "3", "--seed", "1", "--quiet"]
    assert main(args) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["config.yaml", "grid.png", "sample_000.png", "sample_001.png", "sample_002.png"]
    img = iio.imread(out / "sample_000.png")
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert iio.imread(out / "grid.png").shape == (2 * 32 + 2, 2 * 32 + 2, 3)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["command"] == "sample" and cfg["steps"] == 3 and cfg["prior"]["kind"] == "stable-diffusion"
    before = (out / "sample_000.png").read_bytes()
    assert main(args) == 2  # refuses to overwrite
    assert (out / "sample_000.png").read_bytes() == before


def test_sample_deepfloyd_pixel_path(tiny_if_folder, tmp_path):
    out = tmp_path / "if"
    assert main(["sample", "--prompt", "a red cube", "--out", str(out), "--prior.kind", "deepfloyd-if",
                 "--prior.model", str(tiny_if_folder), "--steps", "2", "--num-images", "1", "--view", "front",
                 "--quiet"]) == 0
    assert iio.imread(out / "sample_000.png").shape == (16, 16, 3)


def test_ddim_with_the_exact_prior_lands_on_training_images(tmp_path):
    """Deterministic DDIM with the exact denoiser maps noise onto the data set: an end-to-end check
    of the sampler, the scheduler conversion and the prompt subset."""
    g = torch.Generator().manual_seed(0)
    data = torch.rand(4, 3, 8, 8, generator=g)
    prior = ExactPrior(data, captions={"left": [0, 1], "right": [2, 3]})
    images = sample_images(prior, "right", 6, steps=50, guidance_scale=1.0, generator=g, show_progress=False)
    q = (data * 255).round() / 255
    mse = (images[:, None] - q[None]).pow(2).flatten(2).mean(2)  # [6, 4]
    assert (mse.min(1).values < 1e-3).all()
    assert set(mse.argmin(1).tolist()) <= {2, 3}


def test_sample_exact_prior_from_a_folder(tmp_path):
    g = torch.Generator().manual_seed(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    data = (torch.rand(3, 8, 8, 3, generator=g) * 255).to(torch.uint8).numpy()
    for i, a in enumerate(data):
        iio.imwrite(folder / f"img{i}.png", a)
    (folder / "captions.json").write_text(json.dumps({"a red cube": ["img1.png"]}))
    out = tmp_path / "out"
    assert main(["sample", "--prompt", "a red cube", "--out", str(out), "--prior.kind", "exact",
                 "--prior.model", str(folder), "--steps", "30", "--num-images", "2", "--guidance-scale", "1",
                 "--quiet"]) == 0
    got = iio.imread(out / "sample_001.png").astype(np.float32)
    assert np.abs(got - data[1].astype(np.float32)).mean() < 2.0


@pytest.mark.slow
def test_sample_from_the_novel_view_prior_given_an_image(tmp_path, capsys):
    """`sample --prior.kind novel_view --image IMG` draws through the generic prior interface (ε from
    v, DDIM from the prior's scheduler, the image condition) what the novel-view model's own
    sampler draws from the same noise."""
    from dreamfusion3d.cameras import orbit_cameras
    from dreamfusion3d.novel_view.images import load_input_image
    from dreamfusion3d.novel_view.model import SHIPPED_MODEL, NovelViewModel
    from dreamfusion3d.novel_view.sampling import sample_views
    from dreamfusion3d.world import primitive_scene, render_scene

    model = NovelViewModel.from_pretrained(SHIPPED_MODEL)
    cam = model.camera
    r = render_scene(primitive_scene("cube", "red", seed=1),
                     orbit_cameras([0.0], [cam.elevation], cam.radius, cam.fov_y_deg, 64), supersample=2)
    image = tmp_path / "cube.png"
    iio.imwrite(image, (torch.cat([r["rgb"], r["alpha"]], -1)[0].numpy() * 255 + 0.5).astype(np.uint8))
    out = tmp_path / "views"
    assert main(["sample", "--prior.kind", "novel_view", "--image", str(image), "--azimuth", "60", "--out", str(out),
                 "--steps", "20", "--num-images", "1", "--guidance-scale", "2", "--seed", "0", "--quiet"]) == 0
    sample = torch.from_numpy(iio.imread(out / "sample_000.png")).permute(2, 0, 1).float() / 255.0

    source = load_input_image(image, 32, cam.object_fraction)
    src = torch.tensor([[0.0, cam.elevation, cam.radius]])
    native = sample_views(model, source[None], src, torch.tensor([[[60.0, cam.elevation, cam.radius]]]), steps=20,
                          guidance_scale=2.0, stochastic=False, generator=torch.Generator().manual_seed(0))[0, 0]
    assert (sample - native).abs().mean() < 0.01  # same draw (the input is centred at another size first)
    other = sample_views(model, source[None], src, torch.tensor([[[200.0, cam.elevation, cam.radius]]]), steps=20,
                         guidance_scale=2.0, stochastic=False, generator=torch.Generator().manual_seed(0))[0, 0]
    assert (sample - other).abs().mean() > 3 * (sample - native).abs().mean()  # the camera matters
    # a text prompt alone is not enough for an image prior, and nothing is written
    assert main(["sample", "--prior.kind", "novel_view", "--prompt", "a cube", "--out", str(tmp_path / "o")]) == 2
    assert "--image" in capsys.readouterr().err and not (tmp_path / "o").exists()
