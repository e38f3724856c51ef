"""End to end: `dreamfusion3d make-dataset` → `dreamfusion3d reconstruct` on a tiny object."""

import json

import pytest

from dreamfusion3d.cli import main
from dreamfusion3d.representations import load_representation


@pytest.mark.slow
def test_reconstruct_tiny_object_end_to_end(tmp_path):
    data = tmp_path / "ds"
    assert main(["make-dataset", "--quiet", "--num-objects", "1", "--views", "16", "--resolution", "32",
                 "--out", str(data), "--val-fraction", "0", "--test-fraction", "0"]) == 0
    obj = next((data / "train").iterdir())
    out = tmp_path / "run"
    args = ["reconstruct", "--quiet", "--data", str(obj), "--out", str(out), "--steps", "400", "--batch-rays", "512",
            "--checkpoint-every", "100", "--renderer.num-steps", "96", "--renderer.occupancy-resolution", "32", "--field.dense-resolution", "48"]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    print({k: metrics[k] for k in ("test_psnr", "test_psnr_dense_march", "eval_sample_fraction", "train_seconds")})
    # A constant grey/white image scores ~10-14 dB on these views; a fitted object well above 20.
    assert metrics["test_psnr"] > 22.0, metrics
    assert metrics["eval_sample_fraction"] < 0.6  # the occupancy grid skipped empty space
    assert len(list((out / "renders").glob("test_*.png"))) == metrics["test_views"]
    assert (out / "config.yaml").is_file()
    renderer, extra = load_representation(out)
    assert extra["step"] == 400
    # A second run into the same folder refuses to overwrite the results.
    assert main(args) == 2
