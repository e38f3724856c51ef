"""Shape agreement of a generated object with the world's ground-truth object.

Both objects are *solids* given as callables ``inside(points [N,3]) -> [N]`` (positive inside):
the world scene's ``-sdf``, an SDF geometry's ``-sdf`` and a NeRF's ``density - level`` (``level`` =
the export's automatic threshold), so the compared solid is the one ``generate`` meshes.

Normalisation (each solid separately): centroid at the origin and unit *volume-equivalent
radius*, both measured on a ``resolution``³ grid over the scene box [-1, 1]³. This removes the
position and overall size, which the prompt does not fix (the world draws sizes at random).
Orientation about the vertical axis is not fixed either (the world yaws primitives by ±25°), so
the reference is rotated about +Z in ``yaw_step`` increments and the yaw with the best IoU is
kept; the Chamfer distance is reported at that yaw. (The world also tips a torus by a random
0–20° about a horizontal axis; ``evaluate`` compares with the reference at several tilts of that
range and keeps the best, ``evaluate.best_reference``.) Proportions (a cylinder's aspect, a torus'
thickness) are left as they are: they are part of the shape.

* IoU: both normalised solids are sampled on one grid over [-2, 2]³ (unit radius objects reach
  at most ~1.8 there) and compared voxel by voxel.
* Chamfer: the two normalised grids are contoured by marching cubes (scikit-image), ``points``
  points are sampled on each surface (trimesh), and :func:`~.metrics.chamfer_distance` compares
  them (Euclidean, mean of the two directions), in units of the volume-equivalent radius.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import trimesh
from scipy.ndimage import map_coordinates
from skimage.measure import marching_cubes
from torch import Tensor

from ..export import auto_density_threshold, evaluate_grid
from .metrics import chamfer_distance, normalisation, rotation_z, volumetric_iou

InsideFn = Callable[[Tensor], Tensor]  # points [N, 3] -> [N], > 0 inside
ColorFn = Callable[[Tensor], Tensor]  # points [N, 3] -> [N, 3] in [0, 1]

NORMALISED_HALF_WIDTH = 2.0


class EmptySolidError(ValueError):
    """A solid has no inside on the grid (nothing to compare)."""


@dataclass
class Solid:
    inside: InsideFn
    color: ColorFn | None = None


def scene_solid(scene) -> Solid:
    """A world ``Scene`` as a solid (inside = negative signed distance)."""
    return Solid(lambda p: -scene.sdf(p), scene.albedo)


def representation_solid(rep, resolution: int = 64) -> Solid:
    """A 3D representation's solid, the one export meshes: an SDF's negative distance, or a
    density above the export's automatic level (raises EmptySolidError)."""
    from ..export import EmptyFieldError

    f = rep.export_fields()
    if f.field_type == "sdf":
        return Solid(lambda p: -f.field_fn(p), f.color_fn)
    grid = evaluate_grid(f.field_fn, -1.0, 1.0, resolution, desc="density grid")
    spacing = [2.0 / (resolution - 1)] * 3
    try:
        level = auto_density_threshold(grid, spacing)
    except EmptyFieldError as exc:
        raise EmptySolidError(str(exc)) from exc
    return Solid(lambda p: f.field_fn(p) - level, f.color_fn)


def _in_box(points: Tensor) -> Tensor:  # [N, 3] -> [N] bool
    return (points.abs() <= 1.0).all(-1)


@dataclass
class Normalised:
    centre: np.ndarray  # [3] world
    radius: float  # volume-equivalent radius (world units)
    grid: np.ndarray  # [R, R, R] inside-ness on the normalised grid over [-2, 2]^3


def normalise_solid(solid: Solid, resolution: int = 64) -> Normalised:
    """Measure centroid and volume on the scene box, then resample the solid in normalised units."""
    grid = evaluate_grid(lambda p: solid.inside(p), -1.0, 1.0, resolution, desc="solid grid")
    axis = np.linspace(-1.0, 1.0, resolution)
    occ = grid > 0
    if not occ.any():
        raise EmptySolidError("the solid is empty on the evaluation grid")
    idx = np.argwhere(occ)
    points = axis[idx]  # [M, 3] world coordinates of inside vertices
    volume = len(points) * (2.0 / (resolution - 1)) ** 3
    centre, radius = normalisation(points, volume)
    c = torch.as_tensor(centre, dtype=torch.float32)

    def normalised_fn(q: Tensor) -> Tensor:  # normalised coords -> inside-ness
        p = c + float(radius) * q
        out = torch.full((len(q),), -1.0)
        keep = _in_box(p)
        if keep.any():
            out[keep] = solid.inside(p[keep]).float()
        return out

    h = NORMALISED_HALF_WIDTH
    ngrid = evaluate_grid(normalised_fn, -h, h, resolution, desc="normalised grid")
    if not (ngrid > 0).any():  # a few stray inside vertices that the resampling misses: no surface to compare
        raise EmptySolidError(f"the solid is too small to resolve ({len(points)} inside vertices on the evaluation grid)")
    return Normalised(centre, float(radius), ngrid)


def rotate_grid(grid: np.ndarray, yaw_deg: float) -> np.ndarray:
    """The grid of ``q -> f(Rz(yaw) q)`` (the solid turned by -yaw), by trilinear resampling."""
    r = grid.shape[0]
    axis = np.linspace(-1.0, 1.0, r)
    q = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    p = q @ rotation_z(yaw_deg).T  # rows: Rz q
    coords = (p + 1.0) * 0.5 * (r - 1)
    out = map_coordinates(grid, coords.T, order=1, mode="constant", cval=float(grid.min()))
    return out.reshape(grid.shape)


def surface_points(grid: np.ndarray, count: int, seed: int = 0) -> np.ndarray:  # [count, 3] normalised coords
    r = grid.shape[0]
    padded = np.pad(grid, 1, constant_values=min(float(grid.min()), -1.0))  # caps a cut surface
    verts, faces, _, _ = marching_cubes(padded, level=0.0)
    h = NORMALISED_HALF_WIDTH
    verts = (verts - 1.0) * (2.0 * h / (r - 1)) - h
    mesh = trimesh.Trimesh(verts, faces, process=False)
    points, _ = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points)


def compare_solids(generated: Solid, reference: Solid, resolution: int = 64, yaw_step: float = 15.0,
                   points: int = 10000, seed: int = 0) -> dict:
    """IoU and Chamfer distance of two solids after normalisation and the best yaw of the reference.

    Returns {"iou", "chamfer", "yaw_deg", "iou_unaligned", "scale_ratio"} (scale_ratio = generated
    volume-equivalent radius / reference's, in world units, for reference only)."""
    gen = normalise_solid(generated, resolution)
    ref = normalise_solid(reference, resolution)
    occ_gen = gen.grid > 0
    best = (-1.0, 0.0, ref.grid)
    for yaw in np.arange(0.0, 360.0, yaw_step):
        rotated = ref.grid if yaw == 0 else rotate_grid(ref.grid, float(yaw))
        iou = volumetric_iou(occ_gen, rotated > 0)
        if yaw == 0:
            unaligned = iou
        if iou > best[0]:
            best = (iou, float(yaw), rotated)
    iou, yaw, rotated = best
    chamfer = chamfer_distance(surface_points(gen.grid, points, seed), surface_points(rotated, points, seed + 1))
    return {"iou": iou, "chamfer": chamfer, "yaw_deg": yaw, "iou_unaligned": unaligned,
            "scale_ratio": gen.radius / ref.radius}


# ---------------------------------------------------------------------- judging the mesh in 3D

TEMPLATE_SHAPES = ("sphere", "cube", "cylinder", "cone", "torus")


def template_fit(generated: Solid, resolution: int = 48, seeds: tuple[int, ...] = (0, 1, 2),
                 shapes: tuple[str, ...] = TEMPLATE_SHAPES) -> dict:
    """Which world primitive the solid is, judged in 3D alone (no 2D classifier): the best IoU
    against each shape's templates (``seeds`` draw the world's random proportions; yaw and scale
    are normalised away). Returns {"shape", "scores": {shape: best IoU}}."""
    from ..world import primitive_scene

    scores = {}
    for shape in shapes:
        best = 0.0
        for seed in seeds:
            scene = primitive_scene(shape, "red", seed=seed, yaw=0.0, **({"tilt": 0.0} if shape == "torus" else {}))
            r = compare_solids(generated, scene_solid(scene), resolution, yaw_step=15.0 if shape == "cube" else 360.0,
                               points=500, seed=seed)
            best = max(best, r["iou"])
        scores[shape] = best
    return {"shape": max(scores, key=scores.get), "scores": scores}


def _surface(grid: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray, trimesh.Trimesh]:
    """Points, outward normals and the mesh of a normalised grid's zero level (marching cubes)."""
    r = grid.shape[0]
    padded = np.pad(grid, 1, constant_values=min(float(grid.min()), -1.0))
    verts, faces, _, _ = marching_cubes(padded, level=0.0, gradient_direction="ascent")
    h = NORMALISED_HALF_WIDTH
    mesh = trimesh.Trimesh((verts - 1.0) * (2.0 * h / (r - 1)) - h, faces, process=True)
    mesh.fix_normals()
    points, face_index = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points), np.asarray(mesh.face_normals[face_index]), mesh


def surface_figures(generated: Solid, reference: Solid, resolution: int = 64, yaw_deg: float = 0.0,
                    points: int = 5000, seed: int = 0) -> dict:
    """Normal consistency against the true surface (mean cosine between each sampled point's
    normal and its nearest neighbour's on the other surface, both ways; 1 = same orientation
    everywhere) and the share of the generated surface's area outside its largest connected
    component (floaters, inner shells). Both in the normalised frame, reference at ``yaw_deg``."""
    from scipy.spatial import cKDTree

    gen = normalise_solid(generated, resolution)
    ref = normalise_solid(reference, resolution)
    ref_grid = ref.grid if yaw_deg == 0 else rotate_grid(ref.grid, yaw_deg)
    pg, ng, mesh = _surface(gen.grid, points, seed)
    pr, nr, _ = _surface(ref_grid, points, seed + 1)
    _, i_gr = cKDTree(pr).query(pg)
    _, i_rg = cKDTree(pg).query(pr)
    consistency = 0.5 * (float((ng * nr[i_gr]).sum(-1).mean()) + float((nr * ng[i_rg]).sum(-1).mean()))
    parts = mesh.split(only_watertight=False)
    area = float(mesh.area)
    outside = 0.0 if len(parts) <= 1 or area <= 0 else 1.0 - max(p.area for p in parts) / area
    return {"normal_consistency": consistency, "outside_largest_component": outside, "components": len(parts)}
