"""Seeded procedural scenes: coloured primitives, two-part compositions and objects with a front.

Every scene is a union of a few analytic parts, each with an exact signed distance function
(SDF) in its own local frame. Local frames are rigid (rotation + translation; sizes live in the
parameters), so the union is a true distance lower bound and sphere tracing is safe.

World conventions follow ``dreamfusion3d.cameras``: +Z is up, an object's front faces +X.
Objects are centred at the origin and fit inside a ball of radius ``FIT_RADIUS`` (0.8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor


SHAPES = ("sphere", "cube", "cylinder", "cone", "torus")
"""Single primitives."""

COMPOSITIONS = ("sphere_on_cube", "cone_on_cube", "sphere_on_cylinder", "cone_on_cylinder")
"""Two-part stacks: ``<top>_on_<bottom>`` (measure up/down)."""

FRONT_SHAPES = ("sphere_with_nose", "cube_with_front_face")
"""Objects with a distinct front at +X (measure front/back and the multi-face Janus failure)."""

ALL_SHAPES = SHAPES + COMPOSITIONS + FRONT_SHAPES

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.10),
    "green": (0.16, 0.68, 0.22),
    "blue": (0.13, 0.30, 0.85),
    "yellow": (0.95, 0.84, 0.15),
    "orange": (0.96, 0.50, 0.08),
    "purple": (0.55, 0.20, 0.74),
    "white": (0.90, 0.90, 0.88),
}

FIT_RADIUS = 0.8
"""Every scene fits inside this radius around the origin (the world box is [-1, 1]^3)."""

SMALL_SCALE, LARGE_SCALE = 0.78, 0.92
"""Scale factors below / above which the caption may say "small" / "large"."""


def _rot_z(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


# Maps the local +Z axis (the axis of cones/cylinders) onto world +X: a cone pointing forward.
_Z_TO_X = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])


@dataclass
class Part:
    """One primitive. ``rotation`` maps local to world (``p_world = R p_local + center``).

    Parameters (world units): sphere ``radius``; cube ``half`` (3 half extents); cylinder
    ``radius``, ``half_height``; cone ``radius`` (base), ``half_height`` (apex at local +Z);
    torus ``major``, ``minor`` (ring in the local XY plane).
    """

    kind: str
    params: dict[str, Any]
    color: tuple[float, float, float]
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: tuple[tuple[float, ...], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    front_color: tuple[float, float, float] | None = None
    """Cubes only: a different colour for the local +X face."""

    def local_extent(self) -> np.ndarray:  # [3] half size of the local bounding box
        p = self.params
        if self.kind == "sphere":
            return np.full(3, p["radius"])
        if self.kind == "cube":
            return np.asarray(p["half"], dtype=float)
        if self.kind in ("cylinder", "cone"):
            return np.array([p["radius"], p["radius"], p["half_height"]])
        if self.kind == "torus":
            return np.array([p["major"] + p["minor"]] * 2 + [p["minor"]])
        raise ValueError(self.kind)

    def hull_points(self, n: int = 72) -> np.ndarray:  # [M, 3] world points whose hull contains the part
        """Points spanning the part's convex hull (corners, rims, apex); the torus is covered by
        balls of radius ``minor`` around its ring (see ``max_distance``)."""
        p = self.params
        ang = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
        circle = np.stack([np.cos(ang), np.sin(ang), np.zeros(n)], -1)
        if self.kind == "sphere":
            local = np.zeros((1, 3))
        elif self.kind == "cube":
            local = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * np.asarray(p["half"])
        elif self.kind == "cylinder":
            local = np.concatenate([circle * p["radius"] + [0, 0, s * p["half_height"]] for s in (-1, 1)])
        elif self.kind == "cone":
            local = np.concatenate([circle * p["radius"] - [0, 0, p["half_height"]], [[0, 0, p["half_height"]]]])
        else:  # torus: the ring's centre line
            local = circle * p["major"]
        return local @ np.asarray(self.rotation).T + np.asarray(self.center)

    def max_distance(self, origin: np.ndarray | None = None) -> float:
        """Farthest distance of the part from ``origin`` (exact up to the rim sampling)."""
        origin = np.zeros(3) if origin is None else origin
        pad = self.params["radius"] if self.kind == "sphere" else self.params["minor"] if self.kind == "torus" else 0.0
        return float(np.linalg.norm(self.hull_points() - origin, axis=-1).max() + pad)

    def aabb(self) -> tuple[np.ndarray, np.ndarray]:
        ext = np.abs(np.asarray(self.rotation)) @ self.local_extent()
        c = np.asarray(self.center)
        return c - ext, c + ext

    def transformed(self, scale: float = 1.0, shift: Sequence[float] = (0.0, 0.0, 0.0)) -> "Part":
        """Scale about the origin, then shift (both applied in world space)."""
        params = {k: (tuple(scale * x for x in v) if isinstance(v, (tuple, list)) else scale * v)
                  for k, v in self.params.items()}
        center = tuple(float(scale * c + s) for c, s in zip(self.center, shift))
        return Part(self.kind, params, self.color, center, self.rotation, self.front_color)

    def to_local(self, points: Tensor) -> Tensor:  # [N, 3] -> [N, 3]
        rot = torch.as_tensor(self.rotation, dtype=points.dtype, device=points.device)
        center = torch.as_tensor(self.center, dtype=points.dtype, device=points.device)
        return (points - center) @ rot  # R^T (p - c), row-vector form

    def sdf(self, points: Tensor) -> Tensor:  # [N, 3] world -> [N]
        return _local_sdf(self.kind, self.params, self.to_local(points))

    def albedo(self, points: Tensor) -> Tensor:  # [N, 3] world -> [N, 3]
        base = torch.as_tensor(self.color, dtype=points.dtype, device=points.device).expand(points.shape[0], 3)
        if self.front_color is None:
            return base
        q = self.to_local(points) / torch.as_tensor(self.params["half"], dtype=points.dtype, device=points.device)
        on_front = (q[:, 0] > 0) & (q[:, 0] >= q[:, 1].abs()) & (q[:, 0] >= q[:, 2].abs())
        front = torch.as_tensor(self.front_color, dtype=points.dtype, device=points.device)
        return torch.where(on_front[:, None], front.expand_as(base), base)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params.items()},
            "color": list(self.color),
            "center": list(self.center),
            "rotation": [list(r) for r in self.rotation],
        }
        if self.front_color is not None:
            out["front_color"] = list(self.front_color)
        return out


def _local_sdf(kind: str, p: dict[str, Any], q: Tensor) -> Tensor:
    """Exact signed distances of the primitives in their local frames (q: [N, 3])."""
    if kind == "sphere":
        return q.norm(dim=-1) - p["radius"]
    if kind == "cube":
        d = q.abs() - torch.as_tensor(p["half"], dtype=q.dtype, device=q.device)
        inner = torch.maximum(torch.maximum(d[:, 0], d[:, 1]), d[:, 2]).clamp_max(0)
        return d.clamp_min(0).norm(dim=-1) + inner
    if kind == "cylinder":
        dr = q[:, :2].norm(dim=-1) - p["radius"]
        dz = q[:, 2].abs() - p["half_height"]
        return torch.hypot(dr.clamp_min(0), dz.clamp_min(0)) + torch.maximum(dr, dz).clamp_max(0)
    if kind == "cone":
        return _capped_cone(q, p["half_height"], p["radius"], 0.0)
    if kind == "torus":
        ring = torch.stack([q[:, :2].norm(dim=-1) - p["major"], q[:, 2]], dim=-1)
        return ring.norm(dim=-1) - p["minor"]
    raise ValueError(f"unknown primitive {kind!r}")


def _capped_cone(q: Tensor, h: float, r1: float, r2: float) -> Tensor:
    """Exact SDF of a truncated cone along local Z: radius r1 at z=-h, r2 at z=+h."""
    rad = q[:, :2].norm(dim=-1)
    z = q[:, 2]
    k1 = torch.tensor([r2, h], dtype=q.dtype, device=q.device)
    k2 = torch.tensor([r2 - r1, 2.0 * h], dtype=q.dtype, device=q.device)
    cap_r = torch.where(z < 0, torch.full_like(z, r1), torch.full_like(z, r2))
    ca = torch.stack([rad - torch.minimum(rad, cap_r), z.abs() - h], dim=-1)
    qq = torch.stack([rad, z], dim=-1)
    t = (((k1 - qq) * k2).sum(-1) / (k2 * k2).sum()).clamp(0.0, 1.0)
    cb = qq - k1 + k2 * t[:, None]
    inside = (cb[:, 0] < 0) & (ca[:, 1] < 0)
    dist = torch.minimum((ca * ca).sum(-1), (cb * cb).sum(-1)).sqrt()
    return torch.where(inside, -dist, dist)


@dataclass
class Scene:
    """A seeded object made of parts. ``shape`` names the kind (e.g. "cube", "sphere_on_cube"),
    ``color`` the main colour name; ``colors`` lists every colour name in caption order."""

    shape: str
    color: str
    parts: list[Part]
    has_front: bool = False
    seed: int | None = None
    size: str | None = None  # "small" | "large" | None (medium)
    colors: list[str] = field(default_factory=list)
    scale: float = 1.0

    def metadata(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "color": self.color,
            "colors": list(self.colors or [self.color]),
            "size": self.size,
            "scale": self.scale,
            "seed": self.seed,
            "has_front": self.has_front,
            "parts": [p.to_dict() for p in self.parts],
        }

    def bound_radius(self) -> float:
        """Radius of a ball around the origin that contains the whole scene."""
        return max(p.max_distance() for p in self.parts)

    def part_sdfs(self, points: Tensor) -> Tensor:  # [P, N]
        return torch.stack([p.sdf(points) for p in self.parts])

    def sdf(self, points: Tensor) -> Tensor:  # [N, 3] -> [N]
        out = self.parts[0].sdf(points)
        for part in self.parts[1:]:
            out = torch.minimum(out, part.sdf(points))
        return out

    def albedo(self, points: Tensor) -> Tensor:  # [N, 3] -> [N, 3] in [0, 1]
        if len(self.parts) == 1:
            return self.parts[0].albedo(points)
        nearest = self.part_sdfs(points).argmin(dim=0)  # [N]
        out = torch.empty(points.shape[0], 3, dtype=points.dtype, device=points.device)
        for i, part in enumerate(self.parts):
            m = nearest == i
            if m.any():
                out[m] = part.albedo(points[m])
        return out
