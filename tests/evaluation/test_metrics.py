"""The metrics against hand-computed cases and brute force."""

import math

import numpy as np
import pytest
import torch

from dreamfusion3d.evaluation.geometry import EmptySolidError, Solid, compare_solids, normalise_solid, scene_solid
from dreamfusion3d.evaluation.metrics import (
    box_iou, chamfer_distance, normalisation, r_precision, retrieval_hits, volumetric_iou,
)
from dreamfusion3d.world import primitive_scene


def test_r_precision_toy_retrieval():
    # 4 queries over 3 candidates; the target's rank is 0, 1, 2, 0.
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.5, 0.7, 0.1], [0.3, 0.2, 0.1], [0.0, 0.0, 0.8]])
    targets = torch.tensor([0, 0, 2, 2])
    assert retrieval_hits(scores, targets, 1).tolist() == [True, False, False, True]
    assert r_precision(scores, targets, r=1) == pytest.approx(2 / 4)
    assert r_precision(scores, targets, r=2) == pytest.approx(3 / 4)
    assert r_precision(scores, targets, r=3) == pytest.approx(1.0)


def test_r_precision_ties_and_bad_shapes():
    assert r_precision(torch.ones(2, 3), torch.tensor([1, 2])) == 1.0  # nothing scores strictly higher
    with pytest.raises(ValueError):
        r_precision(torch.ones(2, 3), torch.tensor([0]))


def test_chamfer_unit_square_shifted():
    square = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], float)
    assert chamfer_distance(square, square + [0.1, 0, 0]) == pytest.approx(0.1)
    assert chamfer_distance(square, square + [0.1, 0, 0], squared=True) == pytest.approx(0.01)
    assert chamfer_distance(square, square) == 0.0


def test_chamfer_is_symmetric_mean_of_directions():
    a = np.zeros((1, 3))
    b = np.array([[0, 0, 0], [1, 0, 0]], float)
    # a->b: 0; b->a: (0 + 1) / 2; mean of both directions: 0.25.
    assert chamfer_distance(a, b) == pytest.approx(0.25)
    assert chamfer_distance(b, a) == pytest.approx(0.25)


def test_chamfer_matches_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(70, 3))
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    assert chamfer_distance(a, b) == pytest.approx(0.5 * (d.min(1).mean() + d.min(0).mean()))


def test_box_iou_hand_computed():
    assert box_iou([0, 0, 0], [2, 2, 2], [1, 1, 1], [3, 3, 3]) == pytest.approx(1 / 15)
    assert box_iou([0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3]) == 0.0
    assert box_iou([0, 0], [2, 1], [0, 0], [1, 1]) == pytest.approx(0.5)


def test_volumetric_iou_of_voxelised_boxes_is_exact():
    c = (np.arange(12) + 0.5) * 0.25  # cell centres over [0, 3]
    x, y, z = np.meshgrid(c, c, c, indexing="ij")

    def box(lo, hi):
        return (x > lo) & (x < hi) & (y > lo) & (y < hi) & (z > lo) & (z < hi)

    assert volumetric_iou(box(0, 2), box(1, 3)) == pytest.approx(1 / 15)
    assert volumetric_iou(box(0, 2), box(0, 2)) == 1.0
    with pytest.raises(ValueError):
        volumetric_iou(np.zeros((2, 2)), np.zeros((3, 3)))


def test_normalisation_of_a_ball():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1, 1, (200000, 3))
    ball = pts[np.linalg.norm(pts, axis=1) < 0.5] + [0.2, 0.0, -0.1]
    centre, radius = normalisation(ball, 4 / 3 * math.pi * 0.5**3)
    assert np.allclose(centre, [0.2, 0.0, -0.1], atol=0.01)
    assert radius == pytest.approx(0.5)


def test_normalise_solid_measures_centre_and_size():
    n = normalise_solid(Solid(lambda p: 0.4 - (p - torch.tensor([0.1, 0.2, 0.0])).norm(dim=-1)), 48)
    assert np.allclose(n.centre, [0.1, 0.2, 0.0], atol=0.02)
    assert n.radius == pytest.approx(0.4, rel=0.03)


def test_a_solid_too_small_to_resample_is_empty_not_a_crash():
    # inside at one vertex of the scene grid only: found there, missed by the normalised grid (48 is even,
    # so no normalised vertex falls on the centre) -> EmptySolidError, which evaluate counts as IoU 0
    vertex = torch.tensor([float(np.linspace(-1.0, 1.0, 48)[10])] * 3)
    dot = Solid(lambda p: ((p - vertex).norm(dim=-1) < 1e-6).float() * 2.0 - 1.0)
    with pytest.raises(EmptySolidError, match="too small"):
        normalise_solid(dot, 48)


def test_geometry_is_invariant_to_position_and_size_and_tells_shapes_apart():
    cone = scene_solid(primitive_scene("cone", "red", seed=1))
    shift, s = torch.tensor([0.12, -0.08, 0.05]), 0.7
    moved = Solid(lambda p: cone.inside((p - shift) / s) * s)  # the same cone, smaller and elsewhere
    same = compare_solids(moved, cone, 64)
    assert same["iou"] > 0.97 and same["chamfer"] < 0.03  # ~0.02: two independent surface samples
    assert same["scale_ratio"] == pytest.approx(0.7, rel=0.05)
    torus = compare_solids(scene_solid(primitive_scene("torus", "red", seed=1)), cone, 64)
    assert torus["iou"] < 0.5 and torus["chamfer"] > 5 * same["chamfer"]


def test_geometry_finds_the_yaw():
    cube = scene_solid(primitive_scene("cube", "red", seed=0, yaw=0.0, half=(1.0, 0.5, 0.7)))
    turned = scene_solid(primitive_scene("cube", "red", seed=0, yaw=90.0, half=(1.0, 0.5, 0.7)))
    r = compare_solids(turned, cube, 48)
    assert r["iou_unaligned"] < 0.8 and r["iou"] > 0.95 and r["yaw_deg"] in (90.0, 270.0)


def test_a_torus_is_compared_at_the_worlds_tilts_and_other_shapes_at_their_seed_pose():
    """The world tips a torus by a random 0–20° that no caption names; ``evaluate`` aligns it like
    the yaw: a flat torus with the seed's proportions matches (IoU ≈ 1) although the seed's own
    pose is tipped (seed 0: 12°), which alone scores lower."""
    from dreamfusion3d.evaluation.evaluate import best_reference
    from dreamfusion3d.evaluation.prompts import Target

    target = Target("torus", "red")
    scenes = target.reference_scenes(0)
    tilts = [float(np.degrees(np.arccos(s.parts[0].rotation[2][2]))) for s in scenes]
    assert tilts[0] == pytest.approx(12.13, abs=0.01) and tilts[1:] == pytest.approx([0, 5, 10, 15, 20])
    assert all(s.parts[0].params == scenes[0].parts[0].params for s in scenes)  # proportions unchanged
    flat = scene_solid(primitive_scene("torus", "red", seed=0, tilt=0.0))
    figures, _ = best_reference(flat, target, 32, 0)
    assert figures["reference_tilt_deg"] == 0.0 and figures["iou"] > 0.97
    assert figures["iou_seed_pose"] < figures["iou"] - 0.1
    assert len(Target("cube", "red").reference_scenes(0)) == 1
    cube_figures, _ = best_reference(scene_solid(primitive_scene("cube", "red", seed=0)), Target("cube", "red"), 32, 0)
    assert "reference_tilt_deg" not in cube_figures and cube_figures["iou"] > 0.97


def test_world_draws_score_the_worlds_own_objects_against_the_reference():
    """``evaluate --world-draws``: every world sphere is the same solid after normalisation, so its
    draws sit at the metric's floor; upright cylinders of other aspects against the reference score
    the IoU of two coaxial cylinders of equal volume, worked out by hand."""
    from dataclasses import dataclass

    from dreamfusion3d.evaluation.evaluate import world_draw_figures
    from dreamfusion3d.evaluation.prompts import Target

    spheres = world_draw_figures([Target("sphere", "red")], 2, 32, 0)
    assert spheres["draws"] == 2 and set(spheres["by_shape"]) == {"sphere"}
    assert spheres["by_shape"]["sphere"]["iou_min"] > 0.97 and spheres["by_shape"]["sphere"]["chamfer_max"] < 0.04

    aspects = {0: 1.0, 1: 0.6, 2: 1.5}  # seed -> half-height / radius

    @dataclass(frozen=True)
    class Cylinders:
        shape: str = "cylinder"
        color: str = "red"

        def scene(self, seed):
            return primitive_scene("cylinder", "red", seed=0, aspect=aspects[seed], yaw=0.0, scale=0.8)

        def reference_scenes(self, seed):
            return [self.scene(seed)]

    def by_hand(k0, k1):  # radius a and half-height h = k a at volume 4π/3 each
        a0, a1 = (2 / (3 * k0)) ** (1 / 3), (2 / (3 * k1)) ** (1 / 3)
        inter = np.pi * min(a0, a1) ** 2 * 2 * min(k0 * a0, k1 * a1)
        return inter / (2 * 4 * np.pi / 3 - inter)

    expected = [by_hand(1.0, aspects[k]) for k in (1, 2)]  # 0.55, 0.62
    figures = world_draw_figures([Cylinders(), Cylinders(), Target("sphere", "red")], 2, 48, 0)
    cyl = figures["by_shape"]["cylinder"]
    assert cyl["iou"] == pytest.approx(np.mean(expected), abs=0.03)
    assert cyl["iou_min"] == pytest.approx(min(expected), abs=0.03)
    assert cyl["chamfer"] > 2 * spheres["by_shape"]["sphere"]["chamfer"]
    sphere = figures["by_shape"]["sphere"]
    assert figures["iou"] == pytest.approx((2 * cyl["iou"] + sphere["iou"]) / 3)  # one per prompt
