"""Fields: hash-grid encoding against a per-point brute-force reference, normals, blob init."""

import math

import numpy as np
import pytest
import torch

from dreamfusion3d.fields import DenseGridEncoding, FieldConfig, HashGridEncoding, build_field


def reference_hash_encoding(table: np.ndarray, point, levels, log2_t, base, finest, feats) -> np.ndarray:
    """instant-NGP encoding of one point, written with Python integers, one corner at a time."""
    t = 2**log2_t
    b = math.exp((math.log(finest) - math.log(base)) / (levels - 1))
    out, offset = [], 0
    for level in range(levels):
        n = int(math.floor(base * b**level + 1e-6))
        dense = (n + 1) ** 3 <= t
        size = (n + 1) ** 3 if dense else t
        u = [min(max((c + 1.0) / 2.0, 0.0), 1.0) * n for c in point]
        lo = [min(int(math.floor(c)), n - 1) for c in u]
        acc = np.zeros(feats)
        for dx in (0, 1):
            for dy in (0, 1):
                for dz in (0, 1):
                    x, y, z = lo[0] + dx, lo[1] + dy, lo[2] + dz
                    if dense:
                        row = x + (n + 1) * y + (n + 1) ** 2 * z
                    else:
                        row = ((x * 1) ^ (y * 2654435761) ^ (z * 805459861)) % t
                    weight = 1.0
                    for axis, d in enumerate((dx, dy, dz)):
                        f = u[axis] - lo[axis]
                        weight *= f if d else 1.0 - f
                    acc += weight * table[offset + row]
        out.append(acc)
        offset += size
    return np.concatenate(out)


def test_hash_encoding_matches_brute_force():
    levels, log2_t, base, finest, feats = 6, 10, 4, 200, 3
    enc = HashGridEncoding(levels, feats, log2_t, base, finest, init_scale=1.0).double()
    assert 0 < enc.num_dense_levels < levels  # both index kinds are exercised
    points = torch.cat([torch.rand(20, 3, dtype=torch.float64) * 2 - 1, torch.tensor([[1.0, -1.0, 0.999999]]).double()])
    got = enc(points).detach().numpy()
    table = enc.table.detach().numpy()
    for p, g in zip(points.tolist(), got):
        ref = reference_hash_encoding(table, p, levels, log2_t, base, finest, feats)
        np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-12)


def test_dense_encoding_is_trilinear_in_the_grid():
    enc = DenseGridEncoding(resolution=5, features=2).double()
    with torch.no_grad():
        enc.grid.normal_()
    # grid nodes sit at -1 + 2 i / (R - 1); a node returns its own value, a midpoint the average.
    node = torch.tensor([[-0.5, 0.0, 0.5]], dtype=torch.float64)  # (x, y, z) = nodes (1, 2, 3)
    np.testing.assert_allclose(enc(node)[0].detach().numpy(), enc.grid[0, :, 3, 2, 1].detach().numpy(), rtol=1e-12)
    mid = torch.tensor([[-0.25, 0.0, 0.5]], dtype=torch.float64)  # halfway between x nodes 1 and 2
    expected = 0.5 * (enc.grid[0, :, 3, 2, 1] + enc.grid[0, :, 3, 2, 2])
    np.testing.assert_allclose(enc(mid)[0].detach().numpy(), expected.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("mode", ["analytic", "finite_difference"])
def test_normals_of_the_blob_point_outward(mode):
    # A field that is only the Gaussian blob (head zeroed): normals must be x / |x|.
    field = build_field(FieldConfig(kind="hashgrid", normals=mode, finite_difference_eps=1e-5)).double()
    with torch.no_grad():
        for p in field.head.parameters():
            p.zero_()
    points = torch.randn(64, 3, dtype=torch.float64) * 0.3
    points = points[points.norm(dim=-1) > 0.05]
    n = field.normals(points)
    np.testing.assert_allclose(n.detach().numpy(), (points / points.norm(dim=-1, keepdim=True)).numpy(), atol=1e-4)


def test_blob_forms():
    x = torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    g = build_field(FieldConfig(blob="gaussian", blob_density=4.0, blob_radius=0.5)).blob(x)
    torch.testing.assert_close(g, torch.tensor([4.0, 4.0 * math.exp(-0.5)]))
    lin = build_field(FieldConfig(blob="linear", blob_density=4.0, blob_radius=0.5)).blob(x)
    torch.testing.assert_close(lin, torch.tensor([4.0, 0.0]))
    assert torch.all(build_field(FieldConfig(blob="none")).blob(x) == 0)


def test_density_is_nonnegative_and_albedo_in_unit_range():
    for kind, act in (("hashgrid", "softplus"), ("dense", "trunc_exp")):
        field = build_field(FieldConfig(kind=kind, density_activation=act))
        sigma, albedo = field(torch.rand(100, 3) * 2 - 1)
        assert sigma.shape == (100,) and albedo.shape == (100, 3)
        assert torch.all(sigma >= 0) and torch.all((albedo >= 0) & (albedo <= 1))


def test_dense_encoding_coarse_to_fine():
    enc = DenseGridEncoding(resolution=5, features=2, coarse_resolution=3, fine_ramp=(10, 20)).double()
    with torch.no_grad():
        enc.grid.normal_()
        enc.coarse.normal_()
    # (0, 0, 0) is node 2 of the fine grid and node 1 of the coarse one; (-1, 0, 0.5) a midpoint of
    # the coarse grid along z (coarse nodes at -1, 0, 1) and fine node (0, 2, 3).
    centre = torch.zeros(1, 3, dtype=torch.float64)
    edge = torch.tensor([[-1.0, 0.0, 0.5]], dtype=torch.float64)
    coarse_centre = enc.coarse[0, :, 1, 1, 1]
    coarse_edge = 0.5 * (enc.coarse[0, :, 1, 1, 0] + enc.coarse[0, :, 2, 1, 0])
    for step, w in [(0, 0.0), (10, 0.0), (15, 0.5), (20, 1.0), (500, 1.0)]:
        enc.set_step(step)
        assert float(enc.fine_weight) == pytest.approx(w)
        got = enc(torch.cat([centre, edge])).detach()
        np.testing.assert_allclose(got[0].numpy(), (coarse_centre + w * enc.grid[0, :, 2, 2, 2]).detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(got[1].numpy(), (coarse_edge + w * enc.grid[0, :, 3, 2, 0]).detach().numpy(), rtol=1e-12)
    # before the ramp the fine grid gets no gradient: the coarse grid alone moves the surface
    enc.set_step(0)
    enc(torch.rand(50, 3, dtype=torch.float64) * 2 - 1).square().sum().backward()
    assert enc.grid.grad.abs().max() == 0 and enc.coarse.grad.abs().max() > 0
    # the weight is part of the state (a resumed run continues with the weight it stopped at)
    enc.set_step(17)
    other = DenseGridEncoding(resolution=5, features=2, coarse_resolution=3, fine_ramp=(10, 20)).double()
    other.load_state_dict(enc.state_dict())
    assert float(other.fine_weight) == pytest.approx(0.7)
    # without a coarse grid nothing changes: no extra parameter, no extra state
    assert set(DenseGridEncoding(resolution=5, features=2).state_dict()) == {"grid"}
