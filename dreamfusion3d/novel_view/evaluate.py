"""``dreamfusion3d evaluate-novel-view``: how close are the generated views to the truth?

For held-out world objects (an object-level split never trained on) and for the real meshes in
``../shared/data/meshes`` rendered through the world's mesh path, one view is the input and
``num_targets`` other views are generated. Reported, per set: PSNR and SSIM (scikit-image)
against the ground truth for (a) copying the input view, (b) the model with single-view
conditioning, (c) the model with stochastic conditioning (3DiM); and a consistency figure: PSNR
between the same target view generated twice, in a different order and with a different seed.
Writes ``novel_view_eval.json``, ``novel_view_eval.md`` and ``novel_view_grid.png``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ..guidance.loading import resolve_pixel_dtype
from ..utils.config import save_config
from ..utils.device import resolve_device
from ..utils.errors import UserError
from ..utils.images import psnr as image_psnr
from ..utils.io import write_json_atomic, write_text_atomic
from ..utils.logging import info, warn
from ..utils.outdir import check_output_folder, output_folder
from ..utils.validate import check_model_folder
from .data import ViewSet, load_view_set, resize
from .model import NovelViewModel
from .pose import angular_distance_deg
from .sampling import GUIDANCE_SCALE, INPUT_WEIGHT, generation_order, sample_views
from .preview import save_grid

DEFAULT_MESHES = Path(__file__).resolve().parents[3] / "shared" / "data" / "meshes"
PSNR_CAP = 100.0  # identical images have infinite PSNR; JSON needs a number


@dataclass
class EvaluateNovelViewConfig:
    """Score novel views against ground truth on held-out objects, next to baselines."""

    data: Path = Path("outputs/datasets/world32")
    """Dataset root (make-dataset layout); its object-level ``split`` is evaluated."""
    split: str = "test"
    """Object-level split of held-out objects (never trained on)."""
    model: Path | None = None
    """Model folder (None = the shipped weights)."""
    out: Path = Path("docs")
    """Folder for novel_view_eval.json / .md and novel_view_grid.png."""
    overwrite: bool = False
    """Replace earlier novel_view_eval.* / novel_view_grid.png files in --out."""
    max_objects: int = 24
    """Held-out objects to evaluate."""
    num_targets: int = 6
    """Generated views per object (besides the input)."""
    steps: int = 50
    """DDIM steps (the novel-view default)."""
    guidance_scale: float = GUIDANCE_SCALE
    """Classifier-free guidance scale (the novel-view default)."""
    input_weight: float | None = INPUT_WEIGHT
    """Stochastic conditioning: share of steps conditioned on the input (None = uniform, as 3DiM)."""
    seed: int = 0
    """Sampling seed."""
    meshes: Path | None = None
    """Folder of real meshes (None = ../shared/data/meshes beside the repo; skipped when absent)."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """UNet precision: auto = bfloat16 on a CPU with AMX (bfloat16 matrix units), else float32."""
    device: str = "auto"
    """auto (cuda:LOCAL_RANK if CUDA is available, else cpu), cpu, cuda, cuda:N, mps."""
    consistency_objects: int = 8
    """Objects generated a second time (reverse order, other seed) for the consistency figure."""
    grid_objects: int = 4
    """Objects shown in the picture grid."""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return image_psnr(a, b, cap=PSNR_CAP)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=-1, data_range=1.0))


def _np(img: Tensor) -> np.ndarray:  # [3, H, W] -> [H, W, 3] float64
    return img.detach().permute(1, 2, 0).double().clamp(0, 1).cpu().numpy()


def score(pred: Tensor, truth: Tensor) -> dict[str, float]:
    """Mean PSNR/SSIM over ``[B, K, 3, H, W]`` pairs."""
    p = [psnr(_np(truth[b, k]), _np(pred[b, k])) for b in range(pred.shape[0]) for k in range(pred.shape[1])]
    s = [ssim(_np(truth[b, k]), _np(pred[b, k])) for b in range(pred.shape[0]) for k in range(pred.shape[1])]
    return {"psnr": float(np.mean(p)), "ssim": float(np.mean(s)), "n": len(p)}


def choose_views(sph: Tensor, canonical: Tensor, num_targets: int) -> tuple[int, list[int]]:
    """Input = the view nearest the canonical camera; targets = ``num_targets`` others spread by index."""
    dist = angular_distance_deg(canonical.expand_as(sph), sph)
    src = int(dist.argmin())
    others = [i for i in range(sph.shape[0]) if i != src]
    if num_targets >= len(others):
        return src, others
    picks = np.linspace(0, len(others) - 1, num_targets).round().astype(int)
    return src, [others[i] for i in picks]


def input_and_targets(views: ViewSet, model: NovelViewModel, num_targets: int
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per object, the input (the view nearest the model's canonical camera) and up to
    ``num_targets`` targets, as many as every object has: ``source [B,3,H,W]``, ``src_sph [B,3]``,
    ``truth [B,K,3,H,W]``, ``tgt_sph [B,K,3]``."""
    canonical = torch.tensor([model.camera.azimuth, model.camera.elevation, model.camera.radius])
    src_idx, tgt_idx = zip(*(choose_views(views.spherical[o], canonical, num_targets)
                             for o in range(views.num_objects)))
    k = min(len(t) for t in tgt_idx)
    rows, src = torch.arange(views.num_objects), torch.tensor(src_idx)
    tgt = torch.tensor([list(t[:k]) for t in tgt_idx])
    return (views.images[rows, src], views.spherical[rows, src],
            views.images[rows[:, None], tgt], views.spherical[rows[:, None], tgt])


def evaluate_set(model: NovelViewModel, source: Tensor, src_sph: Tensor, truth: Tensor, tgt_sph: Tensor,
                 cfg: EvaluateNovelViewConfig) -> tuple[dict, dict[str, Tensor]]:
    """Scores of the baselines and both samplers on one batch of objects.

    ``source [B,3,H,W]``, ``src_sph [B,3]``, ``truth [B,K,3,H,W]``, ``tgt_sph [B,K,3]``.
    """
    k = tgt_sph.shape[1]
    common = dict(steps=cfg.steps, guidance_scale=cfg.guidance_scale)
    order = generation_order(src_sph[0], tgt_sph[0])
    timings = {}
    t0 = time.time()
    stoch = sample_views(model, source, src_sph, tgt_sph, stochastic=True, order=order, show_progress=True,
                         generator=torch.Generator().manual_seed(cfg.seed), input_weight=cfg.input_weight, **common)
    timings["stochastic_s"] = time.time() - t0
    t0 = time.time()
    single = sample_views(model, source, src_sph, tgt_sph, stochastic=False, order=order, show_progress=True,
                          generator=torch.Generator().manual_seed(cfg.seed), **common)
    timings["single_s"] = time.time() - t0
    # consistency: the same targets again (first objects only), in reverse order with another seed
    c = min(cfg.consistency_objects, source.shape[0])
    again = dict(order=order[::-1], show_progress=True, **common)
    stoch2 = sample_views(model, source[:c], src_sph[:c], tgt_sph[:c], stochastic=True,
                          generator=torch.Generator().manual_seed(cfg.seed + 1), input_weight=cfg.input_weight,
                          **again)
    single2 = sample_views(model, source[:c], src_sph[:c], tgt_sph[:c], stochastic=False,
                           generator=torch.Generator().manual_seed(cfg.seed + 1), **again)
    copy = source[:, None].expand(-1, k, -1, -1, -1)
    result = {
        "copy_input": score(copy, truth),
        "single_view": score(single, truth),
        "stochastic": score(stoch, truth),
        "consistency_psnr": {"stochastic": score(stoch2, stoch[:c])["psnr"],
                             "single_view": score(single2, single[:c])["psnr"], "objects": c},
        "objects": int(source.shape[0]),
        "targets_per_object": int(k),
        "seconds_per_object_stochastic": timings["stochastic_s"] / source.shape[0],
    }
    return result, {"stochastic": stoch, "single": single}


def _mesh_views(folder: Path, model: NovelViewModel, num_targets: int) -> tuple | None:
    """Render every mesh in ``folder`` through the world's mesh path: (names, source, src_sph, truth, tgt_sph)."""
    try:
        from ..world import load_mesh_asset, render_mesh
    except ImportError:
        warn("the world's mesh renderer (load_mesh_asset/render_mesh) is not available: real meshes skipped")
        return None
    from ..cameras import orbit_cameras

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".obj", ".ply", ".glb", ".gltf", ".off", ".stl"))
    if not paths:
        return None
    cam = model.camera
    az = [0.0] + [360.0 * (i + 1) / (num_targets + 1) for i in range(num_targets)]
    el = [cam.elevation] + [cam.elevation + (15.0 if i % 2 else -5.0) for i in range(num_targets)]
    sph = torch.tensor([[a, e, cam.radius] for a, e in zip(az, el)])
    res = model.resolution
    cams = orbit_cameras(sph[:, 0], sph[:, 1], sph[:, 2], cam.fov_y_deg, res * 2)
    names, images = [], []
    for p in paths:
        try:
            out = render_mesh(load_mesh_asset(p), cams)
        except Exception as exc:  # a broken mesh file must not stop the evaluation
            warn(f"mesh {p.name} skipped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        rgb = out["rgb"].float().permute(0, 3, 1, 2)  # [V, 3, 2R, 2R] over white
        images.append(resize(rgb.clamp(0, 1), res))
        names.append(p.stem)
    if not images:
        return None
    imgs = torch.stack(images)  # [M, V, 3, R, R]
    m = imgs.shape[0]
    return names, imgs[:, 0], sph[0].expand(m, 3), imgs[:, 1:], sph[1:].expand(m, -1, -1)


def _md_table(results: dict) -> str:
    lines = ["| set | objects × targets | copy input PSNR / SSIM | single-view PSNR / SSIM | "
             "stochastic conditioning PSNR / SSIM | consistency PSNR stochastic / single |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        c, s1, st, con = r["copy_input"], r["single_view"], r["stochastic"], r["consistency_psnr"]
        lines.append(f"| {name} | {r['objects']} × {r['targets_per_object']} | {c['psnr']:.2f} / {c['ssim']:.3f} | "
                     f"{s1['psnr']:.2f} / {s1['ssim']:.3f} | {st['psnr']:.2f} / {st['ssim']:.3f} | "
                     f"{con['stochastic']:.2f} / {con['single_view']:.2f} |")
    return "\n".join(lines)


EVAL_FILES = ("novel_view_eval.json", "novel_view_eval.md", "novel_view_grid.png", "novel_view_eval_config.yaml")


def run(cfg: EvaluateNovelViewConfig) -> None:
    check_output_folder(cfg.out, overwrite=cfg.overwrite, owns=EVAL_FILES)
    if cfg.model is not None:
        check_model_folder(cfg.model, "--model")
    if cfg.num_targets < 1 or cfg.max_objects < 1 or cfg.steps < 1:
        raise UserError("--num-targets, --max-objects and --steps must be >= 1")
    if cfg.input_weight is not None and not 0.0 <= cfg.input_weight <= 1.0:
        raise UserError(f"--input-weight must lie in [0, 1], got {cfg.input_weight}")
    device = resolve_device(cfg.device)
    model = NovelViewModel.from_pretrained(cfg.model, device=device, dtype=resolve_pixel_dtype(cfg.dtype, device))
    res = model.resolution
    views = load_view_set(cfg.data, cfg.split, res, cfg.max_objects)
    source, src_sph, truth, tgt_sph = (x.to(device) for x in input_and_targets(views, model, cfg.num_targets))
    k = tgt_sph.shape[1]
    info(f"evaluating {views.num_objects} held-out objects ({cfg.split}) x {k} target views, {cfg.steps} steps")
    results, samples = {}, {}
    results[f"world {cfg.split} objects"], samples["world"] = evaluate_set(model, source, src_sph, truth, tgt_sph, cfg)
    mesh_folder = cfg.meshes if cfg.meshes is not None else DEFAULT_MESHES
    mesh_names: list[str] = []
    if mesh_folder.is_dir():
        meshes = _mesh_views(mesh_folder, model, cfg.num_targets)
        if meshes is not None:
            mesh_names, m_src, m_sph, m_truth, m_tsph = meshes
            info(f"evaluating {len(mesh_names)} real meshes: {', '.join(mesh_names)}")
            results["real meshes"], _ = evaluate_set(model, m_src.to(device), m_sph.to(device), m_truth.to(device),
                                                     m_tsph.to(device), cfg)
    else:
        info(f"no real meshes at {mesh_folder}: skipped")
    for name, r in results.items():
        gain = r["stochastic"]["psnr"] - r["copy_input"]["psnr"]
        info(f"{name}: PSNR copy {r['copy_input']['psnr']:.2f}, single {r['single_view']['psnr']:.2f}, "
             f"stochastic {r['stochastic']['psnr']:.2f} dB (+{gain:.2f} over copy)")
        r["stochastic_gain_over_copy_db"] = gain
    n = min(cfg.grid_objects, views.num_objects)
    kk = min(4, k)
    cols = [source[:n].cpu()]
    for j in range(kk):
        cols += [truth[:n, j].cpu(), samples["world"]["stochastic"][:n, j].cpu()]
    with output_folder(cfg.out, overwrite=cfg.overwrite, owns=EVAL_FILES) as out:
        save_grid(cols, out / "novel_view_grid.png", scale=2)
        record = {"results": results, "model": str(cfg.model or "shipped"), "model_info": model.info,
                  "data": str(cfg.data), "split": cfg.split, "objects": views.names, "meshes": mesh_names,
                  "steps": cfg.steps, "guidance_scale": cfg.guidance_scale, "input_weight": cfg.input_weight,
                  "seed": cfg.seed, "resolution": res}
        write_json_atomic(out / "novel_view_eval.json", record)
        md = ["# Novel-view evaluation", "",
              f"Model `{cfg.model or 'dreamfusion3d/assets/novel_view'}` at {res} px, {cfg.steps} DDIM steps, guidance "
              f"{cfg.guidance_scale}, stochastic conditioning's input weight "
              f"{'uniform' if cfg.input_weight is None else cfg.input_weight}, seed {cfg.seed}. Input = the view "
              "nearest the canonical camera; PSNR in dB (scikit-image), mean over all target views. Consistency = "
              "PSNR between the same target generated twice (reverse order, another seed).", "", _md_table(results), "",
              "Grid (`novel_view_grid.png`): input, then pairs of (truth, stochastic sample) for 4 targets.", ""]
        write_text_atomic(out / "novel_view_eval.md", "\n".join(md))
        save_config(cfg, out / "novel_view_eval_config.yaml", command="evaluate-novel-view")
    info(f"wrote {cfg.out / 'novel_view_eval.json'}, .md and novel_view_grid.png")


__all__ = ["EvaluateNovelViewConfig", "run", "psnr", "ssim", "score", "input_and_targets"]
