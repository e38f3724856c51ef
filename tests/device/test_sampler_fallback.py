"""nerfacc's CUDA kernels unavailable → the portable sampler on the GPU, with one warning (build mocked)."""

from types import SimpleNamespace

import pytest
import torch

from dreamfusion3d.fields import FieldConfig
from dreamfusion3d.rendering import BackgroundConfig, RendererConfig, kernels
from dreamfusion3d.rendering import renderer as renderer_module
from dreamfusion3d.representations import build_nerf


@pytest.fixture(autouse=True)
def _fresh_decision():
    kernels.reset()
    yield
    kernels.reset()


def _fake_backend(monkeypatch, outcome):
    """Make ``from nerfacc.cuda._backend import _C`` raise ``outcome`` or give a module holding it."""
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "nerfacc.cuda._backend":
            if isinstance(outcome, Exception):
                raise outcome
            return SimpleNamespace(_C=outcome)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


@pytest.mark.parametrize("outcome, why", [
    (RuntimeError("Error building extension 'nerfacc_cuda': nvcc failed\nmore lines"),
     "their JIT build failed: Error building extension 'nerfacc_cuda': nvcc failed"),
    (OSError("libcudart.so: cannot open shared object file"),
     "their JIT build failed: libcudart.so: cannot open shared object file"),
    (None, "no CUDA toolkit (nvcc) to build them"),  # nerfacc's own "No CUDA toolkit found" case
])
def test_unbuildable_kernels_mean_one_warning_then_the_portable_sampler(monkeypatch, capsys, outcome, why):
    _fake_backend(monkeypatch, outcome)
    assert kernels.nerfacc_cuda_ready() is False
    assert kernels.nerfacc_cuda_ready() is False  # decided once
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and why in warnings[0] and "portable sampler on the GPU" in warnings[0]


def test_built_kernels_are_used_without_a_warning(monkeypatch, capsys):
    _fake_backend(monkeypatch, SimpleNamespace(traverse_grids=None))
    assert kernels.nerfacc_cuda_ready() is True
    assert "warning" not in capsys.readouterr().err


def _renderer():
    return build_nerf(FieldConfig(kind="dense", dense_resolution=8, dense_features=2),
                          RendererConfig(num_steps=16, occupancy_resolution=8), BackgroundConfig(kind="fixed"))


@pytest.mark.parametrize("ready, expected", [(True, "cuda"), (False, "cpu")])
def test_renderer_picks_the_sampler_by_the_decision(monkeypatch, ready, expected):
    calls = []
    monkeypatch.setattr(renderer_module, "nerfacc_cuda_ready", lambda: ready)
    monkeypatch.setattr(renderer_module, "march_cuda", lambda *a, **k: calls.append("cuda"))
    monkeypatch.setattr(renderer_module, "march_cpu", lambda *a, **k: calls.append("cpu"))
    gpu_rays = SimpleNamespace(is_cuda=True)  # rays that claim to live on a GPU
    _renderer().sample(gpu_rays, gpu_rays)
    assert calls == [expected]


def test_cpu_rays_never_probe_the_kernels(monkeypatch):
    monkeypatch.setattr(kernels, "_probe", lambda: pytest.fail("probed on a CPU render"))
    r = _renderer()
    origins = torch.tensor([[0.0, 0.0, 3.0]])
    dirs = torch.tensor([[0.0, 0.0, -1.0]])
    assert r.sample(origins, dirs).num_samples > 0


def test_the_environment_can_turn_the_kernels_off(monkeypatch, capsys):
    monkeypatch.setenv("DREAMFUSION3D_NERFACC_CUDA", "0")
    monkeypatch.setattr(kernels, "_probe", lambda: pytest.fail("probed although turned off"))
    assert kernels.nerfacc_cuda_ready() is False
    assert "DREAMFUSION3D_NERFACC_CUDA=0" in capsys.readouterr().err
