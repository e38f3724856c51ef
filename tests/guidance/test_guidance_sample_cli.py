"""`dreamfusion3d sample`: images from a prior with a diffusers scheduler, written safely."""

import json

import imageio.v3 as iio
import numpy as np
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
