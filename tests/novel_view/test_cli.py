import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from dreamfusion3d.cli import main
from dreamfusion3d.novel_view.evaluate import psnr, ssim
from dreamfusion3d.novel_view.model import CameraPrior, NovelViewArchitecture, NovelViewModel


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    arch = NovelViewArchitecture(resolution=16, block_out_channels=(16, 32), norm_num_groups=8)
    folder = tmp_path_factory.mktemp("nv_model") / "model"
    NovelViewModel.from_architecture(arch, CameraPrior(object_fraction=0.5)).save_pretrained(folder, fp16=True)
    return folder


def _input_png(path):
    img = np.zeros((40, 40, 4), dtype=np.uint8)
    img[10:30, 12:28] = (200, 30, 30, 255)
    iio.imwrite(path, img)
    return path


def test_novel_view_cli_writes_views_and_gif(tiny_model, tmp_path):
    out = tmp_path / "views"
    rc = main(["novel-view", "--image", str(_input_png(tmp_path / "in.png")), "--out", str(out), "--model",
               str(tiny_model), "--steps", "2", "--azimuths", "90", "180", "270", "--seed", "3", "--quiet",
               "--no-mp4"])
    assert rc == 0
    pngs = sorted(out.glob("view_*.png"))
    assert [p.name for p in pngs] == ["view_00_az090_el20.png", "view_01_az180_el20.png", "view_02_az270_el20.png"]
    assert iio.imread(pngs[0]).shape == (16, 16, 3)
    gif = iio.imread(out / "turntable.gif", index=None)
    assert gif.shape[0] == 3
    record = json.loads((out / "views.json").read_text())
    assert record["targets"][1] == [180.0, 20.0, 3.0] and record["generation_order"] == [0, 2, 1]
    assert record["sampler"] == "dpmsolver" and record["steps"] == 2
    assert (out / "config.yaml").is_file()


def test_novel_view_cli_rejects_text_file_as_image(tiny_model, tmp_path, capsys):
    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    out = tmp_path / "never"
    rc = main(["novel-view", "--image", str(bad), "--out", str(out), "--model", str(tiny_model)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "x.png is not a readable image" in err[0]
    assert not out.exists()


def test_novel_view_cli_bad_elevations(tiny_model, tmp_path, capsys):
    rc = main(["novel-view", "--image", str(_input_png(tmp_path / "in.png")), "--out", str(tmp_path / "o"),
               "--model", str(tiny_model), "--azimuths", "10", "20", "30", "--elevations", "0", "5"])
    assert rc == 2 and "--elevations has 2 values for 3 azimuths" in capsys.readouterr().err


def test_novel_view_cli_bad_input_weight(tiny_model, tmp_path, capsys):
    out = tmp_path / "o"
    rc = main(["novel-view", "--image", str(_input_png(tmp_path / "in.png")), "--out", str(out),
               "--model", str(tiny_model), "--input-weight", "1.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--input-weight must lie in [0, 1], got 1.5" in err[0]
    assert not out.exists()


def test_metrics_against_closed_form():
    a = np.zeros((8, 8, 3))
    b = np.full((8, 8, 3), 0.1)
    assert psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.01), abs=1e-9)  # 20 dB
    assert psnr(a, a) == 100.0
    assert ssim(b, b) == pytest.approx(1.0)
    assert ssim(a, np.random.default_rng(0).random((8, 8, 3))) < 0.2


def test_evaluate_cli_writes_json_markdown_and_grid(tiny_model, tiny_dataset, tmp_path):
    out = tmp_path / "docs"
    rc = main(["evaluate-novel-view", "--data", str(tiny_dataset), "--split", "train", "--model", str(tiny_model),
               "--out", str(out), "--steps", "2", "--num-targets", "2", "--max-objects", "2",
               "--meshes", str(tmp_path / "no_meshes"), "--quiet"])
    assert rc == 0
    record = json.loads((out / "novel_view_eval.json").read_text())
    res = record["results"]["world train objects"]
    for key in ("copy_input", "single_view", "stochastic"):
        assert res[key]["n"] == 4 and 0.0 < res[key]["psnr"] <= 100.0 and -1.0 <= res[key]["ssim"] <= 1.0
    assert set(res["consistency_psnr"]) == {"stochastic", "single_view", "objects"}
    assert "| world train objects | 2 × 2 |" in (out / "novel_view_eval.md").read_text()
    grid = iio.imread(out / "novel_view_grid.png")
    assert grid.shape[0] == 2 * (2 * 17 + 1)  # 2 objects, 2x upscaled, 1 px gaps
