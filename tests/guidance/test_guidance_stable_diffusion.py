"""Stable Diffusion prior, loaded from a tiny SD-shaped checkpoint through the production path."""

import json
import shutil
import time

import pytest
import torch
import torch.nn.functional as F

from dreamfusion3d.cli import main
from dreamfusion3d.guidance import PriorConfig, load_prior
from dreamfusion3d.guidance.stable_diffusion import StableDiffusionPrior
from dreamfusion3d.utils.errors import UserError


@pytest.fixture(scope="module")
def sd_prior(tiny_sd_folder):
    return load_prior(PriorConfig(kind="stable-diffusion", model=str(tiny_sd_folder), vae_resolution=32,
                                  guidance_scale=7.5))


def test_loads_in_float32_on_cpu_with_vae_scaling(sd_prior, tiny_sd_folder):
    assert isinstance(sd_prior, StableDiffusionPrior)
    assert sd_prior.dtype == torch.float32 and sd_prior.latent_space
    vae_cfg = json.loads((tiny_sd_folder / "vae" / "config.json").read_text())
    assert sd_prior.scaling_factor == vae_cfg["scaling_factor"]
    assert sd_prior.latent_shape(2) == (2, 4, 16, 16)
    assert sd_prior.guidance_scale == 7.5 and (sd_prior.t_min, sd_prior.t_max) == (0.02, 0.98)
    assert all(not p.requires_grad for p in sd_prior.unet.parameters())
    # default guidance for SD is DreamFusion's 100
    assert PriorConfig(kind="stable-diffusion").resolved_guidance_scale() == 100.0


def test_text_embeddings_are_cached_and_match_clip(sd_prior):
    calls = []
    handle = sd_prior.text_encoder.register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        e1 = sd_prior.encode_text(["a blue cone", "a red cube"])
        e2 = sd_prior.encode_text(["a red cube"])
    finally:
        handle.remove()
    assert len(calls) == 1 and torch.equal(e1[1], e2[0])
    ids = sd_prior.tokenizer(["a red cube"], padding="max_length", max_length=sd_prior.tokenizer.model_max_length,
                             return_tensors="pt").input_ids
    with torch.no_grad():
        ref = sd_prior.text_encoder(ids).last_hidden_state
    assert torch.allclose(e2, ref)


def test_vae_encoding_upsamples_bilinearly(sd_prior):
    images = torch.rand(2, 3, 8, 8)
    z = sd_prior.encode_images(images, generator=torch.Generator().manual_seed(5))
    x = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False) * 2 - 1
    with torch.no_grad():
        ref = sd_prior.vae.encode(x).latent_dist.sample(generator=torch.Generator().manual_seed(5))
    assert torch.allclose(z, ref * sd_prior.vae.config.scaling_factor, atol=1e-5)


def test_sds_gradient_equals_weighted_noise_residual_by_hand(sd_prior):
    B = 2
    images = torch.rand(B, 3, 64, 64, requires_grad=True)
    cond = sd_prior.encode_text(["a red cube"])
    uncond = sd_prior.encode_text([""])
    t = torch.tensor([120, 730])
    noise = torch.randn(B, 4, 16, 16)
    calls = []
    hook = sd_prior.unet.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        out = sd_prior.sds_loss(images, cond, uncond, t=t, noise=noise, guidance_scale=7.5,
                                generator=torch.Generator().manual_seed(0))
    finally:
        hook.remove()
    assert calls == [2 * B]  # conditional and unconditional in one UNet batch
    z = out.latents.detach()
    a = sd_prior.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    z_t = a.sqrt() * z + (1 - a).sqrt() * noise
    with torch.no_grad():
        e_c = sd_prior.unet(z_t, t, encoder_hidden_states=cond.expand(B, -1, -1)).sample
        e_u = sd_prior.unet(z_t, t, encoder_hidden_states=uncond.expand(B, -1, -1)).sample
    expected = (1 - a) * (e_u + 7.5 * (e_c - e_u) - noise)
    assert torch.allclose(out.grad, expected, atol=1e-4, rtol=1e-4)
    (dz,) = torch.autograd.grad(out.loss, out.latents, retain_graph=True)
    assert torch.allclose(dz * B, expected, atol=1e-4, rtol=1e-4)  # reduction: mean over the batch
    # the chain rule through the VAE encoder reaches the renders
    (ref,) = torch.autograd.grad(out.latents, images, grad_outputs=expected / B, retain_graph=True)
    out.loss.backward()
    assert torch.allclose(images.grad, ref, atol=1e-5, rtol=1e-4)
    assert all(p.grad is None for p in sd_prior.unet.parameters())


def test_tiny_sds_step_under_one_second(sd_prior):
    images = torch.rand(2, 3, 64, 64, requires_grad=True)
    cond, uncond = sd_prior.encode_text(["a red cube"]), sd_prior.encode_text([""])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the CPU is shared; one thread avoids oversubscription noise
    try:
        times = []
        for _ in range(6):
            start = time.perf_counter()
            out = sd_prior.sds_loss(images, cond, uncond)
            out.loss.backward()
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    median = sorted(times[1:])[2]
    print(f"tiny SD SDS step (B=2, 64px renders -> 32px VAE -> 16x16 latents, fwd+bwd): median {median * 1e3:.0f} ms")
    assert median < 1.0


def test_memory_options_and_cpu_offload_message(tiny_sd_folder, capsys):
    prior = load_prior(PriorConfig(kind="stable-diffusion", model=str(tiny_sd_folder), vae_resolution=32,
                                   attention_slicing=True, channels_last=True, cpu_offload=True))
    assert "cpu_offload only applies on a CUDA device" in capsys.readouterr().err
    c = prior.encode_text(["a red cube"])
    out = prior.sds_loss(torch.rand(1, 3, 32, 32), c, prior.encode_text([""]))
    assert torch.isfinite(out.loss)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_missing_and_malformed_folders_fail_with_one_line(tiny_sd_folder, tmp_path):
    def err(model):
        with pytest.raises(UserError) as info:
            load_prior(PriorConfig(kind="stable-diffusion", model=str(model)))
        msg = str(info.value)
        assert "\n" not in msg
        return msg

    assert "does not exist" in err(tmp_path / "nowhere")
    broken = _copy(tiny_sd_folder, tmp_path / "no_unet_cfg")
    (broken / "unet" / "config.json").unlink()
    assert f"model folder {broken} has no unet/config.json" in err(broken)
    broken = _copy(tiny_sd_folder, tmp_path / "bad_json")
    (broken / "vae" / "config.json").write_text("{not json")
    assert "cannot load vae" in err(broken)
    broken = _copy(tiny_sd_folder, tmp_path / "no_weights")
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    assert "cannot load unet" in err(broken)
    (tmp_path / "afile").write_text("x")
    assert "is a file" in err(tmp_path / "afile")


def test_cli_reports_a_bad_model_folder_as_one_line(tmp_path, capsys):
    rc = main(["sample", "--prompt", "a red cube", "--out", str(tmp_path / "out"), "--prior.kind",
               "stable-diffusion", "--prior.model", str(tmp_path / "missing")])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("dreamfusion3d: error:")]
    assert rc == 2 and len(errors) == 1 and errors[0] == err[-1] and "does not exist" in err[-1]
    assert not (tmp_path / "out").exists()
