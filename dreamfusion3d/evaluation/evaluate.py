"""``dreamfusion3d evaluate``: how well do generated objects match their prompts?

For each prompt of a list it reuses ``OUT/runs/<slug>/`` when that holds a finished run and
otherwise runs ``generate`` into it (an interrupted evaluation resumes from the runs' latest
checkpoints), or it reads existing runs (``--runs``). Each run is rendered from K random cameras
and measured by:

* R-precision with the bundled evaluation classifier: share of views whose predicted shape /
  colour / both are the prompt's (shape only for single primitives, the classes it knows);
* CLIP R-precision (``--clip MODEL``): share of views whose own prompt ranks first among all
  prompts of the list by CLIP similarity;
* geometry against the world's ground-truth object (:mod:`.geometry`): volumetric IoU and
  Chamfer distance after centring, volume normalisation and the best yaw (a torus also at the best
  of the world's tilts, 0–20°, which the world draws at random as it draws the yaw);
* the multi-face (Janus) test on objects with a front (:mod:`.multiface`);
* with ``--world-draws N``, the same geometry figures for N of the world's own objects of each
  prompted shape (other seeds): the score of a perfect object of the prompt's family drawn at
  random, the baseline the geometry figures are read against.

Outputs in OUT: ``results.json``, ``results.md`` (table), ``contact_sheet.png`` (a row per
prompt, K views) and ``config.yaml``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..guidance.config import PriorKind
from ..utils.config import load_preset, save_config
from ..utils.device import resolve_device
from ..utils.errors import UserError
from ..utils.io import current_folder, write_json_atomic, write_text_atomic
from ..utils.logging import info, progress, warn
from ..utils.outdir import check_output_folder, has_checkpoint, output_folder
from .prompts import Target, default_prompts, grid_prompts, parse_prompt, quick_prompts
from .report import fmt, markdown, summarise, write_contact_sheet


@dataclass
class EvaluateConfig:
    """Generate (or read) one object per prompt and measure prompt fidelity, geometry and Janus faces."""

    out: Path = Path("outputs/evaluate")
    """Folder for results.json, results.md, contact_sheet.png (and runs/<slug>/ when generating)."""
    resume: bool = False
    """Continue the evaluation in --out: reuse its finished runs, resume its interrupted ones."""
    overwrite: bool = False
    """Replace a non-empty --out (the old one is kept aside until a new run has a checkpoint)."""
    prompts: tuple[str, ...] = ()
    """Prompts to evaluate (default: every shape × colour, five paraphrases and two front objects)."""
    prompts_file: Path | None = None
    """A text file with one prompt per line (instead of --prompts)."""
    quick: bool = False
    """The five acceptance prompts and one front object (about 15 min on 2 CPU cores)."""
    grid: bool = False
    """The 35 shape × colour prompts (5 primitives × 7 colours), e.g. with --generate-config sdf."""
    runs: tuple[Path, ...] = ()
    """Evaluate these existing generate runs only (a run folder, or a folder of run folders); no generation."""
    generate_config: str = "default"
    """Preset name or YAML path of the generate settings for missing runs."""
    steps: int | None = None
    """Override the preset's optimisation steps."""
    prior_kind: PriorKind | None = None
    """Override the preset's prior kind."""
    prior_model: str | None = None
    """Override the preset's prior model folder or hub id."""
    views: int = 8
    """K random views rendered per run."""
    view_resolution: int = 32
    """Size of the judged views (the classifier's input size; renders are 2× supersampled)."""
    classifier: Path | None = None
    """Evaluation classifier folder (default: the shipped one)."""
    clip: str | None = None
    """A transformers CLIPModel folder or hub id: also report CLIP R-precision."""
    geometry: bool = True
    """Compare each object with the world's ground truth (IoU, Chamfer) and run the multi-face test."""
    geometry_resolution: int = 64
    """Grid size of the geometry comparison."""
    world_draws: int = 0
    """Also score N of the world's own objects per shape (seeds seed+1 … seed+N) against the same
    reference: what a generator that draws a perfect object of the prompt's family gets, given the
    proportions no prompt fixes (a torus' thickness, a cylinder's aspect). 0: off."""
    seed: int = 0
    """Seed of the views and surface samples."""
    device: str = "auto"
    """auto (cuda:LOCAL_RANK if CUDA is available, else cpu), cpu, cuda, cuda:N, mps."""
    num_threads: int = 0
    """torch CPU threads (0: torch's default)."""


# ---------------------------------------------------------------------- prompts and runs


def resolve_prompts(cfg: EvaluateConfig) -> list[str]:
    if cfg.prompts_file is not None:
        from ..generate.loop import read_prompts_file

        prompts = read_prompts_file(cfg.prompts_file)
    elif cfg.prompts:
        prompts = [p.strip() for p in cfg.prompts if p.strip()]
        if not prompts:
            raise UserError("--prompts holds only empty prompts")
    else:
        prompts = quick_prompts() if cfg.quick else grid_prompts() if cfg.grid else default_prompts()
    return list(dict.fromkeys(prompts))  # unique, in order


def _is_run(path: Path) -> bool:
    from ..representations import is_checkpoint

    return any(is_checkpoint(path / "checkpoints" / n) for n in ("final", "latest"))


def discover_runs(paths: tuple[Path, ...]) -> list[Path]:
    """Run folders among ``paths`` (each a run, or a folder whose sub-folders are runs)."""
    runs: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise UserError(f"--runs {path}: no such folder")
        found = [path] if _is_run(path) else sorted(p for p in path.iterdir() if p.is_dir() and _is_run(p))
        if not found:
            raise UserError(f"--runs {path}: no generate runs there (no checkpoints/final or latest)")
        runs += found
    return list(dict.fromkeys(runs))


def run_prompt(run: Path) -> str:
    """The prompt a run was generated for (its checkpoint's record, else its config.yaml)."""
    import yaml

    from ..representations import checkpoint_extra

    prompt = checkpoint_extra(run).get("prompt")
    if not prompt and (run / "config.yaml").is_file():
        prompt = (yaml.safe_load((run / "config.yaml").read_text()) or {}).get("prompt")
    if not prompt:
        raise UserError(f"run {run} does not record its prompt")
    return str(prompt)


def generate_settings(cfg: EvaluateConfig, prompts: list[str]):
    """The generate config of missing runs (the preset with this command's overrides), checked."""
    from ..generate.checks import validate_generate
    from ..generate.config import GenerateConfig
    from ..utils.validate import validate_config

    gcfg = load_preset(GenerateConfig, cfg.generate_config, command="generate")
    if cfg.steps is not None:
        if cfg.steps < 1:
            raise UserError(f"--steps must be positive, got {cfg.steps}")
        gcfg.steps = cfg.steps
    if cfg.prior_kind is not None:
        gcfg.prior.kind = cfg.prior_kind
    if cfg.prior_model is not None:
        gcfg.prior.model = cfg.prior_model
    gcfg.device = cfg.device
    gcfg.prompt, gcfg.prompts_file = (prompts or [""])[0], None
    validate_config("generate", gcfg)
    validate_generate(gcfg)
    return gcfg


def generate_missing(cfg: EvaluateConfig, prompts: list[str]) -> list[Path]:
    """``OUT/runs/<slug>`` for every prompt, generating (or resuming) those without a final checkpoint."""
    from ..generate.loop import Generation, slugify
    from ..representations import is_checkpoint

    gcfg = generate_settings(cfg, prompts)
    slugs = [slugify(p) for p in prompts]
    if len(set(slugs)) != len(slugs):
        raise UserError("two prompts share a folder name (they differ only in punctuation or case)")
    runs = [cfg.out / "runs" / s for s in slugs]
    todo = [(p, r) for p, r in zip(prompts, runs) if not is_checkpoint(r / "checkpoints" / "final")]
    if todo:
        info(f"generating {len(todo)} of {len(prompts)} runs ({gcfg.steps} steps each, preset {cfg.generate_config})")
    prior = None
    for prompt, run in todo:
        run.mkdir(parents=True, exist_ok=True)
        gcfg.prompt, gcfg.out = prompt, run
        save_config(gcfg, run / "config.yaml", command="generate")
        gen = Generation(gcfg, prompt, run, prior=prior)
        prior = gen.prior
        latest = current_folder(run / "checkpoints" / "latest")
        if (latest / "trainer").exists():
            gen.load(latest)
            info(f"{prompt!r}: resumed at step {gen.step}")
        info(f"generate {prompt!r} -> {run}")
        gen.run()
    return runs


# ---------------------------------------------------------------------- one run


def evaluate_run(run: Path, prompt: str, target: Target | None, judge,
                 cfg: EvaluateConfig) -> tuple[dict, torch.Tensor]:
    """Per-run figures and the K views ``[K, 3, H, W]`` (2× the judged size, for the contact sheet)."""
    from ..representations import is_checkpoint, load_representation
    from ..judge.views import judge_images, render_judged_views

    renderer, extra = load_representation(run, device=cfg.device)
    views = render_judged_views(renderer, cfg.views, cfg.seed, cfg.view_resolution, device=cfg.device).cpu()
    small = judge_images(views, cfg.view_resolution)
    row: dict = {"prompt": prompt, "run": str(run), "step": extra.get("step"), "notes": [],
                 "target": None if target is None else {"shape": target.shape, "color": target.color,
                                                         "second_color": target.second_color}}
    if not is_checkpoint(run / "checkpoints" / "final"):
        row["notes"].append("unfinished run (latest checkpoint)")
    row["classifier"], row["predicted"] = classifier_precision(judge, small.to(cfg.device), target)
    if target is None:
        row["notes"].append("prompt not in the world's vocabulary: no classifier, geometry or multi-face figures")
    if cfg.geometry and target is not None:
        row.update(geometry_figures(renderer, target, cfg, row["notes"]))
    return row, views


@torch.no_grad()
def classifier_precision(judge, images: torch.Tensor, target: Target | None) -> tuple[dict, list[list[str]]]:
    """R-precision (R = 1) of the judge's shape / colour logits for the prompt's classes, and
    "both" (a view whose shape and colour both rank first); shape only for single primitives.
    Also returns the predicted [shape, colour] per view."""
    from .metrics import retrieval_hits

    judge.eval()
    shape_logits, color_logits = judge(images)  # [K, S], [K, C]
    names_s, names_c = judge.config.shapes, judge.config.colors
    predicted = [[names_s[i], names_c[j]] for i, j in zip(shape_logits.argmax(-1), color_logits.argmax(-1))]
    out: dict = {"shape": None, "color": None, "both": None}
    if target is None or target.color not in names_c:
        return out, predicted
    k = len(images)
    color_hits = retrieval_hits(color_logits.cpu(), torch.full((k,), names_c.index(target.color)))
    out["color"] = float(color_hits.double().mean())
    if target.shape in names_s:
        shape_hits = retrieval_hits(shape_logits.cpu(), torch.full((k,), names_s.index(target.shape)))
        out["shape"] = float(shape_hits.double().mean())
        out["both"] = float((shape_hits & color_hits).double().mean())
    return out, predicted


def best_reference(solid, target: Target, resolution: int, seed: int):
    """``compare_solids`` against each of the target's reference poses (``Target.reference_scenes``:
    the seed's scene, and for a torus the world's range of tilts) and the best by IoU:
    ``(figures, that reference's Solid)``. Where tilts were searched the figures also carry
    ``reference_tilt_deg`` (the best one's) and ``iou_seed_pose`` (the IoU against the seed's own pose)."""
    from .geometry import compare_solids, scene_solid

    scenes = target.reference_scenes(seed)
    best, seed_iou = None, None
    for scene in scenes:
        reference = scene_solid(scene)
        figures = compare_solids(solid, reference, resolution, seed=seed)
        if seed_iou is None:
            seed_iou = figures["iou"]
        if len(scenes) > 1:
            z = float(np.clip(scene.parts[0].rotation[2][2], -1.0, 1.0))
            figures["reference_tilt_deg"] = round(float(np.degrees(np.arccos(z))), 2)
        if best is None or figures["iou"] > best[0]["iou"]:
            best = (figures, reference)
    if len(scenes) > 1:
        best[0]["iou_seed_pose"] = seed_iou
    return best


def geometry_figures(renderer, target: Target, cfg: EvaluateConfig, notes: list[str]) -> dict:
    from ..world import COLORS
    from .geometry import (
        TEMPLATE_SHAPES, EmptySolidError, normalise_solid, representation_solid, surface_figures, template_fit,
    )
    from .multiface import COLOUR_FRONTS, GEOMETRIC_FRONTS, multiface

    out: dict = {}
    try:
        solid = representation_solid(renderer, cfg.geometry_resolution)
        out["geometry"], reference = best_reference(solid, target, cfg.geometry_resolution, cfg.seed)
        out["geometry"].update(surface_figures(solid, reference, cfg.geometry_resolution,
                                               out["geometry"]["yaw_deg"], seed=cfg.seed))
        if target.shape in TEMPLATE_SHAPES:
            out["geometry"]["template"] = template_fit(solid)
        if target.shape in GEOMETRIC_FRONTS + COLOUR_FRONTS:
            centre = normalise_solid(solid, cfg.geometry_resolution).centre
            out["multiface"] = multiface(solid, centre, target.shape, COLORS[target.color],
                                         COLORS[target.second_color] if target.second_color else None)
    except EmptySolidError as exc:
        notes.append(f"no geometry: {exc}")
        out["geometry_empty"] = True  # counted as IoU 0 and a missed 3D fit in the summary
    return out


def world_draw_figures(targets: list[Target], draws: int, resolution: int, seed: int) -> dict:
    """The geometry figures of the world's own objects: for each shape among ``targets``, its
    scenes of seeds ``seed+1 … seed+draws`` compared with the seed's reference exactly as a run is
    (``best_reference``). Returns {"draws", "by_shape": {shape: {"iou", "chamfer", "iou_min",
    "chamfer_max"}}, "iou", "chamfer"}; the last two average the per-shape means over ``targets``
    (one per prompt), so they sit next to the runs' means."""
    from .geometry import scene_solid

    by_shape: dict[str, dict] = {}
    for target in progress(list({t.shape: t for t in targets}.values()), desc="world draws", unit="shape"):
        figures = [best_reference(scene_solid(target.scene(seed + k)), target, resolution, seed)[0]
                   for k in range(1, draws + 1)]
        ious, chamfers = [f["iou"] for f in figures], [f["chamfer"] for f in figures]
        by_shape[target.shape] = {"iou": float(np.mean(ious)), "chamfer": float(np.mean(chamfers)),
                                  "iou_min": float(np.min(ious)), "chamfer_max": float(np.max(chamfers))}
    return {"draws": draws, "by_shape": by_shape,
            "iou": float(np.mean([by_shape[t.shape]["iou"] for t in targets])),
            "chamfer": float(np.mean([by_shape[t.shape]["chamfer"] for t in targets]))}


# ---------------------------------------------------------------------- the command


def run(cfg: EvaluateConfig) -> None:
    from ..judge.model import ShapeColorClassifier

    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    cfg.device = str(resolve_device(cfg.device))
    if cfg.views < 1:
        raise UserError(f"--views must be at least 1, got {cfg.views}")
    if cfg.geometry_resolution < 16:
        raise UserError(f"--geometry-resolution must be at least 16, got {cfg.geometry_resolution}")
    if cfg.world_draws < 0:
        raise UserError(f"--world-draws must be 0 or more, got {cfg.world_draws}")
    check_output_folder(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume)
    t0 = time.time()
    judge = ShapeColorClassifier.from_pretrained(cfg.classifier, device=cfg.device)
    scorer = None
    if cfg.clip:
        from .clip import ClipScorer

        scorer = ClipScorer(cfg.clip, cfg.device)
    if cfg.runs:
        if cfg.prompts or cfg.prompts_file or cfg.quick:
            raise UserError("--runs evaluates existing runs; it cannot be combined with --prompts, "
                            "--prompts-file or --quick")
        runs = discover_runs(cfg.runs)
        prompts = [run_prompt(r) for r in runs]
    else:
        prompts = resolve_prompts(cfg)
        generate_settings(cfg, prompts)  # checked before anything is written
    with output_folder(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume, started=has_checkpoint):
        if not cfg.resume:
            save_config(cfg, cfg.out / "config.yaml", command="evaluate")
        if not cfg.runs:
            runs = generate_missing(cfg, prompts)
        _evaluate(cfg, prompts, runs, judge, scorer, t0)


def _evaluate(cfg: EvaluateConfig, prompts: list[str], runs: list[Path], judge, scorer, t0: float) -> None:
    t_gen = time.time() - t0
    rows, sheet = [], []
    t1 = time.time()
    for prompt, run_dir in progress(list(zip(prompts, runs)), desc="evaluate", unit="run"):
        row, views = evaluate_run(run_dir, prompt, parse_prompt(prompt), judge, cfg)
        rows.append(row)
        sheet.append(views)
        for note in row["notes"]:
            warn(f"{prompt!r}: {note}")
    if scorer is not None:
        from .metrics import retrieval_hits

        images = torch.cat([v for v in sheet])
        owner = torch.tensor([i for i, v in enumerate(sheet) for _ in range(len(v))])
        hits = retrieval_hits(scorer.scores(images, prompts).cpu(), owner, r=1)
        for i, row in enumerate(rows):
            row["clip_r_precision"] = float(hits[owner == i].double().mean())
    summary = summarise(rows, cfg.clip)
    targets = [t for t in (parse_prompt(p) for p in prompts) if t is not None]
    if cfg.world_draws and cfg.geometry and targets:
        summary["world_draws"] = world_draw_figures(targets, cfg.world_draws, cfg.geometry_resolution, cfg.seed)
    summary.update({"seconds_generate": round(t_gen, 1), "seconds_evaluate": round(time.time() - t1, 1),
                    "views_per_run": cfg.views, "threads": torch.get_num_threads()})
    write_json_atomic(cfg.out / "results.json", {"summary": summary, "runs": rows})
    write_text_atomic(cfg.out / "results.md", markdown(rows, summary, scorer is not None))
    write_contact_sheet(cfg.out / "contact_sheet.png", sheet)
    parts = [f"classifier both {fmt(summary['classifier_both'], True)}"]
    if scorer is not None:
        parts.append(f"CLIP R@1 {fmt(summary['clip_r_precision'], True)}")
    if summary["iou"] is not None:
        parts.append(f"IoU {summary['iou']:.3f}, Chamfer {fmt(summary['chamfer'])}")
    if summary["geometry_empty"]:
        parts.append(f"{summary['geometry_empty']} empty (IoU 0)")
    if "world_draws" in summary:
        w = summary["world_draws"]
        parts.append(f"the world's own objects IoU {w['iou']:.3f}, Chamfer {w['chamfer']:.3f}")
    if summary["multi_face_rate"] is not None:
        parts.append(f"multi-face {fmt(summary['multi_face_rate'], True)} of {summary['front_runs']}")
    info(f"{len(rows)} runs: " + ", ".join(parts) + f"; results in {cfg.out / 'results.md'}")
