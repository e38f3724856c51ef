"""Two levers of the SDS loop: the parameters' moving average (``optim.ema_decay``) and random
background colours for the prior's views (``background.random_prob``)."""

import torch

from dreamfusion3d.cameras import orbit_cameras
from dreamfusion3d.fields import FieldConfig
from dreamfusion3d.generate.config import GenerateConfig
from dreamfusion3d.generate.loop import Generation
from dreamfusion3d.rendering import BackgroundConfig, RendererConfig
from dreamfusion3d.rendering.background import replace_background
from dreamfusion3d.representations import SDFConfig, SDFGeometry


def tiny_generation(out, prior_folder, **optim) -> Generation:
    cfg = GenerateConfig(prompt="a red cube", out=out, steps=10, batch_size=1, resolution=16, seed=3,
                         device="cpu", geometry="sdf")
    cfg.prior.model = str(prior_folder)
    cfg.field = FieldConfig(kind="dense", dense_resolution=16, dense_features=4)
    cfg.renderer = RendererConfig(num_steps=24, occupancy_resolution=16, occupancy_update_every=2,
                                  occupancy_warmup_steps=4)
    cfg.shading.albedo_only_steps = 1
    cfg.optim.warmup_steps = 1
    for k, v in optim.items():
        setattr(cfg.optim, k, v)
    return Generation(cfg, cfg.prompt, out)


def test_the_result_is_the_moving_average_of_the_steps_from_ema_start(tmp_path, tiny_prior):
    decay, start, steps = 0.7, 3, 8
    gen = tiny_generation(tmp_path, tiny_prior, ema_decay=decay, ema_start=start)
    after = []  # every parameter after each step, by hand
    for _ in range(steps):
        gen.train_step()
        after.append([p.detach().clone() for p in gen.representation.parameters()])
    expected = after[start]  # the first averaged step is copied, then e ← decay·e + (1 − decay)·p
    for k in range(start + 1, steps):
        expected = [decay * e + (1 - decay) * p for e, p in zip(expected, after[k])]
    gen._apply_ema()
    got = list(gen.representation.parameters())
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    # the average is not simply the last step (the steps did move the parameters)
    assert max(float((g.detach() - a).abs().max()) for g, a in zip(got, after[-1])) > 1e-4


def test_without_ema_the_result_is_the_last_step(tmp_path, tiny_prior):
    gen = tiny_generation(tmp_path, tiny_prior)
    assert gen.ema is None
    for _ in range(3):
        gen.train_step()
    last = [p.detach().clone() for p in gen.representation.parameters()]
    gen._apply_ema()
    for a, b in zip(last, gen.representation.parameters()):
        assert torch.equal(a, b)


def test_replaced_background_equals_a_render_over_that_background():
    """Recompositing a render over another colour is exact: the renderer itself, given that colour
    as its background, draws the same image."""

    def geometry(colour):
        sections = {"field": FieldConfig(kind="dense", dense_resolution=16, dense_features=4),
                    "sdf": SDFConfig(init_radius=0.5, beta_start=0.05, beta_end=0.05),
                    "renderer": RendererConfig(num_steps=64, use_occupancy=False, stratified=False),
                    "background": BackgroundConfig(kind="fixed", color=colour)}
        torch.manual_seed(0)
        return SDFGeometry.from_sections(sections).eval()

    white, other = (1.0, 1.0, 1.0), (0.2, 0.5, 0.9)
    cams = orbit_cameras([0.0, 90.0], [10.0, 30.0], 2.5, 40.0, 20)
    with torch.no_grad():
        over_white = geometry(white).render(cams, shading="albedo")
        over_other = geometry(other).render(cams, shading="albedo")
    assert 0.05 < float(over_white["opacity"].mean()) < 0.95  # object and background both in view
    new = torch.tensor([other, white])  # the first view recomposited, the second kept
    got = replace_background(over_white["rgb"], over_white["opacity"], torch.tensor(white), new)
    torch.testing.assert_close(got[0], over_other["rgb"][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1], over_white["rgb"][1])
    assert float((got[0] - over_white["rgb"][0]).abs().max()) > 0.5  # the background did change


def test_random_background_draws_change_only_the_chosen_views(tmp_path, tiny_prior):
    gen = tiny_generation(tmp_path, tiny_prior)
    gen.cfg.background.random_prob = 1.0
    rgb = torch.full((2, 4, 4, 3), 0.5)
    opacity = torch.zeros(2, 4, 4, 1)
    opacity[:, :2] = 1.0  # top half object, bottom half background
    out = gen._random_background({"rgb": rgb, "opacity": opacity})
    assert torch.equal(out[:, :2], rgb[:, :2])  # the object is untouched
    assert not torch.allclose(out[:, 2:], rgb[:, 2:])  # the background is a new colour
    assert torch.equal(out[:, 2:, :1], out[:, 2:, 1:2].expand_as(out[:, 2:, :1]))  # one colour per view
    gen.cfg.background.random_prob = 0.0
    assert gen._random_background({"rgb": rgb, "opacity": opacity}) is rgb
