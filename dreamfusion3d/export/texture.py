"""Optional textured export: a UV atlas (xatlas) and the albedo baked into a PNG texture.

xatlas is an optional extra (``pip install xatlas`` or ``dreamfusion3d[export]``), imported only
here. Baking rasterises every triangle in UV space (vectorised over texels), maps each covered
texel centre back to its 3D point by barycentric interpolation, and asks ``color_fn`` for its
colour; empty texels take their nearest covered texel's colour, so bilinear filtering across chart
borders does not bleed background into the surface.
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh
from PIL import Image

from ..utils.errors import UserError
from ..utils.logging import info
from .extract import ColorFn


def _xatlas():
    try:
        import xatlas
    except ImportError:
        raise UserError(
            "textured export needs the package xatlas: pip install xatlas (or pip install 'dreamfusion3d[export]'), "
            "or export vertex colours instead (no --texture)"
        ) from None
    return xatlas


def uv_unwrap(mesh: trimesh.Trimesh, texture_size: int = 1024, padding: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xatlas charts packed for a ``texture_size``² image.

    Returns (vertices [V', 3], faces [F, 3], uv [V', 2] in [0, 1], OBJ convention: v up);
    vertices on chart seams are duplicated.
    """
    xatlas = _xatlas()
    atlas = xatlas.Atlas()
    atlas.add_mesh(np.ascontiguousarray(mesh.vertices, dtype=np.float32), np.ascontiguousarray(mesh.faces, dtype=np.uint32))
    pack = xatlas.PackOptions()
    pack.resolution = int(texture_size)
    pack.padding = int(padding)
    atlas.generate(pack_options=pack)
    vmapping, faces, uv = atlas[0]
    return np.asarray(mesh.vertices)[vmapping], faces.astype(np.int64), uv.astype(np.float64)


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


@torch.no_grad()
def bake_texture(
    mesh: trimesh.Trimesh,
    color_fn: ColorFn,
    texture_size: int = 1024,
    chunk_size: int = 131072,
    device: str | torch.device = "cpu",
) -> trimesh.Trimesh:
    """A copy of ``mesh`` (world frame) with a UV atlas and ``color_fn`` baked into a
    ``texture_size``² texture (trimesh ``TextureVisuals`` with a PBR ``baseColorTexture``)."""
    from scipy import ndimage

    if texture_size < 16:
        raise UserError(f"texture size must be at least 16, got {texture_size}")
    info(f"UV atlas (xatlas) for {len(mesh.faces)} faces")
    vertices, faces, uv = uv_unwrap(mesh, texture_size)
    rows, cols, face, bary = rasterize_uv(uv, faces, texture_size)
    points = np.einsum("kj,kjd->kd", bary, vertices[faces[face]])  # [K, 3]
    rgb = np.empty((len(points), 3), dtype=np.float32)
    for start in range(0, len(points), chunk_size):
        pts = torch.as_tensor(points[start : start + chunk_size], dtype=torch.float32, device=device)
        rgb[start : start + len(pts)] = color_fn(pts).reshape(len(pts), 3).float().cpu().numpy()
    image = np.zeros((texture_size, texture_size, 3), dtype=np.float32)
    covered = np.zeros((texture_size, texture_size), dtype=bool)
    image[rows, cols] = np.nan_to_num(rgb, nan=0.0).clip(0.0, 1.0)
    covered[rows, cols] = True
    if not covered.any():
        raise UserError("texture baking covered no texel (degenerate UV atlas)")
    # fill empty texels from the nearest covered one (seam-free bilinear lookups)
    nearest = ndimage.distance_transform_edt(~covered, return_distances=False, return_indices=True)
    image = image[nearest[0], nearest[1]]
    png = Image.fromarray(np.round(image * 255.0).astype(np.uint8), mode="RGB")
    material = trimesh.visual.material.PBRMaterial(
        name="albedo", baseColorTexture=png, metallicFactor=0.0, roughnessFactor=1.0, doubleSided=False
    )
    out = trimesh.Trimesh(vertices, faces, process=False)
    out.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    out.metadata.update(mesh.metadata)
    return out
