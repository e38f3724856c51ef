"""The multi-face ("Janus") test for objects that should have exactly one front.

The world's front objects face +X: a sphere with a cone nose (a *geometric* front) and a cube
with one differently coloured face (a *colour* front). A Janus failure grows a second front.

Both tests scan a ring of ``azimuths`` horizontal rays from the solid's centroid, at a few
heights around it, and find each ray's outermost inside point:

* geometric (``sphere_with_nose``): the ray's reach ``r(a)`` (max over the heights) relative to
  the median reach; bins that stick out by more than ``protrusion`` (default 25 %) are a front;
* colour (``cube_with_front_face``): the albedo just inside the outermost point; bins whose
  colour is nearer the face colour than the body colour are a front.

Fronts are the circular runs of such bins (:func:`count_runs`); a run of a single bin is noise
and is ignored. An object is multi-faced when it has two fronts or more. The tests are
validated on the world's ground truth (one front) and on two-fronted copies in
``tests/evaluation/test_multiface.py``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .geometry import Solid

GEOMETRIC_FRONTS = ("sphere_with_nose",)
COLOUR_FRONTS = ("cube_with_front_face",)


def count_runs(mask: np.ndarray, min_length: int = 2) -> int:
    """Number of circular runs of True in ``mask [A]`` that are at least ``min_length`` long."""
    m = np.asarray(mask, dtype=bool)
    if m.all():
        return 1 if len(m) >= min_length else 0
    if not m.any():
        return 0
    start = int(np.argmin(m))  # a False bin: rotate so that no run wraps around the end
    m = np.roll(m, -start)
    runs, length = 0, 0
    for v in list(m) + [False]:
        if v:
            length += 1
        else:
            runs += length >= min_length
            length = 0
    return int(runs)


@torch.no_grad()
def ring_scan(solid: Solid, centre: np.ndarray, azimuths: int = 72, heights: tuple[float, ...] = (-0.1, 0.0, 0.1),
              max_radius: float = 1.8, steps: int = 128) -> tuple[np.ndarray, np.ndarray | None]:
    """Outermost inside radius ``[A]`` of horizontal rays from ``centre`` (max over ``heights``,
    offsets along +Z in world units) and the albedo ``[A, 3]`` just inside it (at the height that
    reaches furthest; None when the solid has no colour)."""
    az = torch.arange(azimuths, dtype=torch.float32) * (2 * math.pi / azimuths)
    dirs = torch.stack([az.cos(), az.sin(), torch.zeros_like(az)], -1)  # [A, 3]
    t = torch.linspace(0.0, max_radius, steps)  # [S]
    c = torch.as_tensor(centre, dtype=torch.float32)
    reach = torch.zeros(len(heights), azimuths)
    for i, h in enumerate(heights):
        origin = c + torch.tensor([0.0, 0.0, h])
        pts = origin + t[None, :, None] * dirs[:, None, :]  # [A, S, 3]
        flat = pts.reshape(-1, 3)
        inside = torch.zeros(len(flat), dtype=torch.bool)
        in_box = (flat.abs() <= 1.0).all(-1)
        if in_box.any():
            inside[in_box] = solid.inside(flat[in_box]) > 0
        inside = inside.view(azimuths, steps)
        last = torch.where(inside, torch.arange(steps)[None, :], torch.full_like(inside, -1, dtype=torch.long)).amax(1)
        reach[i] = torch.where(last >= 0, t[last.clamp_min(0)], torch.zeros(()))
    best, which = reach.max(0)  # [A]
    colors = None
    if solid.color is not None:
        h = torch.tensor([heights[int(k)] for k in which])
        back = (best - 1.5 * max_radius / (steps - 1)).clamp_min(0.0)
        probe = c + torch.stack([torch.zeros_like(h), torch.zeros_like(h), h], -1) + back[:, None] * dirs
        colors = solid.color(probe).float().clamp(0, 1).numpy()
    return best.numpy(), colors


def geometric_fronts(reach: np.ndarray, protrusion: float = 0.25) -> np.ndarray:  # [A] -> [A] bool
    base = float(np.median(reach))
    return reach > (1.0 + protrusion) * base if base > 0 else np.zeros_like(reach, dtype=bool)


def colour_fronts(colors: np.ndarray, body: tuple[float, float, float], face: tuple[float, float, float]) -> np.ndarray:
    colors = np.asarray(colors, dtype=np.float64)
    d_body = np.linalg.norm(colors - np.asarray(body), axis=-1)
    d_face = np.linalg.norm(colors - np.asarray(face), axis=-1)
    return d_face < d_body


def multiface(solid: Solid, centre: np.ndarray, shape: str, body_color=None, face_color=None,
              azimuths: int = 72, protrusion: float = 0.25) -> dict:
    """Fronts of a front object: {"test", "fronts", "multi_face", "front_azimuths_deg"}."""
    reach, colors = ring_scan(solid, centre, azimuths)
    if shape in GEOMETRIC_FRONTS:
        mask, test = geometric_fronts(reach, protrusion), "geometric"
    elif shape in COLOUR_FRONTS:
        if colors is None or body_color is None or face_color is None:
            raise ValueError("the colour front test needs the solid's albedo and both colours")
        mask, test = colour_fronts(colors, body_color, face_color) & (reach > 0), "colour"
    else:
        raise ValueError(f"{shape!r} has no front test; choose from {GEOMETRIC_FRONTS + COLOUR_FRONTS}")
    fronts = count_runs(mask)
    az = np.arange(azimuths) * (360.0 / azimuths)
    return {"test": test, "fronts": fronts, "multi_face": fronts >= 2,
            "front_azimuths_deg": [float(a) for a in az[mask]]}
