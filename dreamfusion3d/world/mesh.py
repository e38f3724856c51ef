"""Real meshes through the same cameras and shading as the procedural scenes.

``load_mesh_asset`` reads OBJ/PLY/GLB/... with trimesh, turns the model's up axis into our +Z,
centres its bounding box at the origin and scales it so that its farthest vertex sits at
``radius`` (default 0.8, the radius procedural objects fit in). ``render_mesh`` casts the
cameras' rays with trimesh (embree when installed, else trimesh's pure-python intersector,
which needs ``rtree``) and shades hits like ``render_scene``: colour from the texture at the hit's
UV, else interpolated vertex colours, else face colours / the material colour, else flat grey.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import Tensor

from ..cameras import Cameras
from ..utils.errors import UserError
from .render import _light_dirs, composite, downsample
from .scene import FIT_RADIUS

if TYPE_CHECKING:  # trimesh is imported lazily at run time
    import trimesh

MESH_SUFFIXES = (".obj", ".ply", ".glb", ".gltf", ".stl", ".off")
FLAT_GREY = (0.7, 0.7, 0.7)

# Orientation of the shared test meshes (../shared/data/meshes): (up axis, yaw in degrees about
# +Z applied after the up conversion) so that they stand upright with their face towards +X.
KNOWN_ORIENTATIONS: dict[str, tuple[str, float]] = {
    "spot": ("y", -90.0),
    "cow": ("y", 0.0),
    "teapot": ("y", 0.0),
    "suzanne": ("y", 90.0),
    "stanford-bunny": ("y", 0.0),
    "bunny": ("y", 0.0),
}

_UP_ROTATIONS = {  # maps the named axis onto +Z (proper rotations)
    "z": np.eye(3),
    "y": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
    "-y": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
    "x": np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
    "-z": np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]),
}


@dataclass
class MeshAsset:
    """A normalised mesh with its colour source. ``transform`` maps the file's coordinates to
    ours (4×4: rotation, centring and scale), so results can be mapped back."""

    mesh: "trimesh.Trimesh"
    name: str
    path: Path
    transform: np.ndarray  # [4, 4]
    texture: np.ndarray | None = None  # [H, W, 3] float in [0, 1]
    uv: np.ndarray | None = None  # [V, 2]
    vertex_colors: np.ndarray | None = None  # [V, 3]
    face_colors: np.ndarray | None = None  # [F, 3]

    @property
    def color_source(self) -> str:
        if self.texture is not None:
            return "texture"
        if self.vertex_colors is not None:
            return "vertex"
        if self.face_colors is not None:
            return "face"
        return "flat"

    def metadata(self) -> dict:
        return {
            "shape": "mesh",
            "name": self.name,
            "source": str(self.path),
            "color_source": self.color_source,
            "num_faces": int(len(self.mesh.faces)),
            "transform": self.transform.tolist(),
        }


def _find_texture(path: Path) -> Path | None:
    for stem in (f"{path.stem}_texture", path.stem):
        for suffix in (".png", ".jpg", ".jpeg"):
            candidate = path.with_name(stem + suffix)
            if candidate.is_file():
                return candidate
    return None


def _image_to_float(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def load_mesh_asset(
    path: str | Path,
    up_axis: str = "auto",
    yaw_deg: float | None = None,
    radius: float = FIT_RADIUS,
    texture: str | Path | None = None,
) -> MeshAsset:
    """Load and normalise a mesh file.

    ``up_axis``: which axis of the file points up ("z", "y", "-y", "x", "-z"); "auto" uses
    ``KNOWN_ORIENTATIONS`` for the shared test meshes and +Y (the OBJ/glTF habit) otherwise.
    ``yaw_deg`` turns the model about +Z afterwards (to face +X). ``texture`` overrides the image;
    when the file names none, ``<stem>_texture.png`` beside it is used for UV-mapped meshes.
    """
    import trimesh
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise UserError(f"mesh file not found: {path}")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise UserError(f"unsupported mesh format {path.suffix!r} (use one of {', '.join(MESH_SUFFIXES)})")
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types for malformed files
        raise UserError(f"cannot read mesh {path}: {exc}") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise UserError(f"{path} contains no triangles")

    known = KNOWN_ORIENTATIONS.get(path.stem.lower())
    if up_axis == "auto":
        up_axis = known[0] if known else "y"
        if yaw_deg is None:
            yaw_deg = known[1] if known else 0.0
    if up_axis not in _UP_ROTATIONS:
        raise UserError(f"up_axis must be one of {['auto', *_UP_ROTATIONS]}, got {up_axis!r}")
    yaw = np.radians(yaw_deg or 0.0)
    rot_z = np.array([[np.cos(yaw), -np.sin(yaw), 0.0], [np.sin(yaw), np.cos(yaw), 0.0], [0.0, 0.0, 1.0]])
    rot = rot_z @ _UP_ROTATIONS[up_axis]
    verts = np.asarray(mesh.vertices, dtype=np.float64) @ rot.T
    lo, hi = verts.min(0), verts.max(0)
    centre = (lo + hi) / 2
    extent = np.linalg.norm(verts - centre, axis=1).max()
    if not np.isfinite(extent) or extent <= 0:
        raise UserError(f"{path} has degenerate geometry")
    scale = radius / extent
    transform = np.eye(4)
    transform[:3, :3] = scale * rot
    transform[:3, 3] = -scale * centre
    normalised = trimesh.Trimesh(vertices=(verts - centre) * scale, faces=np.asarray(mesh.faces), process=False)

    asset = MeshAsset(normalised, path.stem.replace("_", " ").replace("-", " "), path, transform)
    visual = mesh.visual
    uv = getattr(visual, "uv", None)
    if uv is not None and len(uv) == len(mesh.vertices):
        image_path = Path(texture) if texture is not None else _find_texture(path)
        image = getattr(getattr(visual, "material", None), "image", None)
        if image_path is not None:
            if not image_path.is_file():
                raise UserError(f"texture file not found: {image_path}")
            image = Image.open(image_path)
        if image is not None:
            asset.texture = _image_to_float(image)
            asset.uv = np.asarray(uv, dtype=np.float64)
    if asset.texture is None and visual is not None:
        kind = getattr(visual, "kind", None)
        material = getattr(visual, "material", None)
        gltf_colors = None
        if kind != "vertex" and path.suffix.lower() in (".glb", ".gltf"):  # COLOR_0 under a material
            from ..export.writers import gltf_vertex_colors

            gltf_colors = gltf_vertex_colors(path, len(mesh.vertices))
        if gltf_colors is not None:
            asset.vertex_colors = gltf_colors[:, :3].astype(np.float32) / 255.0
        elif kind == "vertex":
            asset.vertex_colors = np.asarray(visual.vertex_colors, dtype=np.float32)[:, :3] / 255.0
        elif kind == "face":
            asset.face_colors = np.asarray(visual.face_colors, dtype=np.float32)[:, :3] / 255.0
        elif material is not None and getattr(material, "main_color", None) is not None:
            colour = np.asarray(material.main_color[:3], dtype=np.float32) / 255.0
            asset.face_colors = np.tile(colour, (len(mesh.faces), 1))
    return asset


def _sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:  # [N, 2] -> [N, 3], bilinear, wrapping
    h, w = texture.shape[:2]
    x = (uv[:, 0] % 1.0) * w - 0.5
    y = (1.0 - uv[:, 1] % 1.0) * h - 0.5  # v grows upwards, rows downwards
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, x1 = x0 % w, (x0 + 1) % w
    y0, y1 = np.clip(y0, 0, h - 1), np.clip(y0 + 1, 0, h - 1)
    top = texture[y0, x0] * (1 - fx) + texture[y0, x1] * fx
    bottom = texture[y1, x0] * (1 - fx) + texture[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _hit_albedo(asset: MeshAsset, tri: np.ndarray, bary: np.ndarray) -> np.ndarray:  # [N, 3]
    faces = asset.mesh.faces[tri]  # [N, 3] vertex ids
    if asset.texture is not None:
        uv = (asset.uv[faces] * bary[..., None]).sum(1)
        return _sample_texture(asset.texture, uv)
    if asset.vertex_colors is not None:
        return (asset.vertex_colors[faces] * bary[..., None]).sum(1)
    if asset.face_colors is not None:
        return asset.face_colors[tri]
    return np.tile(np.asarray(FLAT_GREY, dtype=np.float32), (len(tri), 1))


@torch.no_grad()
def render_mesh(
    asset: MeshAsset,
    cameras: Cameras,
    light_dir: Sequence[float] | Tensor | None = None,
    background: Sequence[float] | Tensor = (1.0, 1.0, 1.0),
    ambient: float = 0.3,
    supersample: int = 1,
    smooth: bool = True,
) -> dict[str, Tensor]:
    """Ray-cast a mesh; same outputs and conventions as ``render_scene``. Normals face the camera
    (meshes with open or flipped faces still shade sensibly); ``smooth`` interpolates vertex
    normals instead of using flat face normals."""
    import trimesh

    cams = Cameras(cameras.c2w, cameras.fov_y, cameras.width * supersample, cameras.height * supersample)
    origins, dirs = cams.generate_rays()  # [B, H, W, 3]
    shape = origins.shape[:-1]
    o = origins.reshape(-1, 3).double().cpu().numpy()
    d = dirs.reshape(-1, 3).double().cpu().numpy()
    n = o.shape[0]
    # Only rays that meet the bounding ball can hit the mesh.
    bound = float(np.linalg.norm(asset.mesh.vertices, axis=1).max()) + 1e-3
    b = (o * d).sum(1)
    candidates = np.nonzero(b * b - ((o * o).sum(1) - bound**2) > 0)[0]
    t = np.zeros(n)
    hit = np.zeros(n, dtype=bool)
    albedo = np.zeros((n, 3))
    normals = np.zeros((n, 3))
    if candidates.size:
        tri, ray, loc = asset.mesh.ray.intersects_id(
            o[candidates], d[candidates], multiple_hits=False, return_locations=True
        )
        if len(ray):
            rows = candidates[ray]
            hit[rows] = True
            t[rows] = ((loc - o[rows]) * d[rows]).sum(1)
            bary = trimesh.triangles.points_to_barycentric(asset.mesh.triangles[tri], loc)
            bary = np.clip(bary, 0.0, 1.0)
            bary /= bary.sum(1, keepdims=True)
            albedo[rows] = _hit_albedo(asset, tri, bary)
            if smooth:
                nrm = (asset.mesh.vertex_normals[asset.mesh.faces[tri]] * bary[..., None]).sum(1)
            else:
                nrm = asset.mesh.face_normals[tri]
            nrm /= np.linalg.norm(nrm, axis=1, keepdims=True).clip(1e-12)
            flip = (nrm * d[rows]).sum(1) > 0
            nrm[flip] *= -1.0
            normals[rows] = nrm
    like = dirs
    out = composite(
        torch.from_numpy(hit).to(like.device).reshape(shape),
        torch.from_numpy(t).to(like).reshape(shape),
        torch.from_numpy(albedo).to(like).reshape(*shape, 3),
        torch.from_numpy(normals).to(like).reshape(*shape, 3),
        _light_dirs(cameras, light_dir),
        ambient,
        background,
    )
    return downsample(out, supersample)
