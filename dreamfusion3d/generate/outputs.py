"""What a generate run leaves behind: meshes, a turntable video (and GIF) and progress grids."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..cameras import orbit_cameras, turntable_cameras
from ..utils.images import save_png, save_video
from ..utils.logging import info, warn

if TYPE_CHECKING:
    from .config import GenerateConfig


@torch.no_grad()
def render_views(renderer, cameras, shading: str = "albedo", chunk: int = 4, with_alpha: bool = False):
    """uint8 frames ``[N,H,W,3]`` (rendered in small batches to bound memory, as the representation
    displays itself: :meth:`~dreamfusion3d.representations.Representation.for_display`); with
    ``with_alpha`` also the float opacity ``[N,H,W]``."""
    frames, alphas = [], []
    with renderer.for_display():
        for i in range(0, cameras.batch_size, chunk):
            cams = cameras[i : i + chunk]
            lights = cams.positions * 1.5
            out = renderer.render(cams, shading=shading, light_positions=lights, ambient=0.3)
            frames.append((out["rgb"].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy())
            alphas.append(out["opacity"][..., 0].float().cpu().numpy())
    if with_alpha:
        return np.concatenate(frames), np.concatenate(alphas)
    return np.concatenate(frames)


def turntable_frames(renderer, cfg: "GenerateConfig", shading: str = "lambertian", with_alpha: bool = False):
    o = cfg.output
    radius = float(np.mean(cfg.cameras.radius_range))
    fov = float(np.mean(cfg.cameras.fov_range))
    cams = turntable_cameras(o.video_frames, o.video_elevation, radius, fov, o.video_resolution).to(cfg.device)
    return render_views(renderer, cams, shading, with_alpha=with_alpha)


def speckle_fraction(alpha: np.ndarray, margin_px: int = 2, visible: float = 0.05) -> np.ndarray:  # [N,H,W] -> [N]
    """Per frame, the share of pixels with opacity > ``visible`` farther than ``margin_px`` from
    the object's silhouette (opacity > 0.5): floaters and haze, which a clean object has none of."""
    from scipy.ndimage import binary_dilation

    out = []
    for a in alpha:
        near = binary_dilation(a > 0.5, iterations=margin_px) if (a > 0.5).any() else np.zeros_like(a, bool)
        out.append(float(((a > visible) & ~near).mean()))
    return np.asarray(out)


def mesh_figures(mesh) -> dict:
    """Face count, closedness, connected pieces and, for a closed mesh, its genus (handles and
    tunnels in all: ``components − χ/2``; 0 for a sphere, cube or cone, 1 for a torus; more means
    tunnels the prompt never asked for) of an exported mesh (for metrics.json)."""
    pieces, closed = int(len(mesh.split(only_watertight=False))), bool(mesh.is_watertight)
    return {"faces": int(len(mesh.faces)), "vertices": int(len(mesh.vertices)), "watertight": closed,
            "components": pieces, "genus": pieces - int(mesh.euler_number) // 2 if closed else None}


def write_video(frames: np.ndarray, path: Path, fps: int) -> None:
    save_video(path, frames, fps)


def save_preview(renderer, path: Path, cfg: "GenerateConfig") -> None:
    """A row of albedo views and a row of textureless views from four azimuths."""
    radius = float(np.mean(cfg.cameras.radius_range))
    fov = float(np.mean(cfg.cameras.fov_range))
    cams = orbit_cameras([0, 90, 180, 270], [20.0], radius, fov, max(64, cfg.resolution)).to(cfg.device)
    rows = [np.concatenate(list(render_views(renderer, cams, s)), axis=1) for s in ("albedo", "textureless")]
    save_png(path, np.concatenate(rows, axis=0))


def export_outputs(renderer, out: Path, cfg: "GenerateConfig") -> tuple[list[str], dict]:
    """Meshes + turntable; returns the written file names and the mesh / turntable figures (the
    mesh's faces, closedness, texture mode and size, bake seconds)."""
    from ..export import apply_texture, extract_mesh
    from ..export.writers import export_all
    from ..utils.errors import UserError

    written: list[str] = []
    figures: dict = {}
    o = cfg.output
    info("extracting the mesh")
    try:
        f = renderer.export_fields()
        mesh = extract_mesh(f.field_fn, -1.0, 1.0, o.mesh_resolution, "auto", color_fn=f.color_fn,
                            field_type=f.field_type, decimate_to=o.mesh_faces or None, device=cfg.device)
        figures["mesh"] = mesh_figures(mesh)  # of the closed mesh, before UV seams split it
        mesh, texture_stats = apply_texture(mesh, f.color_fn, o.texture, o.texture_size, device=cfg.device)
        figures["mesh"].update(texture_stats)
        written += [p.name for p in export_all(mesh, out, o.mesh_formats, name="mesh")]
    except UserError as exc:  # an empty field: keep the video, say why there is no mesh
        warn(f"no mesh written: {exc}")
    info("rendering the turntable")
    frames, alpha = turntable_frames(renderer, cfg, with_alpha=True)
    speckle = speckle_fraction(alpha)
    figures["turntable"] = {"speckle_max": float(speckle.max()), "speckle_mean": float(speckle.mean())}
    write_video(frames, out / "turntable.mp4", o.video_fps)
    written.append("turntable.mp4")
    if o.gif:
        write_video(frames, out / "turntable.gif", o.video_fps)
        written.append("turntable.gif")
    return written, figures
