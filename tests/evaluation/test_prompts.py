"""Evaluation prompt lists and prompt parsing."""

from dreamfusion3d.evaluation.prompts import (
    ACCEPTANCE_PROMPTS, Target, default_prompts, paraphrase_prompts, parse_prompt, quick_prompts,
)
from dreamfusion3d.world import COLORS, SHAPES
from dreamfusion3d.world.captions import TRAIN_COLORS, TRAIN_SHAPES, vocabulary


def test_default_list_covers_the_world():
    prompts = default_prompts()
    assert len(prompts) == len(SHAPES) * len(COLORS) + 5 + 2 == len(set(prompts))
    targets = [parse_prompt(p) for p in prompts]
    assert all(t is not None for t in targets)
    assert {(t.shape, t.color) for t in targets[:35]} == {(s, c) for s in SHAPES for c in COLORS}
    assert [t.shape for t in targets[-2:]] == ["sphere_with_nose", "cube_with_front_face"]


def test_paraphrases_avoid_training_words_and_parse_to_their_shape():
    train_words = {w for ws in TRAIN_COLORS.values() for w in ws} | {w for ws in TRAIN_SHAPES.values() for w in ws}
    for i, p in enumerate(paraphrase_prompts()):
        assert not vocabulary(p) & train_words, p
        assert parse_prompt(p).shape == SHAPES[i]


def test_quick_list():
    q = quick_prompts()
    assert q[:5] == list(ACCEPTANCE_PROMPTS) and parse_prompt(q[5]).shape == "sphere_with_nose"


def test_parse_prompt():
    assert parse_prompt("a 3d render of a red cone") == Target("cone", "red")
    assert parse_prompt("A big navy party hat") == Target("cone", "blue")
    assert parse_prompt("a crimson ball with an azure beak") == Target("sphere_with_nose", "red", "blue")
    assert parse_prompt("a small red sphere on top of a blue cube") == Target("sphere_on_cube", "red", "blue")
    assert parse_prompt("a blue cube with a yellow front face") == Target("cube_with_front_face", "blue", "yellow")
    assert parse_prompt("a wooden chair") is None
    assert parse_prompt("a red cube and a blue cube") is None  # two colours, one shape word: not one object
