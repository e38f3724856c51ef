"""Captions for procedural scenes, with view words that match the camera.

Two vocabularies that share no content word: the *training* phrasings (used to build datasets
and to train the bundled prior) and the *paraphrase* phrasings (crimson ball, navy block, …)
kept for evaluating whether the text encoder generalises. Only the articles and a few function
words (``STOP_WORDS``) are common to both.

View suffixes follow DreamFusion (", front view", ", side view", ", back view",
", overhead view") and use the bins of ``dreamfusion3d.cameras.view_labels``.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ..cameras import VIEW_LABELS
from .scene import Scene

STOP_WORDS = frozenset({"a", "an", "of", "with"})

TRAIN_COLORS = {c: (c,) for c in ("red", "green", "blue", "yellow", "orange", "purple", "white")}
TRAIN_SHAPES = {"sphere": ("sphere",), "cube": ("cube",), "cylinder": ("cylinder",), "cone": ("cone",),
                "torus": ("torus",)}
TRAIN_SIZES = {"small": ("small",), "large": ("large",)}
TRAIN_TEMPLATES = ("{x}", "{x}", "a 3d render of {x}", "a 3d model of {x}")
TRAIN_ON = ("{top} on {bottom}", "{top} on top of {bottom}", "{top} standing on {bottom}")
TRAIN_NOSE = ("{body} with {nose} cone nose", "{body} with {nose} nose")
TRAIN_FRONT_FACE = ("{body} with {face} front face",)
TRAIN_VIEWS = {v: f"{v} view" for v in VIEW_LABELS}

PARA_COLORS = {
    "red": ("crimson", "scarlet"),
    "green": ("emerald", "lime"),
    "blue": ("navy", "azure"),
    "yellow": ("golden", "lemon"),
    "orange": ("tangerine", "amber"),
    "purple": ("violet", "lavender"),
    "white": ("ivory", "pearl"),
}
PARA_SHAPES = {
    "sphere": ("ball", "orb", "globe"),
    "cube": ("box", "block", "dice"),
    "cylinder": ("tube", "pipe", "can"),
    "cone": ("funnel", "party hat", "spire"),
    "torus": ("ring", "donut", "doughnut"),
}
PARA_SIZES = {"small": ("tiny", "little"), "large": ("big", "huge")}
PARA_TEMPLATES = ("{x}", "a picture of {x}", "an image showing {x}")
PARA_ON = ("{top} atop {bottom}", "{top} perched upon {bottom}", "{top} balanced upon {bottom}")
PARA_NOSE = ("{body} with {nose} beak", "{body} with {nose} snout")
PARA_FRONT_FACE = ("{body} with {face} facade", "{body} with {face} forward-facing panel")
PARA_VIEWS = {"front": "seen straight ahead", "side": "seen in profile", "back": "seen from behind",
              "overhead": "seen from above"}


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _words(paraphrase: bool):
    if paraphrase:
        return PARA_COLORS, PARA_SHAPES, PARA_SIZES, PARA_TEMPLATES, PARA_ON, PARA_NOSE, PARA_FRONT_FACE, PARA_VIEWS
    return TRAIN_COLORS, TRAIN_SHAPES, TRAIN_SIZES, TRAIN_TEMPLATES, TRAIN_ON, TRAIN_NOSE, TRAIN_FRONT_FACE, TRAIN_VIEWS


def caption(
    scene: Scene,
    view: str | None = None,
    rng: np.random.Generator | int | None = None,
    paraphrase: bool = False,
) -> str:
    """A caption such as "a small blue sphere", "a red cube on top of a yellow cube, side view".

    ``rng=None`` gives the canonical (first) phrasing; a generator or seed picks among the
    phrasings. ``view`` in {"front", "side", "back", "overhead", None} appends the view words;
    ``paraphrase=True`` uses only the held-out vocabulary.
    """
    if view is not None and view not in VIEW_LABELS:
        raise ValueError(f"view must be one of {VIEW_LABELS} or None, got {view!r}")
    colors, shapes, sizes, templates, on, nose, front_face, views = _words(paraphrase)
    gen = None if rng is None else (rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng))

    def pick(options: Sequence[str]) -> str:
        return options[0] if gen is None else options[int(gen.integers(len(options)))]

    names = scene.colors or [scene.color]

    def noun(shape: str, color: str, size: str | None = None) -> str:
        words = [pick(colors[color]), pick(shapes[shape])]
        if size is not None and (gen is None or gen.random() < 0.7):
            words.insert(0, pick(sizes[size]))
        return " ".join(words)

    if scene.shape in shapes:
        text = _article(noun(scene.shape, scene.color, scene.size))
    elif "_on_" in scene.shape:
        top, bottom = scene.shape.split("_on_")
        text = pick(on).format(top=_article(noun(top, names[0], "small")), bottom=_article(noun(bottom, names[1])))
    elif scene.shape == "sphere_with_nose":
        text = pick(nose).format(body=_article(noun("sphere", names[0])), nose=_article(pick(colors[names[1]])))
    elif scene.shape == "cube_with_front_face":
        text = pick(front_face).format(body=_article(noun("cube", names[0])), face=_article(pick(colors[names[1]])))
    else:
        raise ValueError(f"no caption for shape {scene.shape!r}")
    text = pick(templates).format(x=text)
    if view is not None:
        text = f"{text}, {views[view]}"
    return text


def all_captions(scene: Scene, view: str | None = None, paraphrase: bool = False, draws: int = 64) -> list[str]:
    """The distinct phrasings of a scene (by sampling; used for metadata and tests)."""
    gen = np.random.default_rng(0)
    return sorted({caption(scene, view, gen, paraphrase) for _ in range(draws)})


def vocabulary(text: str) -> set[str]:
    """Lower-case word tokens of a caption (punctuation and hyphens split words)."""
    return set(re.findall(r"[a-z0-9]+", text.lower()))
