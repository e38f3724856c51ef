"""The blurred dense grid (``field.dense_blur``, ``fields.encoding.separable_blur``): the blur against
scipy's Gaussian filter (an independent implementation), what it keeps and removes, and the compiled
grid + head kernel reading the blurred grid against autograd through ``grid_sample`` on it."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from dreamfusion3d import kernels
from dreamfusion3d.fields import FieldConfig, build_encoding, mlp
from dreamfusion3d.fields.dense_head import grid_head_and_gradient
from dreamfusion3d.fields.encoding import blur_matrix, separable_blur


@pytest.mark.parametrize("sigma", [0.6, 1.0, 1.7])
def test_blur_equals_scipy_gaussian_filter_with_replicated_borders(sigma):
    gen = torch.Generator().manual_seed(0)
    grid = torch.randn(1, 3, 6, 9, 11, generator=gen, dtype=torch.float64)  # unequal sides: axes not mixed up
    got = separable_blur(grid, tuple(blur_matrix(n, sigma) for n in (6, 9, 11)))
    assert got.is_contiguous(memory_format=torch.channels_last_3d)  # the layout the compiled kernels read
    for c in range(3):
        want = gaussian_filter(grid[0, c].numpy(), sigma, mode="nearest", truncate=2.0)
        np.testing.assert_allclose(got[0, c].numpy(), want, atol=1e-12)


def test_blur_keeps_constants_and_removes_voxel_scale_relief():
    k = (blur_matrix(8, 1.0),) * 3
    const = torch.full((1, 2, 8, 8, 8), 0.7, dtype=torch.float64)
    torch.testing.assert_close(separable_blur(const, k), const)
    i = torch.arange(8)
    checker = ((i[:, None, None] + i[None, :, None] + i[None, None, :]) % 2 * 2 - 1).double()[None, None]
    inner = separable_blur(checker, k)[0, 0, 2:-2, 2:-2, 2:-2]  # away from the replicated border
    assert inner.abs().max() < 0.01  # ±1 → below 1 %


def blurred_field(dtype=torch.float64):
    torch.manual_seed(0)
    enc = build_encoding(FieldConfig(kind="dense", dense_resolution=7, dense_features=5, dense_blur=1.0)).to(dtype)
    head = mlp(5, 6, 1, 4).to(dtype)
    with torch.no_grad():
        enc.grid.normal_(0.0, 0.5)
    return enc, head


def test_encoding_reads_the_blurred_grid_and_its_gradient_reaches_the_parameter():
    enc, _ = blurred_field()
    assert enc.blur_sigma == 1.0
    points = torch.rand(50, 3, dtype=torch.float64) * 2 - 1
    blurred = torch.from_numpy(gaussian_filter(enc.grid.detach().numpy(), (0, 0, 1.0, 1.0, 1.0), mode="nearest",
                                               truncate=2.0))
    want = F.grid_sample(blurred, points.view(1, -1, 1, 1, 3), mode="bilinear", padding_mode="border",
                         align_corners=True).view(5, -1).t()
    torch.testing.assert_close(enc(points), want)
    value, jac = enc.value_and_jacobian(points)
    torch.testing.assert_close(value, want)
    assert jac.shape == (50, 5, 3)
    (grad,) = torch.autograd.grad(enc(points).sum(), enc.grid)
    assert grad.abs().sum() > 0
    # the adjoint of a blur is the same blur: a unit loss on one voxel's features spreads over its neighbours
    assert int((grad.abs() > 1e-12).sum()) > int((torch.autograd.grad(
        F.grid_sample(enc.grid, points.view(1, -1, 1, 1, 3), align_corners=True).sum(), enc.grid)[0].abs() > 1e-12).sum())


@pytest.mark.skipif(kernels.load("trilinear") is None, reason="no C compiler here")
def test_compiled_head_on_the_blurred_grid_equals_autograd():
    enc, head = blurred_field()
    gen = torch.Generator().manual_seed(1)
    points = (torch.rand(200, 3, generator=gen, dtype=torch.float64) * 2 - 1)
    out, grad = grid_head_and_gradient(enc, head, points)
    p = points.clone().requires_grad_(True)
    ref_out = head(enc(p))
    (ref_grad,) = torch.autograd.grad(ref_out[:, 0].sum(), p, create_graph=True)
    torch.testing.assert_close(out, ref_out, atol=1e-10, rtol=0)
    torch.testing.assert_close(grad, ref_grad, atol=1e-10, rtol=0)
    a, b = torch.randn(200, 4, generator=gen, dtype=torch.float64), torch.randn(200, 3, generator=gen, dtype=torch.float64)
    params = [enc.grid, *head.parameters()]
    got = torch.autograd.grad((out * a).sum() + (grad * b).sum(), params)
    want = torch.autograd.grad((ref_out * a).sum() + (ref_grad * b).sum(), params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=0)
