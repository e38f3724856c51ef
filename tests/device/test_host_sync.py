"""No host sync in an SDS step (outside the sampler's data-dependent shapes), same figures as before."""

import inspect
import math

import pytest
import torch
from torch.overrides import TorchFunctionMode

from dreamfusion3d.cameras import VIEW_LABELS, view_labels, wrap_azimuth
from dreamfusion3d.fields import FieldConfig
from dreamfusion3d.generate.config import GenerateConfig
from dreamfusion3d.generate.loop import Generation
from dreamfusion3d.guidance import ExactPrior, PromptProcessor
from dreamfusion3d.rendering import RendererConfig

# Tensor methods that copy a value to the host (on a GPU: wait for the device).
SYNCING = {"item", "__bool__", "tolist", "cpu", "__int__", "__float__", "__index__", "__format__", "nonzero",
           "numpy", "unique", "masked_select"}
# Where reading back is inherent or planned: the samplers' data-dependent sizes (nerfacc's packed
# CUDA sampling too), the occupancy-grid refresh (every N steps), and draws from the run's CPU
# generator and Adam's step counters (CPU tensors on any machine).
ALLOWED = {"march_cpu", "march_cuda", "update_occupancy", "_shading", "_get_value"}


class SyncSpy(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in SYNCING:
            frames = [f.function for f in inspect.stack()[1:40]]
            if not ALLOWED & set(frames):
                caller = next(f for f in inspect.stack()[1:] if "torch" not in f.filename)
                self.found.append(f"{name} at {caller.filename.split('dreamfusion3d')[-1]}:{caller.lineno}")
        return func(*args, **(kwargs or {}))


def tiny_generation(tmp_path, prior_folder, geometry="nerf", **prompting) -> Generation:
    cfg = GenerateConfig(prompt="a red cube", out=tmp_path, steps=20, batch_size=2, resolution=16, seed=3,
                         device="cpu", geometry=geometry)
    cfg.prior.model = str(prior_folder)
    cfg.field = FieldConfig(kind="dense", dense_resolution=16, dense_features=4)
    cfg.renderer = RendererConfig(num_steps=24, occupancy_resolution=16, occupancy_update_every=2,
                                  occupancy_warmup_steps=4)
    cfg.shading.albedo_only_steps = 1
    for k, v in prompting.items():
        setattr(cfg.prompting, k, v)
    return Generation(cfg, cfg.prompt, tmp_path)


@pytest.mark.parametrize("prompting", [{}, {"interpolate_views": True, "perp_neg": True}, {"geometry": "sdf"}])
def test_a_step_reads_nothing_back(tmp_path, tiny_prior, prompting):
    gen = tiny_generation(tmp_path, tiny_prior, **prompting)
    for _ in range(3):
        gen.train_step()
    with SyncSpy() as spy:
        for _ in range(3):
            stats = gen.train_step()
    assert spy.found == []
    assert isinstance(stats.sds, torch.Tensor) and math.isfinite(float(stats.sds))


def _reference_positive(pp: PromptProcessor, az, el):
    """The per-camera embeddings as the Python loop over view words computed them."""
    labels = view_labels(az, el, pp.front_half_angle, pp.overhead_elevation)
    if not pp.interpolate_views:
        return torch.stack([pp.view_embs[v] for v in labels])
    out = []
    for label, a in zip(labels, wrap_azimuth(az).abs().tolist()):
        if label == "overhead":
            out.append(pp.view_embs["overhead"])
        elif a <= 90.0:
            out.append(torch.lerp(pp.view_embs["front"], pp.view_embs["side"], a / 90.0))
        else:
            out.append(torch.lerp(pp.view_embs["side"], pp.view_embs["back"], (a - 90.0) / 90.0))
    return torch.stack(out)


def _reference_negative_weights(pp: PromptProcessor, az, el):
    labels = view_labels(az, el, pp.front_half_angle, pp.overhead_elevation)
    rows = []
    for label, a in zip(labels, wrap_azimuth(az).abs().tolist()):
        r = a / 90.0 if a <= 90.0 else (a - 90.0) / 90.0
        rows.append([0.0, 0.0] if label == "overhead" else [r, 1.0 - r] if a <= 90.0 else [1.0, r])
    return torch.tensor(rows) * pp.perp_neg_weight


@pytest.mark.parametrize("interpolate", [False, True])
def test_device_side_view_conditioning_matches_the_python_rules(interpolate):
    prior = ExactPrior(torch.rand(4, 3, 4, 4), captions={"a red cube": [0, 1]})
    pp = PromptProcessor(prior, "a red cube", interpolate_views=interpolate, perp_neg_weight=0.7)
    g = torch.Generator().manual_seed(0)
    az = torch.cat([torch.rand(200, generator=g) * 720.0 - 360.0, torch.tensor([0.0, 45.0, 90.0, 135.0, 180.0, -180.0])])
    el = torch.cat([torch.rand(200, generator=g) * 100.0 - 10.0, torch.tensor([60.0, 0.0, 59.9, 10.0, 61.0, 0.0])])
    labels = view_labels(az, el)
    assert set(labels) == set(VIEW_LABELS)
    got, want = pp._positive(az, el), _reference_positive(pp, az, el)
    if interpolate:  # tensor vs Python-float weights: equal up to float rounding
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    else:
        assert torch.equal(got, want)
    torch.testing.assert_close(pp.negative_weights(az, el), _reference_negative_weights(pp, az, el), rtol=0, atol=1e-6)


class _NaNPrior(ExactPrior):
    def _model_output(self, z_t, t, emb):
        out = super()._model_output(z_t, t, emb)
        out[0, 0, 0, 0] = float("nan")
        return out


def test_deferred_nonfinite_check_reports_once(capsys):
    prior = _NaNPrior(torch.rand(3, 3, 4, 4))
    prior.defer_finite_check = True
    c = prior.encode_text([""])
    for _ in range(2):
        images = torch.rand(2, 3, 4, 4, requires_grad=True)
        out = prior.sds_loss(images, c, c)
        out.loss.backward()
        assert torch.equal(images.grad, torch.zeros_like(images))
    assert capsys.readouterr().err == ""  # nothing read back during the steps
    assert out.nonfinite and prior.report_nonfinite() == 2
    assert "2 step(s) had a non-finite SDS gradient" in capsys.readouterr().err
    assert prior.report_nonfinite() == 0
