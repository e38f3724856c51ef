import math

import pytest
import torch

from dreamfusion3d.cameras import orbit_cameras
from dreamfusion3d.novel_view.pose import (POSE_FEATURES, angular_distance_deg, pose_features, ray_maps,
                                           relative_pose, spherical_of)


@pytest.mark.parametrize(
    "src, tgt, expected",
    [
        # same camera: no change, cos = 1
        ((0.0, 20.0, 3.0), (0.0, 20.0, 3.0), (0.0, 0.0, 1.0, 0.0)),
        # quarter turn left, 10 degrees higher, 0.5 further: d_el = pi/18, sin = 1, cos = 0
        ((0.0, 20.0, 3.0), (90.0, 30.0, 3.5), (math.pi / 18, 1.0, 0.0, 0.5)),
        # back view from the front, lower
        ((0.0, 15.0, 3.0), (180.0, -15.0, 3.0), (-math.pi / 6, 0.0, -1.0, 0.0)),
        # wrap-around: 350 -> 10 is +20 degrees (sin 20 = 0.34202, cos 20 = 0.93969)
        ((350.0, 0.0, 2.0), (10.0, 0.0, 3.0), (0.0, 0.3420201, 0.9396926, 1.0)),
        # -30 degrees of azimuth: sin = -1/2, cos = sqrt(3)/2
        ((45.0, 0.0, 3.0), (15.0, 0.0, 3.0), (0.0, -0.5, math.sqrt(3) / 2, 0.0)),
    ],
)
def test_relative_pose_hand_computed(src, tgt, expected):
    got = relative_pose(torch.tensor(src), torch.tensor(tgt))
    assert torch.allclose(got, torch.tensor(expected), atol=1e-6)


def test_relative_pose_from_cameras_matches_angles():
    cams = orbit_cameras([30.0, 120.0], [10.0, 40.0], [3.0, 2.5], 40.0, 16)
    sph = spherical_of(cams)
    assert torch.allclose(sph, torch.tensor([[30.0, 10.0, 3.0], [120.0, 40.0, 2.5]]), atol=1e-4)
    rel = relative_pose(sph[0], sph[1])
    assert torch.allclose(rel, torch.tensor([math.radians(30), 1.0, 0.0, -0.5]), atol=1e-5)


def test_pose_features_layout_and_dropped_code_is_not_a_pose():
    f = pose_features(torch.tensor([[0.0, 20.0, 3.0]]), torch.tensor([[60.0, 20.0, 3.0]]))
    assert f.shape == (1, POSE_FEATURES)
    d = math.radians(60)
    expected = [0.0, math.sin(d), math.cos(d), 0.0, math.sin(2 * d), math.cos(2 * d), math.sin(3 * d),
                math.cos(3 * d), math.radians(20)]
    assert torch.allclose(f[0], torch.tensor(expected), atol=1e-6)
    # every real pose has sin^2 + cos^2 = 1, so the all-zero "dropped" vector is unambiguous
    assert abs(float(f[0, 1] ** 2 + f[0, 2] ** 2) - 1.0) < 1e-6


def test_ray_maps_centre_ray_points_at_origin():
    sph = torch.tensor([[90.0, 0.0, 3.0]])  # camera on +Y looking at the origin along -Y
    rays = ray_maps(sph, 40.0, 8)  # [1, 6, 8, 8]
    centre_dir = rays[0, 3:, 3:5, 3:5].mean(dim=(1, 2))
    assert torch.allclose(centre_dir / centre_dir.norm(), torch.tensor([0.0, -1.0, 0.0]), atol=1e-4)
    assert torch.allclose(rays[0, :3, 0, 0] * 3.0, torch.tensor([0.0, 3.0, 0.0]), atol=1e-5)


def test_angular_distance():
    a = torch.tensor([0.0, 0.0, 3.0])
    assert float(angular_distance_deg(a, torch.tensor([90.0, 0.0, 3.0]))) == pytest.approx(90.0, abs=1e-3)
    assert float(angular_distance_deg(a, torch.tensor([0.0, 90.0, 1.0]))) == pytest.approx(90.0, abs=1e-3)
    assert float(angular_distance_deg(a, torch.tensor([180.0, 0.0, 3.0]))) == pytest.approx(180.0, abs=1e-2)
