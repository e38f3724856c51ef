"""Textured export: a UV atlas (xatlas) and the albedo baked into a PNG texture.

``texture="albedo"`` (the default of ``generate`` and ``export``) unwraps the mesh with xatlas,
rasterises every triangle in UV space (vectorised over texels), maps each covered texel centre
back to its 3D point by barycentric interpolation and asks ``color_fn`` for its colour. Empty
texels then take the colour of their nearest covered texel (the seams are dilated over the whole
gutter), so bilinear filtering and mip-mapping across chart borders never bleed background into
the surface. The material is a matte dielectric (metallic 0, roughness :data:`ROUGHNESS`).

``texture="none"`` keeps the vertex colours; the writers then give the GLB a white matte material
so that viewers multiply it by ``COLOR_0``.

xatlas is a runtime dependency (wheels for the supported platforms); where it cannot be imported,
:func:`apply_texture` falls back to vertex colours with one warning line.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
import torch
import trimesh
from PIL import Image

from ..utils.errors import UserError
from ..utils.logging import info, warn
from .extract import ColorFn

TextureMode = Literal["albedo", "none"]
TEXTURE_MODES: tuple[str, ...] = ("albedo", "none")
MIN_TEXTURE_SIZE, MAX_TEXTURE_SIZE = 16, 8192  # 8192² is the largest size common GPUs/viewers load
DEFAULT_TEXTURE_SIZE = 1024
ROUGHNESS = 0.9  # matte: the albedo is diffuse colour, not a glossy paint


def check_texture_options(texture: str, texture_size: int, flag: str = "--") -> None:
    """Raise :class:`UserError` for an unknown mode or a texture size out of range (cheap: call it
    before anything is loaded or written). ``flag``: the options' prefix in messages."""
    if texture not in TEXTURE_MODES:
        raise UserError(f"{flag}texture must be one of {', '.join(TEXTURE_MODES)}, got {texture!r}")
    if not (MIN_TEXTURE_SIZE <= int(texture_size) <= MAX_TEXTURE_SIZE):
        raise UserError(
            f"{flag}texture-size must be between {MIN_TEXTURE_SIZE} and {MAX_TEXTURE_SIZE} pixels, got {texture_size}"
        )


def xatlas_available() -> bool:
    try:
        import xatlas  # noqa: F401
    except ImportError:
        return False
    return True


def _xatlas():
    try:
        import xatlas
    except ImportError:
        raise UserError(
            "textured export needs the package xatlas: pip install xatlas, or export vertex colours (--texture none)"
        ) from None
    return xatlas


def uv_unwrap(
    mesh: trimesh.Trimesh, texture_size: int = DEFAULT_TEXTURE_SIZE, padding: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """xatlas charts packed for a ``texture_size``² image.

    Returns (vertices [V', 3], faces [F, 3], uv [V', 2] in [0, 1] with v up (OBJ convention),
    vmapping [V']: the input vertex each output vertex copies); vertices on chart seams are
    duplicated.
    """
    xatlas = _xatlas()
    atlas = xatlas.Atlas()
    atlas.add_mesh(np.ascontiguousarray(mesh.vertices, dtype=np.float32), np.ascontiguousarray(mesh.faces, dtype=np.uint32))
    charts = xatlas.ChartOptions()
    # no chart-growing refinement passes: on a bumpy marching-cubes mesh (50k faces) they cost
    # ~30x the time (72 s vs 2.3 s CPU) for the same texture use; a baked albedo does not need them
    charts.max_iterations = 0
    # charts of at most 1/50 of the surface: a few large charts (a cube's flat sides) make the
    # packing slow — 10-49 s on four 37k-50k-face meshes, 3.4-6.5 s capped, texture use 0.81-0.84
    # -> 0.69-0.81 (docs/RESULTS.md, Speed, session 33)
    charts.max_chart_area = float(mesh.area) / 50.0
    pack = xatlas.PackOptions()
    pack.resolution = int(texture_size)
    pack.padding = int(padding)
    atlas.generate(chart_options=charts, pack_options=pack)
    vmapping, faces, uv = atlas[0]
    vmapping = vmapping.astype(np.int64)
    return np.asarray(mesh.vertices)[vmapping], faces.astype(np.int64), uv.astype(np.float64), vmapping


def rasterize_uv(
    uv: np.ndarray, faces: np.ndarray, size: int, batch: int = 8192
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Texels whose centres lie in a UV triangle.

    Returns rows [K], cols [K] (row 0 = top of the image = v 1), face index [K] and barycentric
    weights [K, 3] of each covered texel centre.
    """
    # texel (row, col) centre sits at x = col + 0.5, y = row + 0.5 with x = u * size, y = (1 - v) * size
    xy = np.stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size], axis=-1)  # [V, 2]
    rows_out, cols_out, face_out, bary_out = [], [], [], []
    for start in range(0, len(faces), batch):
        f = np.arange(start, min(start + batch, len(faces)))
        tri = xy[faces[f]]  # [B, 3, 2]
        c0 = np.clip(np.ceil(tri[..., 0].min(1) - 0.5), 0, size - 1).astype(np.int64)
        c1 = np.clip(np.floor(tri[..., 0].max(1) - 0.5), 0, size - 1).astype(np.int64)
        r0 = np.clip(np.ceil(tri[..., 1].min(1) - 0.5), 0, size - 1).astype(np.int64)
        r1 = np.clip(np.floor(tri[..., 1].max(1) - 0.5), 0, size - 1).astype(np.int64)
        w, h = np.maximum(c1 - c0 + 1, 0), np.maximum(r1 - r0 + 1, 0)
        counts = w * h
        owner = np.repeat(np.arange(len(f)), counts)  # candidate texel -> triangle in batch
        local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        col = c0[owner] + local % np.maximum(w[owner], 1)
        row = r0[owner] + local // np.maximum(w[owner], 1)
        p = np.stack([col + 0.5, row + 0.5], axis=-1)  # [K, 2]
        a, b, c = tri[owner, 0], tri[owner, 1], tri[owner, 2]
        v0, v1, v2 = b - a, c - a, p - a
        den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
        ok = np.abs(den) > 1e-12
        den = np.where(ok, den, 1.0)
        l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
        l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
        l0 = 1.0 - l1 - l2
        eps = 1e-6
        inside = ok & (l0 >= -eps) & (l1 >= -eps) & (l2 >= -eps)
        rows_out.append(row[inside])
        cols_out.append(col[inside])
        face_out.append(f[owner[inside]])
        bary_out.append(np.stack([l0, l1, l2], axis=-1)[inside])
    return np.concatenate(rows_out), np.concatenate(cols_out), np.concatenate(face_out), np.concatenate(bary_out)


def dilate_into_gutters(image: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Give every uncovered texel the colour of its nearest covered texel (Euclidean)."""
    from scipy import ndimage

    if not covered.any():
        raise UserError("texture baking covered no texel (degenerate UV atlas)")
    nearest = ndimage.distance_transform_edt(~covered, return_distances=False, return_indices=True)
    return image[nearest[0], nearest[1]]


def matte_material(image: Image.Image | None = None, name: str = "albedo") -> trimesh.visual.material.PBRMaterial:
    """The glTF material of every export: white base colour (times the texture or COLOR_0),
    metallic 0, roughness :data:`ROUGHNESS`, single-sided (the meshes are closed)."""
    return trimesh.visual.material.PBRMaterial(
        name=name, baseColorTexture=image, baseColorFactor=[255, 255, 255, 255],
        metallicFactor=0.0, roughnessFactor=ROUGHNESS, doubleSided=False,
    )


@torch.no_grad()
def bake_texture(
    mesh: trimesh.Trimesh,
    color_fn: ColorFn,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
    chunk_size: int = 131072,
    device: str | torch.device = "cpu",
    timings: dict | None = None,
) -> trimesh.Trimesh:
    """A copy of ``mesh`` (world frame) with a UV atlas and ``color_fn`` baked into a
    ``texture_size``² texture (trimesh ``TextureVisuals`` with a PBR ``baseColorTexture``).

    Seam vertices are duplicated, but keep the input's smooth vertex normals (so shading shows
    no seams) and, as ``visual.vertex_attributes["color"]``, its vertex colours (the writers use
    them for PLY, which has no texture slot). ``timings``, if given, receives the seconds of each
    stage (atlas, rasterise, colours, dilate)."""
    check_texture_options("albedo", texture_size)
    timings = {} if timings is None else timings
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now

    info(f"UV atlas (xatlas) for {len(mesh.faces)} faces")
    normals = np.asarray(mesh.vertex_normals)
    vertices, faces, uv, vmapping = uv_unwrap(mesh, texture_size)
    lap("atlas")
    rows, cols, face, bary = rasterize_uv(uv, faces, texture_size)
    lap("rasterise")
    points = np.einsum("kj,kjd->kd", bary, vertices[faces[face]])  # [K, 3]
    rgb = np.empty((len(points), 3), dtype=np.float32)
    for start in range(0, len(points), chunk_size):
        pts = torch.as_tensor(points[start : start + chunk_size], dtype=torch.float32, device=device)
        rgb[start : start + len(pts)] = color_fn(pts).reshape(len(pts), 3).float().cpu().numpy()
    lap("colours")
    image = np.zeros((texture_size, texture_size, 3), dtype=np.float32)
    covered = np.zeros((texture_size, texture_size), dtype=bool)
    image[rows, cols] = np.nan_to_num(rgb, nan=0.0).clip(0.0, 1.0)
    covered[rows, cols] = True
    image = dilate_into_gutters(image, covered)
    lap("dilate")
    png = Image.fromarray(np.round(image * 255.0).astype(np.uint8), mode="RGB")
    out = trimesh.Trimesh(vertices, faces, vertex_normals=normals[vmapping], process=False)
    out.visual = trimesh.visual.TextureVisuals(uv=uv, material=matte_material(png))
    if mesh.visual.kind == "vertex":
        out.visual.vertex_attributes["color"] = np.asarray(mesh.visual.vertex_colors)[vmapping]
    out.metadata.update(mesh.metadata)
    return out


def apply_texture(
    mesh: trimesh.Trimesh,
    color_fn: ColorFn | None,
    texture: str = "albedo",
    texture_size: int = DEFAULT_TEXTURE_SIZE,
    chunk_size: int = 131072,
    device: str | torch.device = "cpu",
) -> tuple[trimesh.Trimesh, dict]:
    """The mesh the writers get, and what happened, for metrics: ``{"texture": "albedo"|"none",
    "texture_size": int|None, "bake_seconds": float|None}``.

    ``texture="none"`` (or no ``color_fn``) returns ``mesh`` unchanged; without xatlas it warns
    once and does the same."""
    check_texture_options(texture, texture_size)
    stats = {"texture": "none", "texture_size": None, "bake_seconds": None}
    if texture == "none" or color_fn is None:
        return mesh, stats
    if not xatlas_available():
        warn("xatlas is not installed (pip install xatlas): writing vertex colours instead of a baked texture")
        return mesh, stats
    start = time.perf_counter()
    textured = bake_texture(mesh, color_fn, texture_size, chunk_size, device)
    stats.update(texture="albedo", texture_size=int(texture_size), bake_seconds=round(time.perf_counter() - start, 3))
    textured.metadata["texture"] = dict(stats)
    return textured, stats
