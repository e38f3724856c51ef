"""The dense grid's closed-form value + Jacobian (``fields.trilinear``) against grid_sample and
autograd, and the SDF's normals/eikonal through it against the double-backward path — each test
once through the compiled C kernel (``kernels/trilinear.c``) and once through the eager PyTorch path."""

import pytest
import torch
import torch.nn.functional as F

from dreamfusion3d.fields import FieldConfig
from dreamfusion3d.fields.encoding import DenseGridEncoding
from dreamfusion3d.fields.dense_head import grid_head_and_gradient
from dreamfusion3d.fields.trilinear import value_and_jacobian
from dreamfusion3d.representations import sdf as sdf_module
from dreamfusion3d.representations.sdf import SDFConfig, SDFField


def grid_sample_reference(grid: torch.Tensor, points: torch.Tensor):
    """Value [N, F] by grid_sample and its Jacobian [N, F, 3] by autograd, kept differentiable."""
    feats = grid.shape[1]
    p = points.clone().requires_grad_(True)
    value = F.grid_sample(grid, p.view(1, -1, 1, 1, 3), mode="bilinear", padding_mode="border",
                          align_corners=True).view(feats, -1).t()
    jac = torch.stack([torch.autograd.grad(value[:, f].sum(), p, create_graph=True)[0] for f in range(feats)], 1)
    return value, jac


pytestmark = pytest.mark.usefixtures("compiled_or_eager")


@pytest.fixture
def grid_and_points():
    gen = torch.Generator().manual_seed(0)
    grid = torch.randn(1, 3, 5, 6, 7, generator=gen, dtype=torch.float64).requires_grad_(True)  # D≠H≠W
    # inside the box and outside it (border padding: clamped, zero derivative along that axis)
    points = torch.rand(300, 3, generator=gen, dtype=torch.float64) * 2.6 - 1.3
    return grid, points


def test_value_and_jacobian_match_grid_sample_and_autograd(grid_and_points):
    grid, points = grid_and_points
    v_ref, j_ref = grid_sample_reference(grid, points)
    value, jac = value_and_jacobian(grid, points)
    torch.testing.assert_close(value, v_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(jac, j_ref, atol=1e-12, rtol=0)
    outside = (points.abs() > 1).any(-1)
    assert outside.sum() > 50 and (jac[outside] == 0).any()  # the clamped case is exercised


def test_grid_gradient_matches_the_double_backward(grid_and_points):
    grid, points = grid_and_points
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(points.shape[0], 3, generator=gen, dtype=torch.float64)
    b = torch.randn(points.shape[0], 3, 3, generator=gen, dtype=torch.float64)
    v_ref, j_ref = grid_sample_reference(grid, points)
    (g_ref,) = torch.autograd.grad((v_ref * a).sum() + (j_ref * b).sum(), grid, retain_graph=True)
    value, jac = value_and_jacobian(grid, points)
    (g,) = torch.autograd.grad((value * a).sum() + (jac * b).sum(), grid)
    torch.testing.assert_close(g, g_ref, atol=1e-12, rtol=0)
    # one output alone (the other's gradient is None)
    (g_v,) = torch.autograd.grad((value_and_jacobian(grid, points)[0] * a).sum(), grid)
    (g_v_ref,) = torch.autograd.grad((v_ref * a).sum(), grid)
    torch.testing.assert_close(g_v, g_v_ref, atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(lambda g: value_and_jacobian(g, points[:20]), (grid,))


def test_points_that_need_a_gradient_are_refused(grid_and_points):
    grid, points = grid_and_points
    with pytest.raises(ValueError, match="no gradient to the points"):
        value_and_jacobian(grid, points.requires_grad_(True))


def test_coarse_to_fine_encoding_matches_autograd():
    torch.manual_seed(0)
    enc = DenseGridEncoding(resolution=8, features=4, init_scale=0.5, coarse_resolution=4, fine_ramp=(0, 10)).double()
    enc.set_step(3)  # fine weight 0.3
    points = torch.rand(200, 3, dtype=torch.float64) * 2 - 1
    value, jac = enc.value_and_jacobian(points)
    p = points.clone().requires_grad_(True)
    ref = enc(p)
    j_ref = torch.stack([torch.autograd.grad(ref[:, f].sum(), p, retain_graph=True)[0] for f in range(4)], 1)
    torch.testing.assert_close(value, ref.detach(), atol=1e-12, rtol=0)
    torch.testing.assert_close(jac.detach(), j_ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("coarse", [0, 4])
def test_sdf_gradient_and_parameter_gradients_equal_the_autograd_path(coarse, compiled_or_eager, monkeypatch):
    """The SDF's fast paths (compiled grid + head, ``fields.dense_head``; or the closed-form grid
    Jacobian with autograd through the MLP only) give the same d, ∇d and parameter gradients of a
    loss on both (eikonal-like) as autograd through grid_sample."""
    torch.manual_seed(0)
    field = SDFField(FieldConfig(kind="dense", dense_resolution=8, dense_features=4, dense_coarse_resolution=coarse,
                                 dense_fine_ramp=(0, 10)), SDFConfig(residual_scale=0.7)).double()
    with torch.no_grad():
        field.encoding.grid.normal_(0.0, 0.3)
        field.head[-1].weight.normal_(0.0, 0.5)
    field.encoding.set_step(5)
    points = torch.rand(400, 3, dtype=torch.float64) * 2.2 - 1.1
    weights = torch.randn(400, dtype=torch.float64)

    def run():
        d, grad, raw = field.sdf_and_gradient(points, create_graph=True)
        loss = (d * weights).sum() + (grad.norm(dim=-1) - 1).square().sum() + raw[:, 1:].sum()
        return d, grad, torch.autograd.grad(loss, list(field.parameters()))

    calls = []
    monkeypatch.setattr(sdf_module, "grid_head_and_gradient",
                        lambda *args: calls.append(out := grid_head_and_gradient(*args)) or out)
    d, grad, grads = run()
    # One compiled pass of grid + head where the kernel is built and there is no coarse grid.
    assert [c is not None for c in calls] == [compiled_or_eager == "kernel" and coarse == 0]
    monkeypatch.setattr(sdf_module, "grid_head_and_gradient", lambda *args: None)
    monkeypatch.delattr(DenseGridEncoding, "value_and_jacobian")  # the autograd path
    d_ref, grad_ref, grads_ref = run()
    torch.testing.assert_close(d, d_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(grad, grad_ref, atol=1e-12, rtol=0)
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref, atol=1e-10, rtol=0)
    assert all(g.abs().sum() > 0 for g in grads)
