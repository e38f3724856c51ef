import json

import pytest
import torch

from dreamfusion3d.novel_view.model import CameraPrior, NovelViewArchitecture, NovelViewModel, drop_condition
from dreamfusion3d.novel_view.sampling import generation_order, sample_views
from dreamfusion3d.novel_view.train import diffusion_loss
from dreamfusion3d.utils.errors import UserError

TINY = NovelViewArchitecture(resolution=16, block_out_channels=(16, 32), norm_num_groups=8)


def _fixed_batch(b: int = 8, res: int = 16):
    """Pairs of views of 'objects' whose target is a pose-dependent transform of the source."""
    g = torch.Generator().manual_seed(0)
    src = torch.rand(b, 3, res, res, generator=g) * 2 - 1
    tgt = torch.flip(src, dims=[-1]) * 0.5
    s_sph = torch.tensor([[0.0, 20.0, 3.0]]).repeat(b, 1)
    t_sph = torch.tensor([[180.0, 20.0, 3.0]]).repeat(b, 1)
    return src, tgt, s_sph, t_sph


def test_input_channels_and_forward_shape():
    model = NovelViewModel.from_architecture(TINY)
    assert model.unet.config.in_channels == 6
    src, tgt, s, t = _fixed_batch(2)
    cond, pose = model.condition(src, s, t)
    eps = model(tgt, torch.tensor([10, 500]), cond, pose)
    assert eps.shape == tgt.shape
    rays = NovelViewModel.from_architecture(NovelViewArchitecture(resolution=16, block_out_channels=(16, 32),
                                                                  ray_conditioning=True))
    assert rays.unet.config.in_channels == 18
    cond, pose = rays.condition(src, s, t)
    assert cond.shape == (2, 15, 16, 16) and rays(tgt, torch.tensor([1, 2]), cond, pose).shape == tgt.shape


def test_pose_changes_the_prediction():
    model = NovelViewModel.from_architecture(TINY)
    src, tgt, s, t = _fixed_batch(2)
    cond, pose = model.condition(src, s, t)
    with torch.no_grad():
        a = model(tgt, torch.tensor([100, 100]), cond, pose)
        _, pose2 = model.condition(src, s, t + torch.tensor([90.0, 0.0, 0.0]))
        b = model(tgt, torch.tensor([100, 100]), cond, pose2)
    assert (a - b).abs().max() > 1e-4


def test_drop_condition_zeroes_source_and_pose_only_where_asked():
    cond = torch.ones(3, 6, 4, 4)
    pose = torch.ones(3, 9)
    c, p = drop_condition(cond, pose, torch.tensor([True, False, True]))
    assert c[0, :3].abs().sum() == 0 and c[2, :3].abs().sum() == 0 and torch.all(c[1] == 1)
    assert torch.all(c[:, 3:] == 1)  # ray maps (if any) are kept
    assert p[0].abs().sum() == 0 and torch.all(p[1] == 1)


def test_short_training_reduces_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = NovelViewModel.from_architecture(TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    src, tgt, s, t = _fixed_batch()

    def loss_now() -> float:  # same noise and timesteps every time
        with torch.no_grad():
            return float(diffusion_loss(model, model, src, tgt, s, t, torch.Generator().manual_seed(1), 0.0))

    before = loss_now()
    for i in range(40):
        loss = diffusion_loss(model, model, src, tgt, s, t, torch.Generator().manual_seed(100 + i), 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = loss_now()
    assert after < 0.6 * before, (before, after)


def test_save_and_load_roundtrip(tmp_path):
    model = NovelViewModel.from_architecture(TINY, CameraPrior(elevation=17.0, object_fraction=0.4))
    model.save_pretrained(tmp_path / "m", info={"steps": 3})
    assert (tmp_path / "m" / "unet" / "config.json").is_file()
    assert list((tmp_path / "m" / "unet").glob("*.safetensors"))
    assert (tmp_path / "m" / "scheduler" / "scheduler_config.json").is_file()
    meta = json.loads((tmp_path / "m" / "novel_view.json").read_text())
    assert meta["architecture"]["resolution"] == 16 and meta["info"]["steps"] == 3
    loaded = NovelViewModel.from_pretrained(tmp_path / "m")
    assert loaded.camera.elevation == 17.0 and loaded.resolution == 16
    for (n, a), (_, b) in zip(model.unet.state_dict().items(), loaded.unet.state_dict().items()):
        assert torch.equal(a, b), n
    half = tmp_path / "h"
    model.save_pretrained(half, fp16=True)
    assert next(NovelViewModel.from_pretrained(half).unet.parameters()).dtype == torch.float32
    assert next(NovelViewModel.from_pretrained(half, dtype=torch.float16).unet.parameters()).dtype == torch.float16


def test_loading_a_non_model_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a novel-view model folder"):
        NovelViewModel.from_pretrained(tmp_path)


def test_sampling_is_deterministic_per_seed():
    model = NovelViewModel.from_architecture(TINY).eval()
    src = torch.rand(2, 3, 16, 16)
    s_sph = torch.tensor([[0.0, 20.0, 3.0], [0.0, 10.0, 3.0]])
    t_sph = torch.tensor([[[90.0, 20.0, 3.0], [180.0, 20.0, 3.0], [270.0, 30.0, 3.0]]]).repeat(2, 1, 1)

    def run(seed, stochastic=True):
        return sample_views(model, src, s_sph, t_sph, steps=4, guidance_scale=2.0, stochastic=stochastic,
                            generator=torch.Generator().manual_seed(seed))

    a, b, c = run(0), run(0), run(1)
    assert a.shape == (2, 3, 3, 16, 16)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    # the first generated view has only the input to condition on: both modes agree on it
    single = run(0, stochastic=False)
    assert torch.allclose(single[:, 0], run(0, stochastic=False)[:, 0])


def test_stochastic_conditioning_uses_generated_views(monkeypatch):
    """With stochastic conditioning, later views are conditioned on earlier generated views too."""
    model = NovelViewModel.from_architecture(TINY).eval()
    seen = []
    original = model.condition

    def spy(source, src_sph, tgt_sph):
        seen.append(src_sph[:, 0].clone())
        return original(source, src_sph, tgt_sph)

    monkeypatch.setattr(model, "condition", spy)
    t_sph = torch.tensor([[[90.0, 20.0, 3.0], [180.0, 20.0, 3.0], [270.0, 20.0, 3.0]]])
    sample_views(model, torch.rand(1, 3, 16, 16), torch.tensor([[0.0, 20.0, 3.0]]), t_sph, steps=20,
                 generator=torch.Generator().manual_seed(0))
    azimuths = {round(float(a)) for s in seen for a in s}
    assert {0, 90, 180} <= azimuths  # input and the first two generated views all served as condition
    seen.clear()
    sample_views(model, torch.rand(1, 3, 16, 16), torch.tensor([[0.0, 20.0, 3.0]]), t_sph, steps=20,
                 stochastic=False, generator=torch.Generator().manual_seed(0))
    assert {round(float(a)) for s in seen for a in s} == {0}


def _conditioning_azimuths(monkeypatch, **kwargs) -> list[list[int]]:
    """Azimuth of the conditioning view at every denoising step, grouped per generated view."""
    model = NovelViewModel.from_architecture(TINY).eval()
    seen: list[int] = []
    original = model.condition

    def spy(source, src_sph, tgt_sph):
        seen.append(round(float(src_sph[0, 0])))
        return original(source, src_sph, tgt_sph)

    monkeypatch.setattr(model, "condition", spy)
    t_sph = torch.tensor([[[90.0, 20.0, 3.0], [180.0, 20.0, 3.0], [270.0, 20.0, 3.0]]])
    steps = kwargs.pop("steps", 40)
    sample_views(model, torch.rand(1, 3, 16, 16), torch.tensor([[0.0, 20.0, 3.0]]), t_sph, steps=steps,
                 generator=torch.Generator().manual_seed(0), **kwargs)
    return [seen[i:i + steps] for i in range(0, len(seen), steps)]


def test_input_weight_sets_the_share_of_steps_on_the_input(monkeypatch):
    # weight 1: every step of every view conditions on the input, as single-view conditioning does
    assert all(az == 0 for view in _conditioning_azimuths(monkeypatch, input_weight=1.0) for az in view)
    # weight 0: once a generated view exists, the input is never drawn again
    first, second, third = _conditioning_azimuths(monkeypatch, input_weight=0.0)
    assert set(first) == {0} and set(second) == {90} and set(third) == {90, 180}
    # weight 0.5 over 3 x 200 draws: the input's share of the later views is near 1/2, where a
    # uniform draw over the pool (3DiM) gives 1/2 for the second view and 1/3 for the third
    _, second, third = _conditioning_azimuths(monkeypatch, input_weight=0.5, steps=200)
    assert abs(third.count(0) / 200 - 0.5) < 0.1 and abs(second.count(0) / 200 - 0.5) < 0.1
    _, _, third = _conditioning_azimuths(monkeypatch, input_weight=None, steps=200)
    assert abs(third.count(0) / 200 - 1 / 3) < 0.1
    with pytest.raises(ValueError, match="input_weight"):
        _conditioning_azimuths(monkeypatch, input_weight=1.5)


def test_generation_order_nearest_first():
    src = torch.tensor([0.0, 20.0, 3.0])
    tgt = torch.tensor([[180.0, 20.0, 3.0], [45.0, 20.0, 3.0], [270.0, 20.0, 3.0], [0.0, 20.0, 3.0]])
    assert generation_order(src, tgt) == [3, 1, 2, 0]


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_loss_target_matches_the_closed_form(prediction_type):
    """A network that outputs the analytic target (ε, or v = √ᾱ ε − √(1−ᾱ) x0) has zero loss."""
    from dreamfusion3d.novel_view.train import draw_noise

    arch = NovelViewArchitecture(resolution=16, block_out_channels=(16, 32), prediction_type=prediction_type)
    core = NovelViewModel.from_architecture(arch)
    src, tgt, s, t = _fixed_batch(4)
    drawn = draw_noise(torch.Generator().manual_seed(3), 4, (3, 16, 16), 1000, 0.0)
    steps, noise, _ = drawn
    ab = core.scheduler.alphas_cumprod[steps].view(-1, 1, 1, 1)
    x_t = ab.sqrt() * tgt + (1 - ab).sqrt() * noise
    answer = noise if prediction_type == "epsilon" else ab.sqrt() * noise - (1 - ab).sqrt() * tgt

    class Oracle(torch.nn.Module):
        def forward(self, x, tt, cond, pose):
            assert torch.allclose(x, x_t, atol=1e-5) and torch.equal(tt, steps)
            return answer

    loss = diffusion_loss(Oracle(), core, src, tgt, s, t, torch.Generator(), 0.0, drawn)
    assert float(loss) < 1e-10


def test_unknown_prediction_type_is_user_error():
    with pytest.raises(UserError, match="prediction_type"):
        NovelViewModel.from_architecture(NovelViewArchitecture(resolution=16, block_out_channels=(16, 32),
                                                               prediction_type="sample"))


@pytest.mark.parametrize("sampler", ["dpmsolver", "unipc"])
def test_multistep_samplers_run_deterministically_and_differ_from_ddim(sampler):
    """The issue-23 samplers: same seed, same views; a fresh solver state per view (a second call
    gives the same result as the first); valid images."""
    model = NovelViewModel.from_architecture(TINY).eval()
    src = torch.rand(1, 3, 16, 16)
    s_sph = torch.tensor([[0.0, 20.0, 3.0]])
    t_sph = torch.tensor([[[90.0, 20.0, 3.0], [180.0, 20.0, 3.0]]])

    def run(name):
        return sample_views(model, src, s_sph, t_sph, steps=5, sampler=name, generator=torch.Generator().manual_seed(0))

    a, b = run(sampler), run(sampler)
    assert torch.equal(a, b) and a.shape == (1, 2, 3, 16, 16)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert (a - run("ddim")).abs().max() > 1e-4


def test_unknown_sampler_is_an_error():
    model = NovelViewModel.from_architecture(TINY).eval()
    with pytest.raises(UserError, match="unknown sampler"):
        sample_views(model, torch.rand(1, 3, 16, 16), torch.tensor([[0.0, 20.0, 3.0]]),
                     torch.tensor([[[90.0, 20.0, 3.0]]]), steps=2, sampler="euler")
