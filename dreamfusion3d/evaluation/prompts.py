"""The evaluation prompt lists and what each prompt asks for in the world's terms.

Default list: every shape × colour of the world in the training phrasing ("a red cube"), five
paraphrased prompts (one per shape, words the prior never saw in training) and the two objects
with a front, captioned as the world captions them. ``--quick``: the five acceptance prompts
and the sphere with a nose (its geometric front makes the multi-face test meaningful).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..world import ALL_SHAPES, COLORS, COMPOSITIONS, SHAPES, caption, primitive_scene
from ..world.recipes import TORUS_TILT_RANGE_DEG
from ..world.captions import PARA_COLORS, PARA_FRONT_FACE, PARA_NOSE, PARA_SHAPES, TRAIN_COLORS, TRAIN_SHAPES

ACCEPTANCE_PROMPTS = ("a red cube", "a blue sphere", "a green cylinder", "a yellow cone", "a purple torus")
FRONT_OBJECTS = (("sphere_with_nose", "red", "blue"), ("cube_with_front_face", "blue", "yellow"))


@dataclass(frozen=True)
class Target:
    """What a prompt asks for: a world shape (``ALL_SHAPES``), its main colour and, for
    compositions and front objects, the second colour."""

    shape: str
    color: str
    second_color: str | None = None

    def scene(self, seed: int = 0):
        params = {"second_color": self.second_color} if self.second_color else {}
        return primitive_scene(self.shape, self.color, seed=seed, **params)

    def reference_scenes(self, seed: int = 0, tilt_steps: int = 5) -> list:
        """The seed's scene, and for a shape the world also tips at random (a torus: a tilt in
        ``TORUS_TILT_RANGE_DEG`` that no caption names) the same scene at ``tilt_steps`` tilts over
        that range, proportions unchanged: the poses the evaluation aligns over besides the yaw."""
        scenes = [self.scene(seed)]
        if self.shape == "torus":
            params = {"second_color": self.second_color} if self.second_color else {}
            scenes += [primitive_scene(self.shape, self.color, seed=seed, tilt=float(t), **params)
                       for t in np.linspace(*TORUS_TILT_RANGE_DEG, tilt_steps)]
        return scenes


def front_prompts() -> list[str]:
    return [caption(primitive_scene(s, c, second_color=c2)) for s, c, c2 in FRONT_OBJECTS]


def paraphrase_prompts() -> list[str]:
    colors = list(COLORS)
    out = []
    for i, shape in enumerate(SHAPES):
        scene = primitive_scene(shape, colors[(3 * i + 1) % len(colors)], seed=i)
        out.append(caption(scene, None, rng=np.random.default_rng(i), paraphrase=True))
    return out


def grid_prompts() -> list[str]:
    """Every primitive in every colour: "a red sphere" … (5 × 7 = 35)."""
    return [f"a {c} {s}" for s in SHAPES for c in COLORS]


def default_prompts() -> list[str]:
    return grid_prompts() + paraphrase_prompts() + front_prompts()


def quick_prompts() -> list[str]:
    return list(ACCEPTANCE_PROMPTS) + front_prompts()[:1]


def _lexicon(table: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """(phrase, name) pairs, longest phrases first so "party hat" wins over a shorter match."""
    pairs = [(w, name) for name, words in table.items() for w in words]
    return sorted(pairs, key=lambda p: -len(p[0]))


_COLOR_WORDS = _lexicon({k: TRAIN_COLORS[k] + PARA_COLORS[k] for k in COLORS})
_SHAPE_WORDS = _lexicon({k: TRAIN_SHAPES[k] + PARA_SHAPES[k] for k in SHAPES})
_NOSE_WORDS = ("nose", "beak", "snout")
_FACE_WORDS = ("front face", "facade", "forward-facing panel")
_ON_WORDS = (" on ", " atop ", " upon ")
assert all(any(w in tpl for w in _NOSE_WORDS) for tpl in PARA_NOSE)
assert all(any(w in tpl for w in _FACE_WORDS) for tpl in PARA_FRONT_FACE)


def _find(text: str, lexicon: list[tuple[str, str]]) -> list[str]:
    """Names of the phrases in ``text`` in order of appearance (whole words only)."""
    padded = f" {text} "
    hits: list[tuple[int, str]] = []
    taken = [False] * len(padded)
    for phrase, name in lexicon:
        start = 0
        while (i := padded.find(f" {phrase} ", start)) >= 0:
            span = range(i + 1, i + 1 + len(phrase))
            if not any(taken[j] for j in span):
                hits.append((i, name))
                for j in span:
                    taken[j] = True
            start = i + 1
    return [name for _, name in sorted(hits)]


def parse_prompt(prompt: str) -> Target | None:
    """The world object a prompt describes, or None when its words are not the world's."""
    text = " ".join(prompt.lower().replace(",", " ").split())
    colors, shapes = _find(text, _COLOR_WORDS), _find(text, _SHAPE_WORDS)
    if not colors or not shapes:
        return None
    padded = f" {text} "
    if any(w in padded for w in _ON_WORDS) and len(shapes) >= 2:
        shape = f"{shapes[0]}_on_{shapes[1]}"
        if shape not in COMPOSITIONS or len(colors) < 2:
            return None
        return Target(shape, colors[0], colors[1])
    if any(f" {w} " in padded for w in _NOSE_WORDS) and shapes[0] == "sphere":
        return Target("sphere_with_nose", colors[0], colors[1]) if len(colors) >= 2 else None
    if any(w in text for w in _FACE_WORDS) and shapes[0] == "cube":
        return Target("cube_with_front_face", colors[0], colors[1]) if len(colors) >= 2 else None
    if len(set(shapes)) != 1 or len(set(colors)) != 1:
        return None  # several objects or colours: not a single primitive of the world
    assert shapes[0] in ALL_SHAPES
    return Target(shapes[0], colors[0])
