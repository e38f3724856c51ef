"""Bad inputs, one table per command: each case must exit 2 with exactly one line on stderr and
leave a pre-seeded output folder (and its parent) byte-identical, although every case passes
``--overwrite``. A new case is one line in its command's table.

Placeholders in a case: {tmp} (the test's folder), {prior} (a tiny text prior), {image} (a valid
photo-like PNG), {binary} (a file of bytes that are not text), {notimage} (a text file named
.png), {pickle} (a model folder whose only weights are a pickle).
"""

import os

import numpy as np
import pytest
import torch

from dreamfusion3d.cli import main

GENERATE = ["generate", "--prompt", "a red cube", "--prior.model", "{prior}"]
BAD_GENERATE = [
    ("steps-0", ["--steps", "0"], "--steps must"),
    ("steps-negative", ["--steps", "-1"], "--steps must"),
    ("guidance-nan", ["--prior.guidance-scale", "nan"], "--prior.guidance-scale must be a finite number"),
    ("guidance-inf", ["--prior.guidance-scale", "inf"], "--prior.guidance-scale must be a finite number"),
    ("resolution-0", ["--resolution", "0"], "--resolution must"),
    ("batch-size-0", ["--batch-size", "0"], "--batch-size must"),
    ("lr-nan", ["--optim.lr", "nan"], "--optim.lr must be a finite number"),
    ("lr-negative", ["--optim.lr", "-0.1"], "--optim.lr must"),
    ("t-range-inverted", ["--prior.t-min", "0.9", "--prior.t-max", "0.1"], "must be below --prior.t-max"),
    ("shading-probs-over-1", ["--shading.albedo-prob", "0.6", "--shading.lambertian-prob", "0.6"], "at most 1"),
    ("light-distance-0", ["--shading.light-distance-range", "0", "1"], "--shading.light-distance-range"),
    ("ema-decay-over-1", ["--optim.ema-decay", "1.5"], "--optim.ema-decay must"),
    ("random-background-over-1", ["--background.random-prob", "2"], "--background.random-prob must"),
    ("random-background-learned", ["--background.random-prob", "0.5", "--background.kind", "mlp"],
     "needs --background.kind fixed"),
    ("transmittance-target-over-1", ["--losses.transmittance-target", "1.5"], "--losses.transmittance-target must"),
    ("mesh-resolution-0", ["--output.mesh-resolution", "0"], "--output.mesh-resolution must"),
    ("checkpoint-every-0", ["--output.checkpoint-every", "0"], "--output.checkpoint-every must"),
    ("too-big-for-memory", ["--resolution", "4096", "--batch-size", "1024"], "GiB but this machine has"),
    ("prior-missing", ["--prior.model", "{tmp}/no-such-prior"], "no such model folder"),
    ("text-encoder-pickle-only", ["--prior.text-encoder", "{pickle}"], "holds only pickled weights"),
    ("prompts-file-binary", ["--prompts-file", "{binary}"], "is not a text file"),
    ("prompts-file-missing", ["--prompts-file", "{tmp}/none.txt"], "does not exist"),
    ("prompt-empty", ["--prompt", "  "], "prompt is empty"),
    ("resume-not-a-run", ["--resume", "{tmp}"], "not a generate run"),
]

NOVEL_VIEW = ["novel-view", "--image", "{image}"]
BAD_NOVEL_VIEW = [
    ("azimuth-nan", ["--azimuths", "0", "nan"], "--azimuths must be a finite number"),
    ("input-azimuth-inf", ["--input-azimuth", "inf"], "--input-azimuth must be a finite number"),
    ("elevation-95", ["--elevations", "95"], "--elevations must"),
    ("steps-0", ["--steps", "0"], "--steps must"),
    ("guidance-negative", ["--guidance-scale", "-1"], "--guidance-scale must"),
    ("input-weight-1.5", ["--input-weight", "1.5"], "--input-weight must"),
    ("display-size-0", ["--display-size", "0"], "--display-size must"),
    ("image-missing", ["--image", "{tmp}/none.png"], "does not exist"),
    ("image-not-an-image", ["--image", "{notimage}"], "not a readable image"),
    ("model-pickle-only", ["--model", "{pickle}"], "holds only pickled weights"),
]

EXPORT = ["export", "--world-shape", "cube", "--resolution", "8"]
BAD_EXPORT = [
    ("resolution-0", ["--resolution", "0"], "--resolution must"),
    ("bound-nan", ["--bound", "nan"], "--bound must be a finite number"),
    ("bound-negative", ["--bound", "-1"], "--bound must"),
    ("texture-size-0", ["--texture-size", "0"], "--texture-size must"),
    ("chunk-size-0", ["--chunk-size", "0"], "--chunk-size must"),
    ("unknown-shape", ["--world-shape", "blob"], "unknown world shape"),
    ("source-missing", ["{tmp}/no-run", "--world-shape", "cube"], "exactly one"),
]

RENDER = ["render", "--resolution", "16", "--views", "2"]
BAD_RENDER = [
    ("resolution-0", ["--resolution", "0"], "--resolution must"),
    ("views-0", ["--views", "0"], "--views must"),
    ("fov-0", ["--fov-deg", "0"], "--fov-deg must"),
    ("radius-nan", ["--radius", "nan"], "--radius must be a finite number"),
    ("background-2", ["--background", "2", "0", "0"], "--background must"),
    ("unknown-shape", ["--shape", "blob"], "unknown shape"),
    ("mesh-missing", ["--mesh", "{tmp}/none.obj"], "none.obj"),
]

MAKE_DATASET = ["make-dataset", "--num-objects", "1", "--views", "1", "--val-views", "0", "--test-views", "0",
                "--resolution", "16"]
BAD_MAKE_DATASET = [
    ("views-0", ["--views", "0"], "--views must"),
    ("resolution-4", ["--resolution", "4"], "--resolution must"),
    ("val-fraction-nan", ["--val-fraction", "nan"], "--val-fraction must be a finite number"),
    ("num-objects-negative", ["--num-objects", "-1"], "--num-objects must"),
    ("mesh-missing", ["--meshes", "{tmp}/none.obj"], "mesh file not found"),
]

SAMPLE = ["sample", "--prompt", "a red cube", "--prior.model", "{prior}", "--steps", "2", "--num-images", "1"]
BAD_SAMPLE = [
    ("steps-0", ["--steps", "0"], "--steps must"),
    ("guidance-nan", ["--guidance-scale", "nan"], "--guidance-scale must be a finite number"),
    ("num-images-0", ["--num-images", "0"], "--num-images must"),
    ("eta-2", ["--eta", "2"], "--eta must"),
    ("prior-missing", ["--prior.model", "{tmp}/no-such-prior"], "no-such-prior"),
]

TRAIN_PRIOR = ["train-prior", "--steps", "2"]
BAD_TRAIN_PRIOR = [
    ("steps-0", ["--steps", "0"], "--steps must"),
    ("lr-nan", ["--lr", "nan"], "--lr must be a finite number"),
    ("batch-size-0", ["--batch-size", "0"], "--batch-size must"),
    ("ema-decay-2", ["--ema-decay", "2"], "--ema-decay must"),
    ("init-from-pickle-only", ["--init-from", "{pickle}"], "holds only pickled weights"),
]

TRAIN_CLASSIFIER = ["train-classifier", "--steps", "2"]
BAD_TRAIN_CLASSIFIER = [
    ("steps-0", ["--steps", "0"], "--steps must"),
    ("lr-negative", ["--lr", "-1"], "--lr must"),
    ("resolution-0", ["--resolution", "0"], "--resolution must"),
]

TRAIN_NOVEL_VIEW = ["train-novel-view", "--data", "{tmp}/no-data", "--steps", "2"]
BAD_TRAIN_NOVEL_VIEW = [
    ("data-missing", [], "splits.json"),
    ("batch-size-0", ["--batch-size", "0"], "--batch-size must"),
    ("cond-dropout-1", ["--cond-dropout", "1"], "--cond-dropout must"),
    ("lr-inf", ["--lr", "inf"], "--lr must be a finite number"),
    ("init-from-pickle-only", ["--init-from", "{pickle}"], "holds only pickled weights"),
]

EVALUATE = ["evaluate", "--prompts", "a red cube", "--prior-model", "{prior}"]
BAD_EVALUATE = [
    ("views-0", ["--views", "0"], "--views must"),
    ("prompts-file-binary", ["--prompts", "--prompts-file", "{binary}"], "is not a text file"),
    ("clip-pickle-only", ["--clip", "{pickle}"], "holds only pickled weights"),
    ("runs-missing", ["--prompts", "--runs", "{tmp}/no-runs"], "no such folder"),
    ("steps-0", ["--steps", "0"], "--steps must"),
]

EVALUATE_PRIOR = ["evaluate-prior", "--steps", "2"]
BAD_EVALUATE_PRIOR = [
    ("steps-0", ["--steps", "0"], "--steps must"),
    ("guidance-nan", ["--guidance-scale", "nan"], "--guidance-scale must be a finite number"),
    ("samples-0", ["--samples-per-caption", "0"], "--samples-per-caption must"),
]

EVALUATE_NOVEL_VIEW = ["evaluate-novel-view", "--data", "{tmp}/no-data"]
BAD_EVALUATE_NOVEL_VIEW = [
    ("steps-0", ["--steps", "0"], "--steps must"),
    ("input-weight-nan", ["--input-weight", "nan"], "--input-weight must be a finite number"),
    ("model-pickle-only", ["--model", "{pickle}"], "holds only pickled weights"),
]

RECONSTRUCT = ["reconstruct", "--data", "{tmp}/no-data"]
BAD_RECONSTRUCT = [
    ("data-missing", [], "dataset folder not found"),
    ("steps-0", ["--steps", "0"], "--steps must"),
    ("lr-nan", ["--lr", "nan"], "--lr must be a finite number"),
]

BENCH = ["bench"]
BAD_BENCH = [
    ("repeats-0", ["--repeats", "0"], "--repeats must"),
    ("resolution-4", ["--resolutions", "4"], "--resolutions must"),
]

TABLES = {
    "generate": (GENERATE, BAD_GENERATE), "novel-view": (NOVEL_VIEW, BAD_NOVEL_VIEW),
    "export": (EXPORT, BAD_EXPORT), "render": (RENDER, BAD_RENDER), "make-dataset": (MAKE_DATASET, BAD_MAKE_DATASET),
    "sample": (SAMPLE, BAD_SAMPLE), "train-prior": (TRAIN_PRIOR, BAD_TRAIN_PRIOR),
    "train-classifier": (TRAIN_CLASSIFIER, BAD_TRAIN_CLASSIFIER),
    "train-novel-view": (TRAIN_NOVEL_VIEW, BAD_TRAIN_NOVEL_VIEW), "evaluate": (EVALUATE, BAD_EVALUATE),
    "evaluate-prior": (EVALUATE_PRIOR, BAD_EVALUATE_PRIOR),
    "evaluate-novel-view": (EVALUATE_NOVEL_VIEW, BAD_EVALUATE_NOVEL_VIEW),
    "reconstruct": (RECONSTRUCT, BAD_RECONSTRUCT), "bench": (BENCH, BAD_BENCH),
}
# --device, the same three cases for every command that takes it (cuda without a GPU only where
# there is none: on a GPU machine that one is a valid choice).
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
BAD_DEVICE = [
    ("device-unknown", ["--device", "tpu"], "unknown device 'tpu'", ()),
    ("device-index-not-a-number", ["--device", "cuda:first"], "the GPU index must be a number", ()),
    ("device-cuda-without-gpu", ["--device", "cuda"], "--device cuda", (NO_CUDA,)),
]
WITH_DEVICE = ["generate", "novel-view", "export", "sample", "train-prior", "evaluate",
               "evaluate-prior", "evaluate-novel-view", "bench"]  # (train-novel-view, reconstruct: their
# base case has no dataset, which is reported first)

CASES = [pytest.param(cmd, args, message, id=f"{cmd}:{name}")
         for cmd, (_, table) in TABLES.items() for name, args, message in table]
CASES += [pytest.param(cmd, args, message, id=f"{cmd}:{name}", marks=marks)
          for cmd in WITH_DEVICE for name, args, message, marks in BAD_DEVICE]


@pytest.fixture
def inputs(tmp_path, tiny_prior):
    """Placeholder values (files made fresh in the test's folder)."""
    import imageio.v3 as iio

    image = np.full((32, 32, 3), 255, np.uint8)
    image[8:24, 8:24] = (200, 30, 30)
    iio.imwrite(tmp_path / "photo.png", image)
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    (tmp_path / "notimage.png").write_text("this is not an image")
    pickle = tmp_path / "pickled-model"
    pickle.mkdir()
    (pickle / "config.json").write_text("{}")
    (pickle / "pytorch_model.bin").write_bytes(b"\x80\x04pickled weights")
    return {"tmp": str(tmp_path), "prior": str(tiny_prior), "image": str(tmp_path / "photo.png"),
            "binary": str(tmp_path / "binary.txt"), "notimage": str(tmp_path / "notimage.png"),
            "pickle": str(pickle)}


def snapshot(folder):
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def seed_output(folder):
    """An earlier run's folder: the files every command could be tempted to replace."""
    (folder / "checkpoints" / "latest").mkdir(parents=True)
    (folder / "config.yaml").write_text("command: earlier\n")
    (folder / "checkpoints" / "latest" / "tensors.safetensors").write_bytes(os.urandom(64))
    for name in ("mesh.glb", "metrics.json", "model.safetensors", "config.json", "novel_view_eval.json", "bench.json"):
        (folder / name).write_bytes(os.urandom(16))
    return folder


def _fill(args, values):
    return [a.format(**values) for a in args]


def _expect_one_line_and_untouched(capsys, argv, out, message):
    parent = out.parent
    before, listing = snapshot(out), sorted(os.listdir(parent))
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith("dreamfusion3d: error: "), err
    assert message in err[0], err[0]
    assert snapshot(out) == before  # byte-identical
    assert sorted(os.listdir(parent)) == listing  # no staging folder, aside copy or lock file left


@pytest.mark.parametrize("command, args, message", CASES)
def test_bad_input_is_one_line_exit_2_and_the_folder_is_untouched(command, args, message, inputs, tmp_path, capsys):
    out = seed_output(tmp_path / "out")
    base = TABLES[command][0]
    argv = _fill(base, inputs) + _fill(args, inputs) + ["--out", str(out), "--overwrite"]
    _expect_one_line_and_untouched(capsys, argv, out, message)


@pytest.mark.parametrize("command", list(TABLES))
def test_a_non_empty_folder_is_refused_without_overwrite(command, inputs, tmp_path, capsys):
    out = seed_output(tmp_path / "out")
    argv = _fill(TABLES[command][0], inputs) + ["--out", str(out)]
    _expect_one_line_and_untouched(capsys, argv, out, "--overwrite")


def test_the_tables_cover_at_least_40_distinct_bad_inputs():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
