"""Building seeded scenes: one primitive of a given shape and colour (:func:`primitive_scene`)
and random scenes for datasets (:func:`random_scene`), fitted inside ``FIT_RADIUS``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..utils.errors import UserError
from .scene import (ALL_SHAPES, COLORS, COMPOSITIONS, FIT_RADIUS, FRONT_SHAPES, LARGE_SCALE, SHAPES, SMALL_SCALE, Part,
                    Scene, _rot_x, _rot_z, _Z_TO_X)


TORUS_TILT_RANGE_DEG = (0.0, 20.0)
"""A torus is tipped about X by a random angle in this range (before the yaw): a pose the caption
does not name, which the evaluation therefore aligns like the yaw."""

def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _jitter_color(name: str, rng: np.random.Generator, amount: float) -> tuple[float, float, float]:
    if name not in COLORS:
        raise UserError(f"unknown colour {name!r}; choose from {', '.join(COLORS)}")
    base = np.asarray(COLORS[name])
    return tuple(float(v) for v in np.clip(base + rng.uniform(-amount, amount, 3), 0.0, 1.0))


def _primitive_part(shape: str, rng: np.random.Generator, color, params: dict[str, Any]) -> Part:
    """A primitive of unit-ish size with random proportions (``params`` override them)."""
    aspect = params.get("aspect")
    if shape == "sphere":
        return Part("sphere", {"radius": 1.0}, color)
    if shape == "cube":
        half = params.get("half") or tuple(float(v) for v in rng.uniform(0.85, 1.15, 3))
        return Part("cube", {"half": tuple(half)}, color)
    if shape == "cylinder":
        aspect = aspect if aspect is not None else rng.uniform(0.7, 1.4)  # half_height / radius
        return Part("cylinder", {"radius": 1.0, "half_height": float(aspect)}, color)
    if shape == "cone":
        aspect = aspect if aspect is not None else rng.uniform(0.8, 1.3)
        return Part("cone", {"radius": 1.0, "half_height": float(aspect)}, color)
    if shape == "torus":
        thickness = params.get("thickness", rng.uniform(0.3, 0.45))  # minor / major
        return Part("torus", {"major": 1.0, "minor": float(thickness)}, color)
    raise UserError(f"unknown shape {shape!r}; choose from {', '.join(ALL_SHAPES)}")


def _place(part: Part, rotation: np.ndarray) -> Part:
    """Rotate a part about the world origin (its centre and its frame)."""
    center = tuple(float(v) for v in rotation @ np.asarray(part.center))
    frame = rotation @ np.asarray(part.rotation)
    return Part(part.kind, part.params, part.color, center, tuple(map(tuple, frame.tolist())), part.front_color)


def _fit(parts: list[Part], radius: float) -> list[Part]:
    """Centre the parts' bounding box at the origin and scale them to fit inside ``radius``."""
    lo = np.min([p.aabb()[0] for p in parts], axis=0)
    hi = np.max([p.aabb()[1] for p in parts], axis=0)
    centred = [p.transformed(1.0, -(lo + hi) / 2) for p in parts]
    extent = max(p.max_distance() for p in centred)
    return [p.transformed(radius / extent) for p in centred]


def primitive_scene(shape: str, color: str, seed: int = 0, **params: Any) -> Scene:
    """One seeded scene of a given shape and colour.

    Optional params: ``scale`` (fraction of the fit radius, default random in [0.7, 1]),
    ``yaw`` (degrees about Z, default random in ±25°, 0 for front objects), ``tilt`` (torus,
    degrees about X), ``aspect`` / ``half`` / ``thickness`` (proportions), ``color_jitter``
    (default 0.04), ``second_color`` (the other part's colour for compositions/front objects).
    """
    rng = np.random.default_rng(seed)
    jitter = float(params.get("color_jitter", 0.04))
    scale = float(params["scale"]) if "scale" in params else float(rng.uniform(0.7, 1.0))
    if not 0.05 <= scale <= 1.0:
        raise UserError(f"scale must be in [0.05, 1], got {scale}")
    main = _jitter_color(color, rng, jitter)
    second_name = params.get("second_color")
    if shape in COMPOSITIONS or shape in FRONT_SHAPES:
        if second_name is None:
            second_name = str(rng.choice([c for c in COLORS if c != color]))
        second = _jitter_color(second_name, rng, jitter)
    has_front = shape in FRONT_SHAPES
    yaw = float(params.get("yaw", 0.0 if has_front else rng.uniform(-25.0, 25.0)))
    colors = [color]

    if shape in SHAPES:
        part = _primitive_part(shape, rng, main, params)
        rot = _rot_z(yaw)
        if shape == "torus":
            rot = rot @ _rot_x(float(params.get("tilt", rng.uniform(*TORUS_TILT_RANGE_DEG))))
        parts = [_place(part, rot)]
    elif shape in COMPOSITIONS:
        top_kind, bottom_kind = shape.split("_on_")
        bottom = _primitive_part(bottom_kind, rng, second, {"aspect": rng.uniform(0.5, 0.8)} if bottom_kind == "cylinder" else {})
        if bottom_kind == "cube":
            bottom.params["half"] = (1.0, 1.0, float(rng.uniform(0.6, 0.9)))
        top = _primitive_part(top_kind, rng, main, {"aspect": rng.uniform(0.9, 1.2)})
        top_scale = float(rng.uniform(0.55, 0.75))
        top = top.transformed(top_scale)
        top_half = top.local_extent()[2]
        top = top.transformed(1.0, (0.0, 0.0, bottom.local_extent()[2] + top_half))
        rot = _rot_z(yaw)
        parts = [_place(top, rot), _place(bottom, rot)]
        colors = [color, second_name]
    elif shape == "sphere_with_nose":
        body = Part("sphere", {"radius": 1.0}, main)
        length = float(rng.uniform(0.35, 0.5))  # half length of the nose cone
        nose = Part("cone", {"radius": float(rng.uniform(0.3, 0.4)), "half_height": length}, second,
                    center=(0.9 + length, 0.0, 0.0), rotation=tuple(map(tuple, _Z_TO_X.tolist())))
        parts = [_place(body, _rot_z(yaw)), _place(nose, _rot_z(yaw))]
        colors = [color, second_name]
    elif shape == "cube_with_front_face":
        cube = _primitive_part("cube", rng, main, params)
        cube.front_color = second
        parts = [_place(cube, _rot_z(yaw))]
        colors = [color, second_name]
    else:
        raise UserError(f"unknown shape {shape!r}; choose from {', '.join(ALL_SHAPES)}")

    parts = _fit(parts, FIT_RADIUS * scale)
    size = "small" if scale < SMALL_SCALE else "large" if scale > LARGE_SCALE else None
    if shape not in SHAPES:
        size = None  # relative sizes inside a composition make one size word ambiguous
    return Scene(shape=shape, color=color, parts=parts, has_front=has_front, seed=seed, size=size,
                 colors=colors, scale=scale)


def random_scene(
    rng: np.random.Generator | int,
    shapes: Sequence[str] | None = None,
    colors: Sequence[str] | None = None,
    compositions: bool = False,
) -> Scene:
    """A random scene. ``shapes`` defaults to the primitives, plus the compositions and front
    objects when ``compositions=True`` (then about half of the scenes are primitives)."""
    gen = _rng(rng)
    colors = list(colors or COLORS)
    if shapes is None:
        if compositions and gen.random() < 0.5:
            shapes = COMPOSITIONS + FRONT_SHAPES
        else:
            shapes = SHAPES
    shape = str(gen.choice(list(shapes)))
    color = str(gen.choice(colors))
    seed = int(gen.integers(0, 2**31 - 1))
    return primitive_scene(shape, color, seed=seed)
