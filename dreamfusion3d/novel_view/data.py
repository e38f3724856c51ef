"""Pairs of views of one object, read from datasets in the NeRF-synthetic layout.

``dreamfusion3d make-dataset`` writes ``<root>/<split>/<object>/transforms_*.json`` + PNGs; every
object's views (all of its per-object splits) are loaded once, composited over white, resized to
the model resolution and kept in memory as ``[O, V, 3, H, W]``. Training pairs come from a
counter-based sampler: the global batch of step ``k`` is a pure function of ``(seed, k)``, and
rank ``r`` of ``w`` takes rows ``r::w`` of it. That is a DistributedSampler without state, so
``--resume`` continues the exact data order and every rank sees different pairs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..utils.errors import UserError
from ..utils.io import atomic_path
from ..utils.logging import info, progress
from .pose import spherical_of

VIEW_SPLITS = ("train", "val", "test")


@dataclass
class ViewSet:
    """All views of a list of objects at one resolution."""

    images: Tensor  # [O, V, 3, H, W] in [0, 1], over white
    spherical: Tensor  # [O, V, 3] (azimuth_deg, elevation_deg, radius)
    fov_y_deg: float
    names: list[str]

    @property
    def num_objects(self) -> int:
        return self.images.shape[0]

    @property
    def num_views(self) -> int:
        return self.images.shape[1]


def world_dataset_api():
    """(load_nerf_synthetic, list_objects) from the world package (API.md contract)."""
    try:
        from ..world import list_objects, load_nerf_synthetic
    except ImportError:  # older trees export them only from the submodule
        from ..world.dataset import list_objects, load_nerf_synthetic
    return load_nerf_synthetic, list_objects


def composite_white(rgba: Tensor) -> Tensor:  # [N, H, W, 4] -> [N, 3, H, W]
    rgb, alpha = rgba[..., :3], rgba[..., 3:4]
    return (rgb * alpha + (1.0 - alpha)).permute(0, 3, 1, 2).contiguous()


def resize(images: Tensor, size: int) -> Tensor:  # [N, 3, h, w] -> [N, 3, size, size]
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    if images.shape[-1] % size == 0 and images.shape[-2] % size == 0:
        return F.interpolate(images, size=(size, size), mode="area")
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def load_object_views(folder: Path, resolution: int) -> tuple[Tensor, Tensor, float]:
    """(images [V,3,R,R], spherical [V,3], fov_y_deg) of every view of one object folder."""
    load_nerf_synthetic, _ = world_dataset_api()
    images, sph, fov = [], [], None
    for split in VIEW_SPLITS:
        if not (folder / f"transforms_{split}.json").is_file():
            continue
        data = load_nerf_synthetic(folder, split=split)
        images.append(resize(composite_white(data.images.float()), resolution))
        sph.append(spherical_of(data.cameras).float())
        fov = float(torch.rad2deg(data.cameras.fov_y[0]))
    if not images:
        raise UserError(f"{folder} has no transforms_{{train,val,test}}.json")
    return torch.cat(images), torch.cat(sph), fov  # type: ignore[return-value]


def load_view_set(root: str | Path, split: str, resolution: int, max_objects: int | None = None,
                  cache_dir: Path | None = None) -> ViewSet:
    """Load (and cache as safetensors in ``cache_dir``) every object of an object-level split."""
    _, list_objects = world_dataset_api()
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"dataset folder {root} does not exist (make one with `dreamfusion3d make-dataset`)")
    objects = list_objects(root, split)
    if max_objects is not None:
        objects = objects[:max_objects]
    if not objects:
        raise UserError(f"{root} has no objects in split {split!r}")
    key = hashlib.sha1(json.dumps([str(root.resolve()), split, resolution, [p.name for p in objects]]).encode())
    cache = cache_dir / f"views_{split}_{resolution}px_{key.hexdigest()[:10]}.safetensors" if cache_dir else None
    if cache is not None and cache.is_file():
        tensors = load_file(str(cache))
        meta = json.loads(cache.with_suffix(".json").read_text())
        return ViewSet(tensors["images"].float(), tensors["spherical"], meta["fov_y_deg"], meta["names"])
    imgs, sphs, fov = [], [], 40.0
    for folder in progress(objects, desc=f"loading {split} views", unit="obj", leave=False):
        im, sp, fov = load_object_views(Path(folder), resolution)
        imgs.append(im)
        sphs.append(sp)
    views = min(im.shape[0] for im in imgs)
    # stored in fp16 (the cache's precision) whether or not it came from the cache, so a resumed
    # run sees bit-identical data
    images = torch.stack([im[:views] for im in imgs]).half().float()
    view_set = ViewSet(images, torch.stack([sp[:views] for sp in sphs]), fov,
                       [Path(p).name for p in objects])
    info(f"{split}: {view_set.num_objects} objects x {views} views at {resolution}px from {root}")
    if cache is not None:
        with atomic_path(cache) as tmp:
            save_file({"images": view_set.images.half().contiguous(), "spherical": view_set.spherical.contiguous()},
                      str(tmp))
        cache.with_suffix(".json").write_text(json.dumps({"fov_y_deg": fov, "names": view_set.names}))
    return view_set


def object_fraction(images: Tensor, threshold: float = 0.04) -> float:
    """Median size of the non-white bounding box as a fraction of the side ([N, 3, H, W])."""
    mask = (1.0 - images).abs().amax(dim=1) > threshold  # [N, H, W]
    sizes = []
    for m in mask:
        rows, cols = torch.nonzero(m.any(1)).flatten(), torch.nonzero(m.any(0)).flatten()
        if rows.numel() == 0:
            continue
        side = max(int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1))
        sizes.append(side / m.shape[-1])
    return float(torch.tensor(sizes).median()) if sizes else 0.5


def step_seed(seed: int, step: int, stream: int) -> int:
    """A deterministic 63-bit seed per (run seed, step, stream); the same in every process."""
    h = hashlib.blake2b(f"{seed}:{step}:{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFF_FFFF_FFFF_FFFF


def pair_indices(step: int, seed: int, global_batch: int, num_objects: int, num_views: int,
                 rank: int = 0, world_size: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """(object, source view, target view) indices ``[B_local]`` of one step's shard.

    Target differs from source (a random other view of the same object).
    """
    g = torch.Generator().manual_seed(step_seed(seed, step, 0))
    obj = torch.randint(num_objects, (global_batch,), generator=g)
    src = torch.randint(num_views, (global_batch,), generator=g)
    tgt = (src + torch.randint(1, num_views, (global_batch,), generator=g)) % num_views
    return obj[rank::world_size], src[rank::world_size], tgt[rank::world_size]


def pair_batch(views: ViewSet, obj: Tensor, src: Tensor, tgt: Tensor, device: torch.device
               ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(source [B,3,H,W], target [B,3,H,W] in [-1,1], src_sph [B,3], tgt_sph [B,3])."""
    source = views.images[obj, src].to(device).float() * 2 - 1
    target = views.images[obj, tgt].to(device).float() * 2 - 1
    return source, target, views.spherical[obj, src].to(device), views.spherical[obj, tgt].to(device)
