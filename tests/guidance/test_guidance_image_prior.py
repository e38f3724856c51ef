"""Image-conditioned priors: the exact closed-form reference, the bundled novel-view model and
Zero-1-to-3 weights in the diffusers layout, all through the one SDS computation of base.py."""

import pytest
import torch

from dreamfusion3d.guidance import ExactImagePrior, ImagePrompt, PriorConfig, load_prior
from dreamfusion3d.guidance import sds as S
from dreamfusion3d.utils.errors import UserError

AZIMUTHS = (0.0, 90.0, 180.0, 270.0)


def _posed_views(objects: int = 2, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    views = 0.1 + 0.8 * torch.rand(objects, len(AZIMUTHS), 3, size, size, generator=g)
    cams = torch.tensor([[[a, 20.0, 3.0] for a in AZIMUTHS]] * objects)
    return views, cams


def _optimise(prompt: ImagePrompt, target: torch.Tensor, steps: int = 300) -> torch.Tensor:
    """Gradient descent on a free image with the image-conditioned SDS gradient alone."""
    x = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.03)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        out = prompt.sds_loss(x.clamp(0, 1), target[None], generator=gen)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        decay.step()
    return x.detach().clamp(0, 1)[0]


@pytest.mark.parametrize("view", [0, 1])
def test_image_sds_on_the_exact_prior_converges_to_the_view_of_the_reference_object(view):
    views, cams = _posed_views()
    # guidance 1: the fixed point of SDS is then exactly the conditional mode (with s > 1 it is
    # pushed away from the unconditional mean, CFG's saturation)
    prior = ExactImagePrior(views, cams, guidance_scale=1.0)
    prior.t_min, prior.t_max = 0.02, 0.6
    reference = views[1, 0]  # object 1 seen from azimuth 0
    prompt = ImagePrompt(prior, reference, cams[1, 0])
    result = _optimise(prompt, cams[1, view])
    errors = (views - result).abs().mean(dim=(2, 3, 4))  # [O, V]
    # view 0 is the reference view itself; view 1 is that object from another camera
    assert errors[1, view] < 0.03, errors
    assert errors[1, view] < 0.25 * errors.flatten().sort().values[1]  # far closer than any other image


def test_exact_image_condition_picks_the_object_and_the_camera():
    views, cams = _posed_views()
    prior = ExactImagePrior(views, cams)
    features = prior.encode_image(views[0, 2][None])
    cond, uncond = prior.image_condition(features, cams[0, 2][None], cams[0, 3][None])
    w = cond.view(2, 4)
    assert int(w.flatten().argmax()) == 3 and float(w[0, 3] / w.sum()) > 0.99
    assert torch.equal(uncond, torch.ones_like(cond))


@pytest.fixture(scope="module")
def tiny_novel_view_prior():
    from dreamfusion3d.guidance.novel_view import NovelViewPrior
    from dreamfusion3d.novel_view.model import NovelViewArchitecture, NovelViewModel

    torch.manual_seed(0)
    arch = NovelViewArchitecture(resolution=16, block_out_channels=(8, 16), norm_num_groups=4)
    return NovelViewPrior(NovelViewModel.from_architecture(arch), guidance_scale=2.5)


def test_novel_view_sds_equals_guided_prediction_of_the_model_itself(tiny_novel_view_prior):
    """SDS of the prior = w(t)(ε̂ − ε) with ε̂ built by hand from the model's own conditioning
    (the sampler's condition/drop_condition) and the v → ε conversion."""
    from dreamfusion3d.novel_view.model import drop_condition

    prior, model = tiny_novel_view_prior, tiny_novel_view_prior.model
    image = torch.rand(3, 24, 24)
    source = torch.tensor([0.0, 20.0, 2.9])
    target = torch.tensor([[60.0, 30.0, 3.1], [200.0, 0.0, 2.7]])
    renders = torch.rand(2, 3, 16, 16, requires_grad=True)
    t = torch.tensor([300, 700])
    noise = torch.randn(2, 3, 16, 16)
    out = ImagePrompt(prior, image, source).sds_loss(renders, target, t=t, noise=noise)
    out.loss.backward()

    ref = 2 * torch.nn.functional.interpolate(image[None], size=(16, 16), mode="bilinear", antialias=True) - 1
    channels, pose = model.condition(ref.expand(2, -1, -1, -1), source.expand(2, 3), target)
    u_channels, u_pose = drop_condition(channels, pose, torch.ones(2, dtype=torch.bool))
    z = 2 * renders.detach() - 1
    a = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    z_t = a.sqrt() * z + (1 - a).sqrt() * noise
    with torch.no_grad():
        v_c, v_u = model(z_t, t, channels, pose), model(z_t, t, u_channels, u_pose)
    eps_c, eps_u = (a.sqrt() * v + (1 - a).sqrt() * z_t for v in (v_c, v_u))
    grad = (1 - a) * (S.classifier_free_guidance(eps_u, eps_c, 2.5) - noise)
    torch.testing.assert_close(out.grad, grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(renders.grad, 2 * grad / 2, rtol=1e-4, atol=1e-5)  # d z / d x = 2, loss / B


def test_text_priors_refuse_an_image_and_image_priors_refuse_text(tiny_novel_view_prior, tiny_bundled_folder):
    with pytest.raises(UserError, match="conditioned on an image"):
        tiny_novel_view_prior.encode_text(["a red cube"])
    text_prior = load_prior(PriorConfig(kind="bundled", model=str(tiny_bundled_folder)))
    with pytest.raises(UserError, match="needs an image prior"):
        ImagePrompt(text_prior, torch.rand(3, 8, 8), (0.0, 20.0, 3.0))


@pytest.fixture(scope="module")
def tiny_zero123_folder(tmp_path_factory):
    from guidance_tiny_models import build_tiny_zero123

    return build_tiny_zero123(tmp_path_factory.mktemp("tiny_zero123"))


def test_tiny_zero123_folder_loads_and_gives_finite_sds_gradients(tiny_zero123_folder):
    prior = load_prior(PriorConfig(kind="zero123", model=str(tiny_zero123_folder), vae_resolution=64,
                                   guidance_scale=3.0))
    assert prior.conditioning == "image" and prior.latent_shape(1) == (1, 4, 32, 32)
    prompt = ImagePrompt(prior, torch.rand(3, 40, 40), (0.0, 10.0, 2.0))
    renders = torch.rand(2, 3, 32, 32, requires_grad=True)
    target = torch.tensor([[45.0, 20.0, 2.0], [180.0, -5.0, 2.5]])
    out = prompt.sds_loss(renders, target, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert not out.nonfinite and torch.isfinite(renders.grad).all() and renders.grad.abs().sum() > 0

    # the conditioning reaches the network: the camera through cc_projection, the image through
    # the concatenated latent; the unconditional branch carries neither
    cond_a, uncond = prompt.conditioning(target[:1])
    cond_b, _ = prompt.conditioning(torch.tensor([[90.0, 20.0, 2.0]]))
    assert not torch.allclose(cond_a["hidden"], cond_b["hidden"])
    assert torch.count_nonzero(uncond["hidden"]) == 0 and torch.count_nonzero(uncond["latent"]) == 0
    z_t, t = torch.randn(1, 4, 32, 32), torch.tensor([500])
    assert not torch.allclose(prior.predict_noise(z_t, t, cond_a), prior.predict_noise(z_t, t, cond_b))


def test_zero123_relative_camera_code():
    from dreamfusion3d.guidance.zero123 import relative_camera

    code = relative_camera(torch.tensor([[10.0, 20.0, 2.0]]), torch.tensor([[100.0, 50.0, 2.5]]))
    expected = torch.tensor([[torch.deg2rad(torch.tensor(-30.0)), 1.0, 0.0, 0.5]])
    torch.testing.assert_close(code, expected, atol=1e-6, rtol=0)


def test_zero123_folder_without_cc_projection_is_one_clear_error(tiny_zero123_folder, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_zero123_folder, broken)
    shutil.rmtree(broken / "cc_projection")
    with pytest.raises(UserError, match="cc_projection") as err:
        load_prior(PriorConfig(kind="zero123", model=str(broken)))
    assert "\n" not in str(err.value)
