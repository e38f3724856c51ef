"""The compiled grid + ReLU head (``fields.dense_head``, ``kernels/trilinear.c``): its outputs, its
gradient in x and every parameter gradient of a loss on both against autograd's double backward
through ``grid_sample`` (an independent reference); the thread split summing the same way every
run; and ``None`` (the caller's autograd path) wherever the kernel does not apply."""

import pytest
import torch
import torch.nn.functional as F

from dreamfusion3d import kernels
from dreamfusion3d.fields import FieldConfig, build_encoding, mlp
from dreamfusion3d.fields.dense_head import grid_head_and_gradient

needs_kernel = pytest.mark.skipif(kernels.load("trilinear") is None, reason="no C compiler here")


def field(features=5, hidden=6, resolution=7, layers=1, coarse=0, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    enc = build_encoding(FieldConfig(kind="dense", dense_resolution=resolution, dense_features=features,
                                     dense_coarse_resolution=coarse)).to(dtype)
    head = mlp(features, hidden, layers, 4).to(dtype)
    with torch.no_grad():
        enc.grid.normal_(0.0, 0.5)
    return enc, head


def reference(enc, head, points):
    """head(grid_sample(grid, x)) and ∂out₀/∂x by autograd, kept differentiable (double backward)."""
    p = points.clone().requires_grad_(True)
    feats = F.grid_sample(enc.grid, p.view(1, -1, 1, 1, 3), mode="bilinear", padding_mode="border",
                          align_corners=True).view(enc.features, -1).t()
    out = head(feats)
    (grad,) = torch.autograd.grad(out[:, 0].sum(), p, create_graph=True)
    return out, grad


@needs_kernel
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-11), (torch.float32, 3e-4)])
@pytest.mark.parametrize("n", [1, 31, 1000])  # partial tiles of 32 points, and one point
def test_outputs_gradient_and_parameter_gradients_equal_autograd(dtype, tol, n):
    enc, head = field(dtype=dtype)
    gen = torch.Generator().manual_seed(1)
    points = (torch.rand(n, 3, generator=gen) * 2.4 - 1.2).to(dtype)  # some outside the box: clamped
    out, grad = grid_head_and_gradient(enc, head, points)
    ref_out, ref_grad = reference(enc, head, points)
    scale = lambda t: tol * max(1.0, float(t.abs().max()))  # noqa: E731
    torch.testing.assert_close(out, ref_out, atol=scale(ref_out), rtol=0)
    torch.testing.assert_close(grad, ref_grad, atol=scale(ref_grad), rtol=0)
    a, b = torch.randn(n, 4, generator=gen, dtype=dtype), torch.randn(n, 3, generator=gen, dtype=dtype)
    params = [enc.grid, *head.parameters()]
    got = torch.autograd.grad((out * a).sum() + (grad * b).sum(), params)
    want = torch.autograd.grad((ref_out * a).sum() + (ref_grad * b).sum(), params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=scale(w), rtol=0)
    assert all(g.abs().sum() > 0 for g in got)


@needs_kernel
def test_only_one_of_the_two_outputs_used():
    """A loss on the outputs alone (albedo) or on the gradient alone (eikonal) still matches."""
    enc, head = field()
    points = torch.rand(300, 3, dtype=torch.float64) * 2 - 1
    for pick in (0, 1):
        got = grid_head_and_gradient(enc, head, points)[pick].square().sum()
        want = reference(enc, head, points)[pick].square().sum()
        params = [enc.grid, *head.parameters()]
        g = torch.autograd.grad(got, params)
        w = torch.autograd.grad(want, params, allow_unused=True)  # the last bias does not reach ∂out₀/∂x
        for x, y, prm in zip(g, w, params):
            torch.testing.assert_close(x, torch.zeros_like(prm) if y is None else y, atol=1e-10, rtol=0)


@needs_kernel
def test_two_threads_sum_the_same_way_every_run(monkeypatch):
    enc, head = field(features=8, hidden=32, resolution=16, dtype=torch.float32)
    points = torch.rand(20000, 3) * 2 - 1
    b = torch.randn(20000, 3)

    def grads(threads):
        monkeypatch.setattr(kernels, "threads_for", lambda n: threads)
        out, grad = grid_head_and_gradient(enc, head, points)
        return torch.autograd.grad(out.sum() + (grad * b).sum(), [enc.grid, *head.parameters()])

    first, again, single = grads(2), grads(2), grads(1)
    for x, y, z in zip(first, again, single):
        assert torch.equal(x, y)  # bitwise, run to run
        torch.testing.assert_close(x, z, atol=1e-3 * float(z.abs().max()), rtol=0)  # one thread: same sums, other order


@pytest.mark.parametrize("case", ["coarse grid", "two hidden layers", "no compiled kernel", "hash grid"])
def test_not_applicable_returns_none(case, monkeypatch):
    if case == "coarse grid":
        enc, head = field(coarse=3)
    elif case == "two hidden layers":
        enc, head = field(layers=2)
    elif case == "hash grid":
        enc = build_encoding(FieldConfig(kind="hashgrid", hash_levels=2, hash_log2_table_size=8))
        head = mlp(enc.output_dim, 8, 1, 4)
    else:
        enc, head = field()
        monkeypatch.setattr(kernels, "load", lambda name: None)
    assert grid_head_and_gradient(enc, head, torch.rand(10, 3, dtype=torch.float64)) is None


@needs_kernel
def test_the_kernel_reads_the_grid_where_it_lies_and_hands_its_gradient_back_in_that_layout():
    """The dense grid is stored channels-last ([z][y][x][F] in memory: the kernels' point-major
    rows), so a step copies nothing out of it, and its gradient arrives in the same layout (which
    autograd then keeps as ``.grad`` instead of copying)."""
    enc, head = field(features=8, hidden=32, resolution=16, dtype=torch.float32)
    assert enc.grid.is_contiguous(memory_format=torch.channels_last_3d) and not enc.grid.is_contiguous()
    points = torch.rand(500, 3) * 2 - 1
    with torch.profiler.profile() as prof:
        out, grad = grid_head_and_gradient(enc, head, points)
    assert not [e.name for e in prof.events() if e.name in ("aten::copy_", "aten::clone")]
    (out.sum() + grad.square().sum()).backward()
    assert enc.grid.grad.is_contiguous(memory_format=torch.channels_last_3d)
    # the same numbers as a contiguous copy of the grid read by the reference
    plain = field(features=8, hidden=32, resolution=16, dtype=torch.float32)[0]
    with torch.no_grad():
        plain.grid.copy_(enc.grid)
    torch.testing.assert_close(out, reference(plain, head, points)[0], atol=1e-5, rtol=0)


def test_a_checkpoint_keeps_the_grid_and_adams_state_in_the_grids_layout(tmp_path):
    from dreamfusion3d.utils.checkpoint import load_checkpoint, save_checkpoint

    enc, _ = field(features=4, resolution=6, dtype=torch.float32)
    opt = torch.optim.Adam(enc.parameters(), lr=0.1)
    enc.grid.square().sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "ck", {"enc": enc}, opt)
    enc2, _ = field(features=4, resolution=6, dtype=torch.float32, seed=1)
    opt2 = torch.optim.Adam(enc2.parameters(), lr=0.1)
    load_checkpoint(tmp_path / "ck", {"enc": enc2}, opt2)
    assert torch.equal(enc2.grid, enc.grid) and enc2.grid.stride() == enc.grid.stride()
    for key in ("exp_avg", "exp_avg_sq"):
        saved, restored = opt.state[enc.grid][key], opt2.state[enc2.grid][key]
        assert torch.equal(restored, saved) and restored.stride() == enc2.grid.stride()
