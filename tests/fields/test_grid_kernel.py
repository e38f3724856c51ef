"""The compiled kernels (``dreamfusion3d.kernels``): the dense grid's (``kernels/trilinear.c``) the
same numbers as the eager path, split over threads the same way every run; each kernel built once
into its cache; a clean fallback when one cannot be built."""

import pytest
import torch

from dreamfusion3d import kernels
from dreamfusion3d.fields import trilinear

needs_kernel = pytest.mark.skipif(kernels.load("trilinear") is None, reason="no C compiler here")


def both_paths(grid, points, a, b, monkeypatch):
    out = {}
    for name in ("kernel", "eager"):
        with monkeypatch.context() as m:
            if name == "eager":
                m.setattr(kernels, "load", lambda kernel: None)
            value, jac = trilinear.value_and_jacobian(grid, points)
            (g,) = torch.autograd.grad((value * a).sum() + (jac * b).sum(), grid)
        out[name] = (value.detach(), jac.detach(), g)
    return out


@needs_kernel
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_kernel_equals_the_eager_path(dtype, tol, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    grid = torch.randn(5, 6, 7, 9, generator=gen, dtype=dtype).requires_grad_(True)  # F, D≠H≠W
    points = (torch.rand(4000, 3, generator=gen) * 2.4 - 1.2).to(dtype)  # some outside the box
    a = torch.randn(4000, 5, generator=gen, dtype=dtype)
    b = torch.randn(4000, 5, 3, generator=gen, dtype=dtype)
    out = both_paths(grid, points, a, b, monkeypatch)
    for k, e in zip(out["kernel"], out["eager"]):
        torch.testing.assert_close(k, e, atol=tol, rtol=tol)
    assert out["kernel"][2].abs().sum() > 0


@pytest.mark.parametrize("name", ["trilinear", "march", "group_norm"])
def test_built_once_into_the_cache(name, tmp_path, monkeypatch):
    if kernels.compiler() is None:
        pytest.skip("no C compiler here")
    monkeypatch.setenv("DREAMFUSION3D_CACHE", str(tmp_path))
    kernels.load.cache_clear()
    try:
        lib = kernels.load(name)
        assert lib is not None and all(hasattr(lib, f) for f in kernels.SIGNATURES[name])
        (built,) = tmp_path.glob(f"{name}_*.so")
        stamp = built.stat().st_mtime_ns
        assert kernels.build(name, kernels.compiler()) == built and built.stat().st_mtime_ns == stamp  # reused
        assert [p.name for p in tmp_path.iterdir()] == [built.name]  # no build folder left behind
    finally:
        kernels.load.cache_clear()


@pytest.mark.parametrize("how", ["switched off", "no compiler", "build fails"])
def test_falls_back_to_the_eager_path(how, tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMFUSION3D_CACHE", str(tmp_path))
    if how == "switched off":
        monkeypatch.setenv("DREAMFUSION3D_KERNELS", "0")
    elif how == "no compiler":
        monkeypatch.setattr(kernels, "compiler", lambda: None)
    else:
        monkeypatch.setattr(kernels, "compiler", lambda: "false")  # exits 1 without building
    kernels.load.cache_clear()
    try:
        assert kernels.load("trilinear") is None and kernels.load("march") is None
        grid = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
        value, jac = trilinear.value_and_jacobian(grid, torch.rand(10, 3, dtype=torch.float64))
        assert value.shape == (10, 2) and jac.shape == (10, 2, 3)
        assert list(tmp_path.glob("*.so")) == []
    finally:
        kernels.load.cache_clear()


@needs_kernel
def test_threads_split_the_points_and_sum_the_same_way_every_run(monkeypatch):
    """With two threads the backward adds each half of the points into its own grid and sums them
    in order: equal to the eager path, and bitwise the same from run to run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert kernels.threads_for(9000) == 2
        gen = torch.Generator().manual_seed(1)
        grid = torch.randn(4, 8, 8, 8, generator=gen, dtype=torch.float64).requires_grad_(True)
        points = torch.rand(9000, 3, generator=gen, dtype=torch.float64) * 2 - 1
        a = torch.randn(9000, 4, generator=gen, dtype=torch.float64)
        b = torch.randn(9000, 4, 3, generator=gen, dtype=torch.float64)
        first, again = both_paths(grid, points, a, b, monkeypatch), both_paths(grid, points, a, b, monkeypatch)
    finally:
        torch.set_num_threads(threads)
    for k, e in zip(first["kernel"], first["eager"]):
        torch.testing.assert_close(k, e, atol=1e-12, rtol=1e-12)
    assert all(torch.equal(x, y) for x, y in zip(first["kernel"], again["kernel"]))
