"""Captions: view words follow the camera bins, paraphrases never reuse a training word, and a
caption parses back into the scene it describes."""

import numpy as np
import pytest

from dreamfusion3d.cameras import orbit_cameras
from dreamfusion3d.world import ALL_SHAPES, COLORS, caption, primitive_scene, random_scene
from dreamfusion3d.world.captions import STOP_WORDS, all_captions, vocabulary
from dreamfusion3d.world.render_cli import parse_spec


def _all_scenes():
    return [primitive_scene(shape, color, seed=i, scale=s)
            for i, shape in enumerate(ALL_SHAPES) for color in COLORS for s in (0.7, 0.85, 1.0)]


def test_canonical_captions():
    assert caption(primitive_scene("cube", "red", scale=0.85)) == "a red cube"
    assert caption(primitive_scene("sphere", "blue", scale=0.7), "front") == "a small blue sphere, front view"
    assert caption(primitive_scene("torus", "orange", scale=1.0), "back") == "a large orange torus, back view"
    stack = primitive_scene("sphere_on_cube", "blue", second_color="yellow")
    assert caption(stack) == "a small blue sphere on a yellow cube"
    assert caption(primitive_scene("cube_with_front_face", "white", second_color="red")) == "a white cube with a red front face"
    assert caption(primitive_scene("sphere_with_nose", "green", second_color="purple"), "side") == \
        "a green sphere with a purple cone nose, side view"


def test_several_phrasings_and_seeded_choice():
    scene = primitive_scene("cylinder", "green", scale=0.7)
    phrasings = all_captions(scene)
    assert len(phrasings) >= 4 and all("green cylinder" in p for p in phrasings)
    assert caption(scene, rng=3) == caption(scene, rng=3)
    with pytest.raises(ValueError):
        caption(scene, "diagonal")


@pytest.mark.parametrize("az,el,label", [(0, 10, "front"), (40, 0, "front"), (-44, 30, "front"), (90, 20, "side"),
                                         (-100, 0, "side"), (180, 15, "back"), (-150, 40, "back"), (30, 75, "overhead")])
def test_view_words_match_the_camera(az, el, label):
    cams = orbit_cameras([az], [el], 3.0, 40.0, 8)
    (got,) = cams.view_labels()
    assert got == label
    text = caption(random_scene(az + 1000), got, rng=abs(az))
    assert text.endswith(f", {label} view")
    for other in {"front", "side", "back", "overhead"} - {label}:
        assert f"{other} view" not in text


def test_paraphrase_vocabulary_is_disjoint_from_training_words():
    train, para = set(), set()
    for scene in _all_scenes():
        for view in (None, "front", "side", "back", "overhead"):
            for text in all_captions(scene, view, draws=48):
                train |= vocabulary(text)
            for text in all_captions(scene, view, paraphrase=True, draws=48):
                para |= vocabulary(text)
    assert {"red", "cube", "sphere", "torus", "small", "front", "view"} <= train
    assert {"crimson", "ball", "block", "donut", "tiny", "behind"} <= para
    assert train & para <= STOP_WORDS, sorted(train & para - STOP_WORDS)


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("paraphrase", [False, True])
def test_captions_parse_back_to_the_scene(shape, paraphrase):
    gen = np.random.default_rng(0)
    for color in COLORS:
        scene = primitive_scene(shape, color, seed=3)
        for _ in range(4):
            text = caption(scene, "side", gen, paraphrase=paraphrase)
            back = parse_spec(text)
            assert (back.shape, back.colors) == (scene.shape, scene.colors), text
