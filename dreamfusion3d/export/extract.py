"""Isosurface extraction: any scalar field (NeRF density, signed distance) -> a clean trimesh mesh.

The field is a plain callable ``fn(points [N, 3]) -> values [N]`` so that NeRF fields, the
world's analytic SDFs and test functions all go through the same code.

Pipeline: sample the field on a regular grid (chunked, ``torch.no_grad``) -> pick the level
(``threshold="auto"``, see :func:`auto_density_threshold`) -> marching cubes
(``skimage.measure.marching_cubes``) on the grid padded by one "outside" layer, so that a surface
cut by the box is capped and the mesh stays closed -> merge vertices -> keep the largest
component -> optional quadric decimation -> outward winding -> vertex colours from ``color_fn``.

Coordinates stay in the caller's (world) frame: +Z up, front +X. Axis conversion for files is
the writers' job (:mod:`dreamfusion3d.export.writers`).
"""

from __future__ import annotations

import math
from typing import Callable, Literal, Sequence

import numpy as np
import torch
import trimesh
from torch import Tensor

from ..utils.errors import UserError
from ..utils.logging import info, progress, warn

FieldFn = Callable[[Tensor], Tensor]  # points [N, 3] -> values [N]
ColorFn = Callable[[Tensor], Tensor]  # points [N, 3] -> rgb [N, 3] in [0, 1]
FieldType = Literal["density", "sdf"]

# ``threshold="auto"`` for densities: the mesh's silhouettes along the three axes cover as many
# rays as the rendered field's silhouettes, where a ray "sees" the field once its accumulated
# opacity 1 - exp(-∫σ ds) exceeds this value.
AUTO_OPACITY = 0.5


class EmptyFieldError(UserError):
    """The field has no surface inside the box (nothing to export)."""


def _as_box(bbox_min: Sequence[float] | float, bbox_max: Sequence[float] | float) -> tuple[np.ndarray, np.ndarray]:
    lo = np.broadcast_to(np.asarray(bbox_min, dtype=np.float64), (3,)).copy()
    hi = np.broadcast_to(np.asarray(bbox_max, dtype=np.float64), (3,)).copy()
    if not np.all(hi > lo):
        raise UserError(f"bounding box is empty: min {lo.tolist()} must be below max {hi.tolist()} on every axis")
    return lo, hi


@torch.no_grad()
def evaluate_grid(
    fn: FieldFn,
    bbox_min: Sequence[float] | float,
    bbox_max: Sequence[float] | float,
    resolution: int,
    chunk_size: int = 131072,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    desc: str = "field on grid",
) -> np.ndarray:  # [R, R, R] float32, index (i, j, k) = point min + (i, j, k) * spacing
    """Evaluate ``fn`` at the ``resolution``³ grid vertices spanning the box, ``chunk_size`` points
    at a time, so memory stays bounded whatever the resolution."""
    if resolution < 3:
        raise UserError(f"resolution must be at least 3, got {resolution}")
    if chunk_size < 1:
        raise UserError(f"chunk_size must be positive, got {chunk_size}")
    lo, hi = _as_box(bbox_min, bbox_max)
    r = int(resolution)
    axes = [torch.linspace(float(lo[a]), float(hi[a]), r, dtype=dtype, device=device) for a in range(3)]
    yz = torch.stack(torch.meshgrid(axes[1], axes[2], indexing="ij"), dim=-1).reshape(-1, 2)  # [R*R, 2]
    total = r**3
    out = np.empty(total, dtype=np.float32)
    bar = progress(total=total, desc=desc, unit="pt", unit_scale=True, leave=False)
    for start in range(0, total, chunk_size):
        stop = min(start + chunk_size, total)
        first, last = start // (r * r), (stop - 1) // (r * r)  # x-planes this chunk touches
        slab = torch.cat([axes[0][first : last + 1].repeat_interleave(r * r)[:, None], yz.repeat(last - first + 1, 1)], dim=-1)
        offset = first * r * r
        points = slab[start - offset : stop - offset]  # [n, 3]
        values = fn(points).reshape(len(points), -1)
        if values.shape[1] != 1:
            raise ValueError(f"field function must return one value per point, got shape {tuple(values.shape)}")
        out[start:stop] = values[:, 0].float().cpu().numpy()
        bar.update(stop - start)
    bar.close()
    return out.reshape(r, r, r)


def auto_density_threshold(density: np.ndarray, spacing: Sequence[float], opacity: float = AUTO_OPACITY) -> float:
    """The density level whose isosurface has the field's own rendered silhouettes.

    For each axis, every grid line through the box is a ray: the field makes it opaque when its
    accumulated opacity ``1 - exp(-Σ σ_i Δ)`` exceeds ``opacity``; a mesh at level τ blocks it
    when the ray's peak density exceeds τ. τ is chosen so that both count the same rays over the
    three axes (a quantile of the per-ray peaks): volumetric haze too thin to be seen does not
    inflate the mesh, and a faint but visible object does not vanish. τ is then raised above the
    densest value on the box's faces, so that haze reaching the box does not wrap the mesh around
    the box. Raises :class:`EmptyFieldError` when no ray becomes opaque or nothing stays above τ.
    """
    density = np.asarray(density, dtype=np.float32)
    density = np.where(np.isfinite(density), density, np.float32(0.0))
    peaks, visible = [], 0
    for axis in range(3):
        optical_depth = density.clip(min=0).sum(axis=axis, dtype=np.float64) * float(spacing[axis])  # [R, R]
        visible += int(np.count_nonzero(1.0 - np.exp(-optical_depth) > opacity))
        peaks.append(density.max(axis=axis).ravel())
    peak = np.sort(np.concatenate(peaks))[::-1]  # per-ray peak densities, descending
    dmax = float(peak[0])
    if visible == 0:
        raise EmptyFieldError(
            f"field is empty: no ray through the box reaches {opacity:.0%} opacity (max density {dmax:.3g}); nothing to export"
        )
    level = 0.5 * (peak[visible - 1] + peak[visible]) if visible < len(peak) else 0.5 * peak[-1]
    faces = np.concatenate([
        density[[0, -1]].ravel(), density[:, [0, -1]].ravel(), density[:, :, [0, -1]].ravel()
    ])
    boundary = float(faces.max())
    if level <= boundary:
        info(f"auto threshold {level:.4g} would reach the box faces (density {boundary:.4g} there); raised above it")
        level = boundary + 1e-3 * max(abs(boundary), dmax - boundary)
    if level >= dmax:
        raise EmptyFieldError(
            f"field is empty: no density inside the box rises above the level of its boundary ({boundary:.3g}); nothing to export"
        )
    return float(level)


def _inside_up(grid: np.ndarray, field_type: FieldType, threshold: float | str, spacing: np.ndarray) -> tuple[np.ndarray, float]:
    """Return the grid as "larger is inside" and the level to contour it at."""
    if field_type == "sdf":
        level = 0.0 if threshold == "auto" else float(threshold)
        g = -grid
        bad = ~np.isfinite(g)
        if bad.any():
            warn(f"{int(bad.sum())} non-finite field values treated as outside")
            g = np.where(bad, -np.inf, g)
        return g, -level
    if field_type != "density":
        raise UserError(f"field_type must be 'density' or 'sdf', got {field_type!r}")
    bad = ~np.isfinite(grid)
    if bad.any():
        warn(f"{int(bad.sum())} non-finite density values treated as empty")
        grid = np.where(bad, 0.0, grid)
    if threshold == "auto":
        return grid, auto_density_threshold(grid, spacing)
    return grid, float(threshold)


def _parse_threshold(threshold: float | str) -> float | str:
    """'auto' or a finite float (strings from the command line included)."""
    if isinstance(threshold, str):
        if threshold.strip().lower() == "auto":
            return "auto"
        try:
            threshold = float(threshold)
        except ValueError:
            raise UserError(f"threshold must be 'auto' or a number, got {threshold!r}") from None
    if not math.isfinite(float(threshold)):
        raise UserError(f"threshold must be finite, got {threshold}")
    return float(threshold)


def marching_cubes_mesh(
    g: np.ndarray,  # [R, R, R], larger = inside
    level: float,
    bbox_min: np.ndarray,
    bbox_max: np.ndarray,
    field_type: FieldType = "density",
) -> trimesh.Trimesh:
    """Marching cubes on the grid padded with one outside layer (so the mesh is closed), vertices
    in box coordinates (clipped to the box), faces wound outward."""
    from skimage import measure

    finite = g[np.isfinite(g)]
    sign = -1.0 if field_type == "sdf" else 1.0  # g is the field negated for SDFs
    shown = f"{sign * level + 0.0:.4g}"
    if not finite.size or float(finite.max()) <= level:
        span = f" (values range over [{finite.min():.3g}, {finite.max():.3g}])" if finite.size and sign > 0 else ""
        raise EmptyFieldError(f"field is empty at threshold {shown}{span}; nothing to export")
    lo_val = float(finite.min())
    if lo_val >= level:
        raise EmptyFieldError(f"the whole box is inside the surface at threshold {shown}; nothing to export")
    fill = min(lo_val, level) - 1.0
    padded = np.pad(np.where(np.isfinite(g), g, fill), 1, constant_values=fill).astype(np.float32)
    spacing = (bbox_max - bbox_min) / (g.shape[0] - 1)
    # "descent": values decrease from inside to outside, which gives outward-facing triangles.
    verts, faces, _, _ = measure.marching_cubes(
        padded, level=level, spacing=tuple(spacing), gradient_direction="descent", allow_degenerate=False
    )
    verts = np.clip(verts - spacing + bbox_min, bbox_min, bbox_max)
    return trimesh.Trimesh(verts, faces, process=True)


def keep_largest_component(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Drop floaters and inner shells: keep the connected component with the largest area."""
    parts = mesh.split(only_watertight=False)
    if len(parts) <= 1:
        return mesh
    return max(parts, key=lambda m: m.area)


def decimate(mesh: trimesh.Trimesh, face_count: int) -> trimesh.Trimesh:
    """Quadric-error decimation to about ``face_count`` faces (trimesh + fast_simplification)."""
    if face_count >= len(mesh.faces):
        return mesh
    if face_count < 4:
        raise UserError(f"decimate_to must be at least 4 faces, got {face_count}")
    try:
        import fast_simplification  # noqa: F401
    except ImportError:
        raise UserError(
            "decimation needs the package fast_simplification: pip install fast_simplification "
            "(or pip install 'dreamfusion3d[export]'), or leave decimate_to unset"
        ) from None
    out = mesh.simplify_quadric_decimation(face_count=int(face_count))
    out.merge_vertices()
    out.remove_unreferenced_vertices()
    return out


def _within_budget(mesh: trimesh.Trimesh, faces: int, grid: np.ndarray, field_type: FieldType,
                   threshold: float | str, lo: np.ndarray, hi: np.ndarray, largest_component: bool) -> trimesh.Trimesh:
    """At most ``faces`` faces, keeping a closed mesh closed: quadric decimation first; where that
    opens holes or splits the surface, marching cubes again on a coarser resampling of the grid
    (its face count falls with the square of the resolution)."""
    closed, pieces = mesh.is_watertight, len(mesh.split(only_watertight=False))
    out = decimate(mesh, faces)
    out = keep_largest_component(out) if largest_component else out
    if len(out.faces) <= faces and (not closed or out.is_watertight) and len(out.split(only_watertight=False)) <= pieces:
        return out
    from scipy.ndimage import zoom

    factor = math.sqrt(faces / len(mesh.faces))
    for _ in range(6):
        factor *= 0.9
        coarse = zoom(grid, factor, order=1)
        spacing = (hi - lo) / (coarse.shape[0] - 1)
        g, level = _inside_up(coarse, field_type, threshold, spacing)
        out = marching_cubes_mesh(g, level, lo, hi, field_type)
        out = keep_largest_component(out) if largest_component else out
        if len(out.faces) <= faces:
            info(f"decimation would open the surface: meshed at {coarse.shape[0]}³ instead ({len(out.faces)} faces)")
            return out
    raise UserError(f"could not bring the mesh below {faces} faces")


@torch.no_grad()
def vertex_colors(
    color_fn: ColorFn, vertices: np.ndarray, chunk_size: int = 131072,
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
) -> np.ndarray:  # [V, 4] uint8 RGBA
    """Evaluate ``color_fn`` (rgb in [0, 1]) at mesh vertices, chunked."""
    rgb = np.empty((len(vertices), 3), dtype=np.float32)
    for start in range(0, len(vertices), chunk_size):
        pts = torch.as_tensor(vertices[start : start + chunk_size], dtype=dtype, device=device)
        rgb[start : start + len(pts)] = color_fn(pts).reshape(len(pts), 3).float().cpu().numpy()
    rgb = np.nan_to_num(rgb, nan=0.0).clip(0.0, 1.0)
    rgba = np.concatenate([np.round(rgb * 255.0), np.full((len(rgb), 1), 255.0)], axis=1)
    return rgba.astype(np.uint8)


def orient_outward(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Consistent winding with outward normals (positive signed volume for a closed mesh)."""
    mesh.fix_normals()
    if mesh.is_watertight and mesh.volume < 0:
        mesh.invert()
    # a fresh mesh: trimesh can keep face normals cached from before the winding was fixed
    return trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)


def extract_mesh(
    field_fn: FieldFn,
    bbox_min: Sequence[float] | float = -1.0,
    bbox_max: Sequence[float] | float = 1.0,
    resolution: int = 128,
    threshold: float | str = "auto",
    color_fn: ColorFn | None = None,
    *,
    field_type: FieldType = "density",
    chunk_size: int = 131072,
    largest_component: bool = True,
    decimate_to: int | None = None,
    device: str | torch.device = "cpu",
) -> trimesh.Trimesh:
    """Mesh the surface of a scalar field inside a box (world coordinates, +Z up).

    ``field_type="density"``: inside is where the value is *above* the level; ``threshold="auto"``
    matches the field's rendered silhouettes (:func:`auto_density_threshold`).
    ``field_type="sdf"``: inside is where the value is *below* the level; ``"auto"`` means 0.
    ``color_fn`` gives per-vertex RGB in [0, 1] (stored as uint8 RGBA vertex colours).
    The returned mesh is closed (surfaces cut by the box are capped at the box), wound outward,
    and carries ``mesh.metadata["threshold"]`` (the level used) and ``["field_type"]``.
    Raises :class:`EmptyFieldError` (a ``UserError``) when there is no surface.
    """
    lo, hi = _as_box(bbox_min, bbox_max)
    threshold = _parse_threshold(threshold)
    grid = evaluate_grid(field_fn, lo, hi, resolution, chunk_size=chunk_size, device=device)
    spacing = (hi - lo) / (resolution - 1)
    g, level = _inside_up(grid, field_type, threshold, spacing)
    mesh = marching_cubes_mesh(g, level, lo, hi, field_type)
    if largest_component:
        mesh = keep_largest_component(mesh)
    if decimate_to is not None and len(mesh.faces) > decimate_to:
        mesh = _within_budget(mesh, decimate_to, grid, field_type, threshold, lo, hi, largest_component)
    mesh = orient_outward(mesh)
    if color_fn is not None:
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=vertex_colors(color_fn, mesh.vertices, chunk_size, device))
    user_level = -level if field_type == "sdf" else level
    mesh.metadata.update({"threshold": float(user_level), "field_type": field_type, "resolution": int(resolution)})
    return mesh
