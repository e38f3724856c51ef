"""image-to-3d: bad input refused before writing, a short run's outputs, kill -9 + --resume."""

import json
import os
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import trimesh
from safetensors.torch import load_file

from dreamfusion3d.cli import main
from dreamfusion3d.novel_view.model import CameraPrior, NovelViewArchitecture, NovelViewModel


@pytest.fixture(scope="module")
def tiny_nv_model(tmp_path_factory):
    torch.manual_seed(0)
    arch = NovelViewArchitecture(resolution=16, block_out_channels=(8, 16), norm_num_groups=4)
    folder = tmp_path_factory.mktemp("nv") / "model"
    NovelViewModel.from_architecture(arch, CameraPrior(object_fraction=0.5)).save_pretrained(folder)
    return folder


def _object_png(path, size=(40, 40), dtype=np.uint8, channels=4):
    top = np.iinfo(dtype).max
    img = np.zeros((*size, channels), dtype=dtype)
    h, w = size
    img[h // 4: 3 * h // 4, w // 3: 2 * w // 3, :3] = np.array([0.8, 0.1, 0.1]) * top
    if channels == 4:
        img[h // 4: 3 * h // 4, w // 3: 2 * w // 3, 3] = top
    else:  # plain white background
        img[img.sum(-1) == 0] = top
    iio.imwrite(path, img)
    return path


def tiny_args(model, image, out, steps=6, text_prior=None):
    """A tiny image-to-3d command line; ``text_prior``: the text prior's folder for --prompt runs."""
    extra = [] if text_prior is None else ["--text-prior.model", str(text_prior)]
    return [
        "image-to-3d", "--image", str(image), "--out", str(out), "--prior.model", str(model), *extra,
        "--steps", str(steps), "--batch-size", "1", "--resolution", "16", "--seed", "3",
        "--reference.resolution", "16",
        "--field.kind", "dense", "--field.dense-resolution", "24", "--field.dense-features", "4",
        "--renderer.num-steps", "32", "--renderer.occupancy-resolution", "16",
        "--renderer.occupancy-update-every", "2", "--renderer.occupancy-warmup-steps", "4",
        "--output.mesh-resolution", "32", "--output.video-frames", "3", "--output.video-resolution", "16",
        "--output.preview-every", "0", "--output.checkpoint-every", "2", "--quiet",
    ]


def _bad_inputs(tmp_path):
    text = tmp_path / "text.png"
    text.write_text("not an image")
    tiny = tmp_path / "tiny.png"
    iio.imwrite(tiny, np.zeros((1, 1, 3), dtype=np.uint8))
    plain = tmp_path / "plain.png"
    iio.imwrite(plain, np.full((32, 32, 3), 90, dtype=np.uint8))
    huge = tmp_path / "huge.png"
    iio.imwrite(huge, np.zeros((8000, 5001), dtype=np.uint8))  # 40 MP + a column, compresses to ~40 kB
    return {"text": (text, "not a readable image"), "1x1": (tiny, "too small"),
            "plain": (plain, "no object found"), "missing": (tmp_path / "nope.png", "does not exist"),
            "huge": (huge, "too large")}


@pytest.mark.parametrize("case", ["text", "1x1", "plain", "missing", "huge"])
def test_bad_input_is_one_line_and_nothing_is_written(tiny_nv_model, tmp_path, capsys, case):
    path, words = _bad_inputs(tmp_path)[case]
    good = _object_png(tmp_path / "good.png")
    out = tmp_path / "out"
    # a bad image among good ones is refused before any folder is made
    assert main(tiny_args(tiny_nv_model, good, out)[:3] + [str(path)] + tiny_args(tiny_nv_model, good, out)[3:]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert not out.exists()


def test_16_bit_grey_and_rgba_inputs_are_read_like_novel_view_reads_them(tmp_path):
    from dreamfusion3d.generate.image import ImageTo3DConfig
    from dreamfusion3d.generate.image_command import read_inputs
    from dreamfusion3d.novel_view.images import centre_object_and_mask

    rgba = _object_png(tmp_path / "rgba.png")
    g = np.full((40, 40), 255, dtype=np.uint8)
    g[10:30, 13:26] = 60
    iio.imwrite(tmp_path / "grey.png", g)
    iio.imwrite(tmp_path / "grey16.png", g.astype(np.uint16) * 257)  # 16-bit: 60 * 257 / 65535 = 60 / 255
    inputs = read_inputs(ImageTo3DConfig(image=(rgba, tmp_path / "grey.png", tmp_path / "grey16.png")))
    assert [n for n, _ in inputs] == ["rgba", "grey", "grey16"]
    (rgb, a), (rgb8, a8), (rgb16, a16) = (centre_object_and_mask(p, 16, 0.5) for _, p in inputs)
    assert float(a.max()) == 1.0 and float(a[0, 0, 0]) == 0.0  # alpha cut-out: object 1, corners 0
    assert torch.allclose(rgb[:, 0, 0], torch.ones(3))  # composited over white
    torch.testing.assert_close(rgb16, rgb8, atol=1e-6, rtol=0)  # 16-bit is scaled by 65535, not 255
    torch.testing.assert_close(a16, a8, atol=1e-6, rtol=0)
    assert torch.allclose(rgb8[0], rgb8[1]) and float(a8.sum()) > 10  # grey → 3 equal channels, object found


def test_a_text_prior_as_the_image_prior_is_refused(tiny_nv_model, tmp_path, capsys):
    img = _object_png(tmp_path / "in.png")
    assert main(["image-to-3d", "--image", str(img), "--out", str(tmp_path / "o"), "--prior.kind", "bundled"]) == 2
    assert "image-conditioned prior" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# --prompt (joint text + image guidance): bad values, each one line, exit 2, nothing written.
# A new case is one line: (id, extra arguments, words of the message); {tmp} is the test's folder.
BAD_PROMPT = [
    ("prompt-empty", ["--prompt", ""], "the prompt is empty"),
    ("prompt-whitespace", ["--prompt", " \t "], "the prompt is empty"),
    ("text-prior-image-kind", ["--prompt", "a red cube", "--text-prior.kind", "novel_view"],
     "--text-prior.kind must be a text prior"),
    ("text-prior-t-range", ["--prompt", "a red cube", "--text-prior.t-min", "0.9", "--text-prior.t-max", "0.1"],
     "--text-prior.t-min (0.9) must be below"),
    ("text-prior-t-max-2", ["--prompt", "a red cube", "--text-prior.t-max", "2"], "--text-prior.t-max must lie in"),
    ("text-prior-missing", ["--prompt", "a red cube", "--text-prior.model", "{tmp}/no-such-prior"], "no-such-prior"),
    ("text-weight-nan", ["--prompt", "a red cube", "--text-prior.weight.start", "nan"], "must be a finite number"),
]


@pytest.mark.parametrize("extra, words", [pytest.param(a, w, id=i) for i, a, w in BAD_PROMPT])
def test_bad_prompt_is_one_line_exit_2_and_nothing_is_written(tiny_nv_model, tiny_prior, tmp_path, capsys,
                                                               extra, words):
    out = tmp_path / "out"
    args = tiny_args(tiny_nv_model, _object_png(tmp_path / "in.png"), out, text_prior=tiny_prior)
    assert main(args + [a.format(tmp=tmp_path) for a in extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dreamfusion3d: error: ") and words in err[0], err
    assert not out.exists()


@pytest.mark.slow
def test_short_run_writes_every_output_one_folder_per_image(tiny_nv_model, tmp_path):
    a, b = _object_png(tmp_path / "red box.png"), _object_png(tmp_path / "other.png", channels=3)
    out = tmp_path / "runs"
    args = tiny_args(tiny_nv_model, a, out)
    assert main(args[:3] + [str(b)] + args[3:]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "other", "red-box"]
    run = out / "red-box"
    assert len(trimesh.load(run / "mesh.glb", force="mesh").faces) > 0
    assert len(list(iio.imiter(run / "turntable.mp4"))) == 3
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["prompt"] == "image:red-box"
    assert metrics["input_camera"] == {"azimuth": 0.0, "elevation": 20.0, "radius": 3.0}
    assert 0 < metrics["reference_view"]["psnr"] < 100 and metrics["reference_view"]["mask_mse"] >= 0
    assert (run / "checkpoints" / "final" / "model.safetensors").is_file()


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted(tiny_nv_model, tmp_path, same_final_weights):
    steps = 40
    image = _object_png(tmp_path / "in.png")
    ref = tmp_path / "ref"
    assert main(tiny_args(tiny_nv_model, image, ref, steps)) == 0

    run = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DREAMFUSION3D_THREADS": "1"}
    cmd = [sys.executable, "-m", "dreamfusion3d", *tiny_args(tiny_nv_model, image, run, steps), "--num-threads", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "checkpoints" / "latest" / "trainer" / "state.json"
    deadline = time.time() + 900  # generous: on a shared CPU the subprocess's imports alone take minutes
    reached = False
    while time.time() < deadline and proc.poll() is None and not reached:
        reached = state.is_file() and json.loads(state.read_text())["state"]["step"] >= 4
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    assert reached, "no checkpoint at step 4 before the deadline"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "checkpoints" / "final").exists()

    assert main(["image-to-3d", "--resume", str(run), "--quiet"]) == 0
    same_final_weights(ref, run)
    initial = load_file(str(ref / "checkpoints" / "final" / "model.safetensors"))
    assert json.loads((run / "metrics.json").read_text())["steps"] == steps and len(initial) > 0


def test_presets_load_and_the_default_preset_is_the_default_config():
    from dreamfusion3d.generate.image import ImageTo3DConfig
    from dreamfusion3d.utils.config import load_preset, to_dict

    default = load_preset(ImageTo3DConfig, "image_to_3d", command="image-to-3d")
    assert to_dict(default) == to_dict(ImageTo3DConfig())
    zero123 = load_preset(ImageTo3DConfig, "zero123", command="image-to-3d")
    assert zero123.prior.kind == "zero123" and zero123.prior.vae_resolution == 256


# ---- --prompt: joint text + image guidance ------------------------------------------------------

def _generation(tiny_nv_model, tiny_prior, tmp_path, prompt=None, **kw):
    """An ImageGeneration built from the tiny command line (no folder is written)."""
    from dreamfusion3d.cli import _parse
    from dreamfusion3d.generate.image import ImageGeneration, ImageTo3DConfig
    from dreamfusion3d.generate.image_command import read_inputs

    args = tiny_args(tiny_nv_model, _object_png(tmp_path / "in.png"), tmp_path / "o", text_prior=tiny_prior, **kw)
    args = [a for a in args[1:] if a != "--quiet"] + ([] if prompt is None else ["--prompt", prompt])
    cfg = _parse("image-to-3d", ImageTo3DConfig, args, None)
    (name, pixels), = read_inputs(cfg)
    return ImageGeneration(cfg, f"image:{name}", pixels, cfg.out)


def test_joint_loss_is_image_sds_plus_weighted_text_sds_on_the_same_render(tiny_nv_model, tiny_prior, tmp_path):
    """joint_sds_loss against the two terms computed on their own, the text one written out from the
    prior's noise predictions (classifier-free guidance, w(t) = 1 − ᾱ_t, ½ Σ g² / B), same t and noise."""
    from dreamfusion3d.cameras import orbit_cameras
    from dreamfusion3d.generate.joint import joint_sds_loss
    from dreamfusion3d.guidance import view_prompt

    gen = _generation(tiny_nv_model, tiny_prior, tmp_path, prompt="a red cube")
    az, el = torch.tensor([10.0, 120.0, -170.0]), torch.tensor([20.0, 5.0, 30.0])  # front, side, back
    cams = orbit_cameras(az.tolist(), el.tolist(), 3.0, 40.0, 16)
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
    t = torch.tensor([50, 400, 900])
    noise = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    w_image, w_text = 0.7, 0.3

    joint, terms = joint_sds_loss(gen.image_prompt, gen.text_prompts, images, cams, az, el, w_image, w_text,
                                  t=t, noise=noise)
    (g_joint,) = torch.autograd.grad(joint.loss, images)

    image = gen.image_prompt.sds_loss(images, cams, t=t, noise=noise)
    prior = gen.text_prior
    z = 2 * images - 1  # the bundled prior's model space at its own 16 px
    z_t = prior.scheduler.add_noise(z.detach(), noise, t)
    cond = prior.encode_text([view_prompt("a red cube", v) for v in ("front", "side", "back")])
    uncond = prior.encode_text([""]).expand_as(cond)
    eps_c, eps_u = prior.predict_noise(z_t, t, cond), prior.predict_noise(z_t, t, uncond)
    eps_hat = eps_u + prior.guidance_scale * (eps_c - eps_u)
    g = (1 - prior.alphas_cumprod[t]).view(-1, 1, 1, 1) * (eps_hat - noise)
    text_loss = 0.5 * g.pow(2).sum() / 3
    expected = w_image * image.loss + w_text * text_loss
    (g_expected,) = torch.autograd.grad(w_image * image.loss + w_text * (z * g).sum() / 3, images)

    assert prior.guidance_scale == 20.0 and w_text * float(text_loss) > 0
    torch.testing.assert_close(joint.loss, expected, rtol=1e-4, atol=0)
    # the UNet's batched (cond + uncond) and separate calls differ in the last bits, × guidance 20
    torch.testing.assert_close(g_joint, g_expected, rtol=1e-4, atol=1e-4 * float(g_expected.abs().max()))
    torch.testing.assert_close(terms["sds_text"], (w_text * text_loss).detach(), rtol=1e-4, atol=0)
    torch.testing.assert_close(terms["sds_image"], (w_image * image.loss).detach(), rtol=1e-6, atol=0)


def test_a_prompt_adds_the_text_term_and_leaves_the_image_term_as_it_was(tiny_nv_model, tiny_prior, tmp_path):
    """Same seed with and without --prompt: the first step renders the same views and the image
    prior draws the same t and noise (its SDS term is equal), the text term is logged and the
    update differs; without a prompt there is no text prior and no extra term."""
    plain = _generation(tiny_nv_model, tiny_prior, tmp_path)
    a = plain.train_step()  # before the next one seeds the global RNG (the renderer's stratified samples)
    joint = _generation(tiny_nv_model, tiny_prior, tmp_path, prompt="a red cube")
    b = joint.train_step()
    assert plain.text_prompts is None and plain.text_prior is None
    assert a.terms == {} and set(b.terms) == {"sds_image", "sds_text"}
    assert float(b.terms["sds_image"]) == float(a.sds) and float(b.terms["sds_text"]) > 0
    torch.testing.assert_close(b.sds, b.terms["sds_image"] + b.terms["sds_text"])
    pa, pb = dict(plain.representation.named_parameters()), dict(joint.representation.named_parameters())
    assert any(not torch.equal(pa[k], pb[k]) for k in pa)


@pytest.mark.slow
def test_prompt_run_records_the_prompt_and_weights_and_resumes_with_them(tiny_nv_model, tiny_prior, tmp_path,
                                                                          monkeypatch, same_final_weights):
    """A --prompt run: the text term in the log, prompt and weights in metrics.json and config.yaml;
    Ctrl-C at step 3, then --resume (which reads the prompt from config.yaml) ends with the
    uninterrupted run's weights."""
    import yaml

    from dreamfusion3d.generate.image import ImageGeneration

    image = _object_png(tmp_path / "in.png")
    extra = ["--prompt", "  a red cube ", "--text-prior.weight.start", "0.25"]
    ref = tmp_path / "ref"
    assert main(tiny_args(tiny_nv_model, image, ref, text_prior=tiny_prior) + extra) == 0
    metrics = json.loads((ref / "metrics.json").read_text())
    assert metrics["text_guidance"]["prompt"] == "a red cube" and metrics["text_guidance"]["prior"] == "bundled"
    assert metrics["text_guidance"]["weight"]["start"] == 0.25 and metrics["text_guidance"]["guidance_scale"] == 20
    assert metrics["final"]["sds_text"] > 0 and metrics["final"]["sds"] == pytest.approx(
        metrics["final"]["sds_image"] + metrics["final"]["sds_text"], rel=1e-5)
    saved = yaml.safe_load((ref / "config.yaml").read_text())
    assert saved["prompt"] == "a red cube" and saved["text_prior"]["weight"]["start"] == 0.25

    real_step = ImageGeneration.train_step

    def step_then_ctrl_c_at_3(self):
        stats = real_step(self)
        if self.step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the loop's StopRequest turns it into a checkpoint
        return stats

    run = tmp_path / "run"
    monkeypatch.setattr(ImageGeneration, "train_step", step_then_ctrl_c_at_3)
    assert main(tiny_args(tiny_nv_model, image, run, text_prior=tiny_prior) + extra) == 130
    assert not (run / "checkpoints" / "final").exists()
    monkeypatch.setattr(ImageGeneration, "train_step", real_step)
    assert main(["image-to-3d", "--resume", str(run), "--quiet"]) == 0
    same_final_weights(ref, run)
    assert json.loads((run / "metrics.json").read_text())["text_guidance"]["prompt"] == "a red cube"


def test_resuming_a_run_saved_before_prompt_existed_means_no_prompt(tmp_path, monkeypatch):
    """config.yaml of older runs says `prompt: ''` for "no prompt": --resume reads it as None (no
    text prior), not as an empty --prompt."""
    from dreamfusion3d.generate import image_command
    from dreamfusion3d.generate.image import ImageTo3DConfig
    from dreamfusion3d.utils.config import save_config
    from dreamfusion3d.utils.errors import UserError

    run = tmp_path / "old-run"
    run.mkdir()
    save_config(ImageTo3DConfig(image=(_object_png(tmp_path / "in.png"),)), run / "config.yaml", command="image-to-3d")
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("prompt: null", "prompt: ''"))
    seen = []

    def stop_after_the_checks(cfg):
        seen.append(cfg.prompt)
        raise UserError("stopped here by the test")

    monkeypatch.setattr(image_command, "read_inputs", stop_after_the_checks)
    assert main(["image-to-3d", "--resume", str(run)]) == 2
    assert seen == [None]


def test_no_recentre_keeps_the_input_framing_for_the_reference_view_and_the_prior(tiny_nv_model, tmp_path):
    """--reference.no-recentre: the reference view (and the image the prior is conditioned on) is the
    image as its camera framed it; the default cuts the object out and centres it."""
    from dreamfusion3d.cli import _parse
    from dreamfusion3d.generate.image import ImageGeneration, ImageTo3DConfig
    from dreamfusion3d.generate.image_command import read_inputs

    img = np.zeros((40, 40, 4), dtype=np.uint8)
    img[4:14, 26:34] = (200, 30, 30, 255)  # a small box up and to the right
    path = tmp_path / "corner.png"
    iio.imwrite(path, img)

    def reference(*extra):
        args = [a for a in tiny_args(tiny_nv_model, path, tmp_path / "o")[1:] if a != "--quiet"] + list(extra)
        cfg = _parse("image-to-3d", ImageTo3DConfig, args, None)
        (name, pixels), = read_inputs(cfg)
        gen = ImageGeneration(cfg, f"image:{name}", pixels, cfg.out)
        return gen.reference_mask[0], gen.image_prompt.image, gen.reference_rgb

    def centroid(mask):
        ys, xs = torch.nonzero(mask > 0.5, as_tuple=True)
        return float(ys.float().mean()), float(xs.float().mean())

    kept, prompt_kept, rgb_kept = reference("--reference.no-recentre")
    centred, _, _ = reference()
    torch.testing.assert_close(prompt_kept, rgb_kept.cpu())  # the prior sees the same framing
    # 40 px → 16 px: the box's centre (8.5, 29.5) lands at (3.4, 11.8), its area is 80 × 0.16 px²
    cy, cx = centroid(kept)
    assert abs(cy - 3.4) < 1.0 and abs(cx - 11.8) < 1.0
    assert float(kept.sum()) == pytest.approx(80 * (16 / 40) ** 2, rel=0.15)
    cy, cx = centroid(centred)
    assert abs(cy - 7.5) < 1.0 and abs(cx - 7.5) < 1.0  # the default moves it to the middle
    assert not (tmp_path / "o").exists()  # building the run writes nothing
