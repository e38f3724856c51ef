"""The multi-face (Janus) detector on the world's ground truth and on synthetic two-fronted objects."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from dreamfusion3d.evaluation.geometry import Solid, normalise_solid, scene_solid
from dreamfusion3d.evaluation.multiface import count_runs, multiface
from dreamfusion3d.world import COLORS, primitive_scene


def test_count_runs():
    assert count_runs(np.zeros(8, bool)) == 0
    assert count_runs(np.ones(8, bool)) == 1
    assert count_runs(np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)) == 2
    assert count_runs(np.array([1, 0, 0, 1, 1, 0, 0, 1], bool)) == 2  # the first and last bins join around the ring
    assert count_runs(np.array([1, 0, 0, 0, 1, 1, 0, 0], bool)) == 1  # a single bin is noise
    assert count_runs(np.array([1, 0, 0, 0, 1, 1, 0, 0], bool), min_length=1) == 2


def _turned(part, deg: float, pivot):
    """The part rotated about the vertical axis through ``pivot``."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    pivot = np.asarray(pivot)
    return dataclasses.replace(part, center=tuple(pivot + rz @ (np.asarray(part.center) - pivot)),
                               rotation=tuple(map(tuple, (rz @ np.asarray(part.rotation)).tolist())))


def _fronts(scene) -> dict:
    solid = scene_solid(scene)
    centre = normalise_solid(solid, 48).centre
    return multiface(solid, centre, scene.shape, scene.parts[0].color, COLORS[scene.colors[1]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sphere_with_nose_has_one_front_at_azimuth_zero(seed):
    r = _fronts(primitive_scene("sphere_with_nose", "red", seed=seed, second_color="blue"))
    assert r["test"] == "geometric" and r["fronts"] == 1 and not r["multi_face"]
    assert all(min(a, 360 - a) <= 20 for a in r["front_azimuths_deg"])


def test_two_noses_are_multi_faced_and_a_turned_nose_is_not():
    scene = primitive_scene("sphere_with_nose", "red", seed=0, second_color="blue")
    body, nose = scene.parts
    janus = dataclasses.replace(scene, parts=[body, nose, _turned(nose, 180.0, body.center)])
    r = _fronts(janus)
    assert r["fronts"] == 2 and r["multi_face"]
    side = _fronts(dataclasses.replace(scene, parts=[body, _turned(nose, 90.0, body.center)]))
    assert side["fronts"] == 1 and all(abs(a - 90) <= 20 for a in side["front_azimuths_deg"])
    bare = _fronts(dataclasses.replace(scene, parts=[body]))
    assert bare["fronts"] == 0


def test_cube_front_face_by_colour():
    scene = primitive_scene("cube_with_front_face", "blue", seed=0, second_color="yellow")
    r = _fronts(scene)
    assert r["test"] == "colour" and r["fronts"] == 1
    assert all(min(a, 360 - a) <= 50 for a in r["front_azimuths_deg"])
    # The same cube painted on its front and its back: two faces.
    solid = scene_solid(scene)
    body, face = torch.tensor(scene.parts[0].color), torch.tensor(scene.parts[0].front_color)

    def two_faced(p):
        front = (p[:, 0].abs() >= p[:, 1].abs()) & (p[:, 0].abs() >= p[:, 2].abs())
        return torch.where(front[:, None], face.expand(len(p), 3), body.expand(len(p), 3))

    centre = normalise_solid(solid, 48).centre
    r2 = multiface(Solid(solid.inside, two_faced), centre, scene.shape, tuple(body.tolist()), tuple(face.tolist()))
    assert r2["fronts"] == 2 and r2["multi_face"]


def test_unknown_shape_has_no_front_test():
    with pytest.raises(ValueError):
        multiface(scene_solid(primitive_scene("cube", "red")), np.zeros(3), "cube")
