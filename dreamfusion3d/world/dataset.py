"""Multi-view datasets in the NeRF-synthetic layout, written from the procedural world (and real
meshes) and read back from it or from the public NeRF-synthetic scenes.

Layout written by ``make-dataset`` (object-level split: a test object never appears in training)::

    <out>/config.yaml            resolved config
    <out>/splits.json            {"train": [ids], "val": [ids], "test": [ids]}
    <out>/<split>/<id>/meta.json shape, colours, captions, seed, ...
    <out>/<split>/<id>/transforms_{train,val,test}.json   camera_angle_x + frames
    <out>/<split>/<id>/{train,val,test}/r_000.png           RGBA, straight alpha

Inside every object, views are split too (``views`` train + ``val_views`` + ``test_views``)
so that per-object reconstruction has held-out views. ``transform_matrix`` is the OpenGL/
NeRF-synthetic camera-to-world matrix; ``file_path`` has no extension, like the public data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..cameras import CameraSamplerConfig, Cameras, cartesian_to_spherical, sample_cameras, view_labels
from ..utils.config import save_config
from ..utils.errors import UserError
from ..utils.outdir import check_output_folder, output_folder
from ..utils.io import write_json_atomic
from ..utils.logging import info, progress
from .captions import all_captions, caption
from ..utils.images import save_png, straight_rgba
from .mesh import load_mesh_asset, render_mesh
from .render import render_scene
from .recipes import random_scene

VIEW_SPLITS = ("train", "val", "test")


def _default_dataset_cameras() -> CameraSamplerConfig:
    return CameraSamplerConfig(radius_range=(2.6, 3.2), elevation_range=(-10.0, 70.0), fov_range=(40.0, 40.0))


@dataclass
class MakeDatasetConfig:
    """Render a multi-view dataset of procedural objects (and optional real meshes) in the
    NeRF-synthetic layout, with captions and an object-level train/val/test split."""

    out: Path = Path("outputs/world_dataset")
    """Output folder (must be empty or absent unless --overwrite)."""
    num_objects: int = 50
    """Number of procedural objects."""
    views: int = 24
    """Training views per object."""
    val_views: int = 4
    """Held-out validation views per object."""
    test_views: int = 4
    """Held-out test views per object."""
    resolution: int = 64
    """Image width and height in pixels."""
    seed: int = 0
    """Seed for scenes, cameras and the split."""
    cameras: CameraSamplerConfig = field(default_factory=_default_dataset_cameras)
    """Camera ranges (one field of view is drawn per object from fov_range)."""
    val_fraction: float = 0.1
    """Fraction of procedural objects in the val split."""
    test_fraction: float = 0.1
    """Fraction of procedural objects in the test split."""
    compositions: bool = True
    """Include two-part compositions and objects with a distinct front."""
    meshes: tuple[Path, ...] = ()
    """Mesh files (OBJ/PLY/GLB) rendered as extra objects."""
    mesh_split: str = "test"
    """Split that receives the mesh objects."""
    up_axis: str = "auto"
    """Up axis of the mesh files (auto, z, y, -y, x, -z)."""
    supersample: int = 2
    """Anti-aliasing: rays per pixel along each axis (1 = none, alpha exactly 0/1)."""
    threads: int = 1
    """torch CPU threads (1 is fastest for these small kernels, and robust on a shared CPU)."""
    overwrite: bool = False
    """Replace an existing non-empty output folder."""


@dataclass
class MultiViewData:
    """Posed RGBA images of one object."""

    images: Tensor  # [N, H, W, 4] float in [0, 1], straight alpha
    cameras: Cameras
    metadata: dict[str, Any]

    def rgb(self, background=(1.0, 1.0, 1.0)) -> Tensor:  # [N, H, W, 3]
        from ..utils.images import over_background

        return over_background(self.images, background)


# ----------------------------------------------------------------------------- writing


def _frames_json(cams: Cameras, split: str, captions: list[str], start: int = 0) -> dict[str, Any]:
    az, el, radius = cams.spherical()
    labels = view_labels(az, el)
    fov_x = 2.0 * math.atan(0.5 * cams.width / float(cams.focal[0]))
    frames = []
    for i in range(cams.batch_size):
        frames.append({
            "file_path": f"./{split}/r_{start + i:03d}",
            "transform_matrix": cams.c2w[i].tolist(),
            "azimuth": round(float(az[i]), 4),
            "elevation": round(float(el[i]), 4),
            "radius": round(float(radius[i]), 4),
            "view": labels[i],
            "caption": captions[i] if captions else None,
        })
    return {"camera_angle_x": fov_x, "frames": frames}


def _object_cameras(config: MakeDatasetConfig, seed: int) -> dict[str, Cameras]:
    gen = torch.Generator().manual_seed(seed)
    lo, hi = config.cameras.fov_range
    fov = lo + (hi - lo) * float(torch.rand(1, generator=gen))
    cam_cfg = CameraSamplerConfig(**{**vars(config.cameras), "fov_range": (fov, fov)})
    counts = {"train": config.views, "val": config.val_views, "test": config.test_views}
    cams = {}
    for split, n in counts.items():
        if n > 0:
            cams[split], _, _ = sample_cameras(cam_cfg, n, config.resolution, generator=gen)
    return cams


def write_object(folder: Path, render_fn, cams: dict[str, Cameras], meta: dict[str, Any], scene=None,
                 supersample: int = 1, seed: int = 0) -> None:
    """Render one object's view splits into ``folder`` (NeRF-synthetic layout)."""
    gen = np.random.default_rng(seed)
    for split, c in cams.items():
        out = render_fn(c, background=(0.0, 0.0, 0.0), supersample=supersample)
        rgba = straight_rgba(out["rgb"], out["alpha"])  # [B, H, W, 4]
        if scene is not None:
            captions = [caption(scene, v, gen) for v in c.view_labels()]
        else:
            captions = [f"{meta['caption']}, {v} view" for v in c.view_labels()]
        for i in range(c.batch_size):
            save_png(folder / split / f"r_{i:03d}.png", rgba[i])
        write_json_atomic(folder / f"transforms_{split}.json", _frames_json(c, split, captions))
    write_json_atomic(folder / "meta.json", meta)


def _check_config(config: MakeDatasetConfig) -> None:
    if config.num_objects < 0 or config.views < 1 or config.val_views < 0 or config.test_views < 0:
        raise UserError("need --num-objects >= 0, --views >= 1, --val-views/--test-views >= 0")
    if not 8 <= config.resolution <= 1024:
        raise UserError(f"--resolution must be in [8, 1024], got {config.resolution}")
    if not (0 <= config.val_fraction < 1 and 0 <= config.test_fraction < 1
            and config.val_fraction + config.test_fraction < 1):
        raise UserError("--val-fraction and --test-fraction must be in [0, 1) with a sum below 1")
    if config.mesh_split not in VIEW_SPLITS:
        raise UserError(f"--mesh-split must be one of {VIEW_SPLITS}")
    if config.supersample < 1:
        raise UserError("--supersample must be >= 1")
    if config.num_objects == 0 and not config.meshes:
        raise UserError("nothing to render: --num-objects is 0 and no --meshes given")
    for path in config.meshes:
        if not Path(path).is_file():
            raise UserError(f"mesh file not found: {path}")
    check_output_folder(config.out, overwrite=config.overwrite)


def object_split(num_objects: int, val_fraction: float, test_fraction: float, seed: int) -> list[str]:
    """Split name per object index: a seeded shuffle, then test, val, train."""
    order = np.random.default_rng([seed, 7]).permutation(num_objects)
    n_test = int(round(num_objects * test_fraction))
    n_val = int(round(num_objects * val_fraction))
    split = ["train"] * num_objects
    for rank, idx in enumerate(order):
        split[idx] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return split


def write_dataset(config: MakeDatasetConfig) -> Path:
    """Render the whole dataset into a staging folder, then swap it into place (a failed or
    interrupted run leaves any earlier dataset untouched: ``utils.outdir``)."""
    _check_config(config)
    out = Path(config.out).resolve()
    with output_folder(out, overwrite=config.overwrite, staged=True) as tmp:
        splits: dict[str, list[str]] = {s: [] for s in VIEW_SPLITS}
        assignment = object_split(config.num_objects, config.val_fraction, config.test_fraction, config.seed)
        jobs = [("scene", i) for i in range(config.num_objects)] + [("mesh", i) for i in range(len(config.meshes))]
        for kind, i in progress(jobs, desc="objects", unit="obj"):
            obj_seed = int(np.random.default_rng([config.seed, i, kind == "mesh"]).integers(2**31 - 1))
            cams = _object_cameras(config, obj_seed)
            if kind == "scene":
                scene = random_scene(np.random.default_rng([config.seed, i]), compositions=config.compositions)
                object_id, split = f"obj_{i:05d}", assignment[i]
                meta = {
                    **scene.metadata(),
                    "caption": caption(scene),
                    "captions": all_captions(scene),
                    "paraphrases": all_captions(scene, paraphrase=True),
                }
                render_fn = lambda c, **kw: render_scene(scene, c, **kw)  # noqa: E731
            else:
                asset = load_mesh_asset(config.meshes[i], up_axis=config.up_axis)
                object_id, split = f"mesh_{i:02d}_{Path(config.meshes[i]).stem}", config.mesh_split
                scene = None
                meta = {**asset.metadata(), "caption": f"a {asset.name}", "captions": [f"a {asset.name}"]}
                render_fn = lambda c, **kw: render_mesh(asset, c, **kw)  # noqa: E731
            meta.update({"object_id": object_id, "split": split, "object_seed": obj_seed,
                         "resolution": config.resolution})
            write_object(tmp / split / object_id, render_fn, cams, meta, scene, config.supersample, obj_seed)
            splits[split].append(object_id)
        write_json_atomic(tmp / "splits.json", splits)
        save_config(config, tmp / "config.yaml", command="make-dataset")
    return out


def run(config: MakeDatasetConfig) -> None:
    """``dreamfusion3d make-dataset``."""
    import time

    start = time.perf_counter()
    _check_config(config)  # before the first stage line
    torch.set_num_threads(max(1, config.threads))
    info(f"rendering {config.num_objects} objects + {len(config.meshes)} meshes, "
         f"{config.views}+{config.val_views}+{config.test_views} views at {config.resolution} px")
    out = write_dataset(config)
    counts = {k: len(v) for k, v in json.loads((out / "splits.json").read_text()).items()}
    info(f"wrote {out} ({counts}) in {time.perf_counter() - start:.1f} s")


# ----------------------------------------------------------------------------- reading


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"missing file: {path}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None


def _resolve_image(root: Path, file_path: str) -> Path:
    path = (root / file_path).resolve()
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        for suffix in (".png", ".jpg", ".jpeg"):
            if path.with_name(path.name + suffix).is_file():
                return path.with_name(path.name + suffix)
    if not path.is_file():
        raise UserError(f"image listed in transforms not found: {path}")
    return path


def load_nerf_synthetic(root: str | Path, split: str = "train", resolution: int | None = None) -> MultiViewData:
    """Read ``root/transforms_<split>.json`` and its images (this project's datasets and the
    public NeRF-synthetic scenes). ``resolution`` resizes square images (area averaging of
    premultiplied colour, so edges don't pick up the background)."""
    import imageio.v3 as iio

    root = Path(root)
    if not root.is_dir():
        raise UserError(f"dataset folder not found: {root}")
    data = _read_json(root / f"transforms_{split}.json")
    frames = data.get("frames") or []
    if not frames:
        raise UserError(f"{root / f'transforms_{split}.json'} lists no frames")
    images, c2w, fovs, extras = [], [], [], []
    for frame in frames:
        pixels = iio.imread(_resolve_image(root, frame["file_path"]))
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, -1)
        scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
        img = torch.from_numpy(pixels.astype(np.float32) / scale)
        if img.shape[-1] == 3:
            img = torch.cat([img, torch.ones_like(img[..., :1])], -1)
        images.append(img[..., :4])
        c2w.append(torch.tensor(frame["transform_matrix"], dtype=torch.float32))
        fov_x = float(frame.get("camera_angle_x", data.get("camera_angle_x", 0.0)))
        h, w = img.shape[:2]
        focal = 0.5 * w / math.tan(0.5 * fov_x)
        fovs.append(2.0 * math.atan(0.5 * h / focal))
        extras.append({k: v for k, v in frame.items() if k != "transform_matrix"})
    shapes = {tuple(i.shape) for i in images}
    if len(shapes) != 1:
        raise UserError(f"images in {root} have different sizes: {sorted(shapes)}")
    stack = torch.stack(images)  # [N, H, W, 4]
    height, width = stack.shape[1:3]
    if resolution is not None and (height, width) != (resolution, resolution):
        premult = torch.cat([stack[..., :3] * stack[..., 3:], stack[..., 3:]], -1).permute(0, 3, 1, 2)
        small = torch.nn.functional.interpolate(premult, size=(resolution, resolution), mode="area")
        small = small.permute(0, 2, 3, 1)
        alpha = small[..., 3:]
        stack = torch.cat([torch.where(alpha > 0, small[..., :3] / alpha.clamp_min(1e-8), 0.0), alpha], -1)
        height = width = resolution
    cameras = Cameras(torch.stack(c2w), torch.tensor(fovs, dtype=torch.float32), width, height)
    meta = _read_json(root / "meta.json") if (root / "meta.json").is_file() else {}
    meta = {**meta, "root": str(root), "split": split, "frames": extras}
    return MultiViewData(stack.clamp(0.0, 1.0), cameras, meta)


def list_objects(root: str | Path, split: str = "train") -> list[Path]:
    """Object folders of one object-level split of a ``make-dataset`` output."""
    root = Path(root)
    splits = _read_json(root / "splits.json")
    if split not in splits:
        raise UserError(f"split {split!r} not in {root / 'splits.json'} (has {sorted(splits)})")
    return [root / split / object_id for object_id in splits[split]]


def frame_spherical(data: MultiViewData) -> tuple[Tensor, Tensor, Tensor]:
    """(azimuth, elevation, radius) of the cameras; convenience for view-conditioned models."""
    return cartesian_to_spherical(data.cameras.positions)
