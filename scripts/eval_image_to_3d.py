"""Image → 3D on held-out world objects: mesh IoU, PSNR at other cameras, seconds per image.

The objects are the test split of the novel-view model's dataset recipe
(``configs/novel_view_data.yaml``: 300 objects, seed 0; none of its test objects was trained on,
and the continued-training set uses other seeds), rebuilt from their seeds exactly as
``make-dataset`` draws them — same scene, same per-object cameras — so no dataset has to be on
disk. Per object:

* input: the object rendered at 128 px from the canonical input camera of the novel-view model
  (azimuth 0, its elevation, radius and fov), saved as an RGBA PNG and given to
  ``dreamfusion3d image-to-3d --reference.no-recentre`` (subprocess-free: the CLI's ``main``): the
  camera is known, so the input keeps its framing and the 3D stays in the truth's frame
  (``--recentre`` re-centres it as for a photo, which rescales and shifts the object);
* targets: 6 of the object's dataset cameras spread by index away from the input
  (``evaluate-novel-view``'s choice), rendered as ground truth at the model resolution;
* scored: mesh IoU / Chamfer of the optimised NeRF vs the true solid
  (``evaluation.geometry.compare_solids``); PSNR at the targets of (a) the 3D's renders, (b)
  copying the (centred) input, (c) the novel-view model's own stochastic samples (defaults of
  ``novel-view``) from the same input and cameras; wall seconds of the image-to-3d run.

    python scripts/eval_image_to_3d.py --objects 24 --out outputs/eval_i23d            # the acceptance run
    python scripts/eval_image_to_3d.py --objects 3 --out /tmp/i23d -- --steps 400      # quick; after -- : image-to-3d flags

Writes OUT/image_to_3d_eval.json and .md (per-object rows + means). Add ``--meshes`` to run the real
meshes of ../shared/data/meshes too (rendered through the world's mesh path).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dreamfusion3d.cameras import Cameras, orbit_cameras  # noqa: E402
from dreamfusion3d.novel_view.data import resize  # noqa: E402
from dreamfusion3d.novel_view.evaluate import choose_views, psnr  # noqa: E402


def held_out_objects(count: int, recipe: str = "novel_view_data"):
    """[(name, scene, cameras [V] of the object)] for the first ``count`` test objects of the recipe."""
    from dreamfusion3d.utils.config import load_preset
    from dreamfusion3d.world import MakeDatasetConfig, random_scene
    from dreamfusion3d.world.dataset import _object_cameras, object_split

    cfg = load_preset(MakeDatasetConfig, recipe, command="make-dataset")
    split = object_split(cfg.num_objects, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    picked = [i for i, s in enumerate(split) if s == "test"][:count]
    out = []
    for i in picked:
        obj_seed = int(np.random.default_rng([cfg.seed, i, False]).integers(2**31 - 1))
        scene = random_scene(np.random.default_rng([cfg.seed, i]), compositions=cfg.compositions)
        cams = _object_cameras(cfg, obj_seed)
        c2w = torch.cat([c.c2w for c in cams.values()])
        fov = torch.cat([c.fov_y for c in cams.values()])
        out.append((f"obj_{i:05d}", scene, Cameras(c2w, fov, cfg.resolution, cfg.resolution)))
    return out


def mesh_objects(folder: Path):
    from dreamfusion3d.world import load_mesh_asset

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".obj", ".ply", ".glb", ".off", ".stl"))
    out = []
    for p in paths:
        az = torch.arange(16) * 22.5
        el = torch.tensor([20.0, -5.0, 35.0, 10.0]).repeat(4)
        out.append((p.stem, load_mesh_asset(p), orbit_cameras(az, el, 3.0, 40.0, 32)))
    return out


def render_truth(obj, cams: Cameras, size: int) -> tuple[torch.Tensor, torch.Tensor]:  # rgb [B,3,s,s], alpha
    from dreamfusion3d.world import Scene, render_mesh, render_scene

    cams = Cameras(cams.c2w, cams.fov_y, size, size)
    out = render_scene(obj, cams, supersample=2) if isinstance(obj, Scene) else render_mesh(obj, cams, supersample=2)
    return out["rgb"].permute(0, 3, 1, 2).clamp(0, 1), out["alpha"].permute(0, 3, 1, 2)


def sph(cams: Cameras) -> torch.Tensor:
    az, el, r = cams.spherical()
    return torch.stack([az, el, r], -1)


def solid_of(obj):
    from dreamfusion3d.evaluation.geometry import Solid, scene_solid
    from dreamfusion3d.world import Scene

    if isinstance(obj, Scene):
        return scene_solid(obj)
    import trimesh

    mesh = obj.mesh if hasattr(obj, "mesh") else None
    if mesh is None or not isinstance(mesh, trimesh.Trimesh) or not mesh.is_watertight:
        return None
    return Solid(lambda p: torch.from_numpy(mesh.contains(p.numpy()).astype(np.float32) * 2 - 1))


def evaluate_object(name, obj, cams, args, extra, model, work: Path) -> dict:
    import imageio.v3 as iio

    from dreamfusion3d.cli import main
    from dreamfusion3d.evaluation.geometry import EmptySolidError, compare_solids, representation_solid
    from dreamfusion3d.world.render import headlight_positions
    from dreamfusion3d.novel_view.images import load_input_image
    from dreamfusion3d.novel_view.sampling import generation_order, sample_views
    from dreamfusion3d.representations import load_representation

    cam = model.camera
    res = model.resolution
    canonical = torch.tensor([cam.azimuth, cam.elevation, cam.radius])
    _, targets = choose_views(sph(cams), canonical, args.targets)
    tcams = cams[targets]
    truth = resize(render_truth(obj, tcams, 2 * res)[0], res)  # [K, 3, R, R]
    src = orbit_cameras([cam.azimuth], [cam.elevation], cam.radius, cam.fov_y_deg, 128)
    rgb, alpha = render_truth(obj, src, 128)
    png = work / f"{name}.png"
    iio.imwrite(png, (torch.cat([rgb, alpha], 1)[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))

    # what novel-view (and image-to-3d) sees: by default the render as its camera framed it, so the
    # 3D, the samples and the copy stay in the truth's frame (--recentre: cut out and re-centred, as
    # for a photo; the object is then rescaled and shifted against the truth, which PSNR punishes)
    source = load_input_image(png, res, cam.object_fraction, recentre=args.recentre)
    copy = [psnr(_np(truth[k]), _np(source)) for k in range(len(targets))]
    tsph = sph(tcams)
    views = sample_views(model, source[None], canonical[None], tsph[None],
                         order=generation_order(canonical, tsph), generator=torch.Generator().manual_seed(0))[0]
    nv = [psnr(_np(truth[k]), _np(views[k])) for k in range(len(targets))]

    out = work / name
    t0 = time.time()
    framing = [] if args.recentre else ["--reference.no-recentre"]
    code = main(["image-to-3d", "--image", str(png), "--out", str(out), "--quiet", *framing, *extra])
    seconds = time.time() - t0
    if code != 0:
        raise SystemExit(f"image-to-3d failed on {name} (exit {code})")
    renderer, _ = load_representation(out / "checkpoints" / "final")
    with torch.no_grad():  # lit as the world lit the truth: headlight, ambient 0.3
        r = renderer.render(Cameras(tcams.c2w, tcams.fov_y, 2 * res, 2 * res), shading="lambertian",
                            light_positions=headlight_positions(tcams.positions), ambient=0.3)
    renders = resize(r["rgb"].permute(0, 3, 1, 2).clamp(0, 1), res)
    ours = [psnr(_np(truth[k]), _np(renders[k])) for k in range(len(targets))]
    geo = {"iou": None, "chamfer": None}
    ref = solid_of(obj)
    if ref is not None:
        try:
            geo = compare_solids(representation_solid(renderer), ref, resolution=args.geometry_resolution)
        except EmptySolidError as exc:
            geo = {"iou": 0.0, "chamfer": None, "note": str(exc)}
    metrics = json.loads((out / "metrics.json").read_text())
    return {"object": name, "iou": geo["iou"], "chamfer": geo["chamfer"], "psnr_3d": float(np.mean(ours)),
            "psnr_novel_view": float(np.mean(nv)), "psnr_copy": float(np.mean(copy)), "seconds": seconds,
            "input_view_psnr": metrics["reference_view"]["psnr"], "targets": targets}


def _np(img: torch.Tensor) -> np.ndarray:
    return img.detach().permute(1, 2, 0).double().clamp(0, 1).cpu().numpy()


def summarise(rows: list[dict]) -> dict:
    def mean(key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    return {k: mean(k) for k in ("iou", "chamfer", "psnr_3d", "psnr_novel_view", "psnr_copy", "seconds",
                                 "input_view_psnr")} | {"objects": len(rows)}


def markdown(sets: dict[str, dict], command: str) -> str:
    lines = ["# Image → 3D evaluation", "", f"`{command}`", "",
             "| set | object | IoU | Chamfer | PSNR 3D | PSNR novel-view samples | PSNR copy input | s / image |",
             "|---|---|---|---|---|---|---|---|"]

    def f(v, d=3):
        return "–" if v is None else f"{v:.{d}f}"

    for set_name, s in sets.items():
        for r in s["rows"] + [{"object": f"**mean of {s['summary']['objects']}**", **s["summary"]}]:
            lines.append(f"| {set_name} | {r['object']} | {f(r['iou'])} | {f(r['chamfer'])} | {f(r['psnr_3d'], 2)} | "
                         f"{f(r['psnr_novel_view'], 2)} | {f(r['psnr_copy'], 2)} | {f(r['seconds'], 0)} |")
    return "\n".join(lines) + "\n"


def main_cli(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, default=24, help="held-out world objects (test split)")
    ap.add_argument("--skip", type=int, default=0, help="skip the first N test objects")
    ap.add_argument("--targets", type=int, default=6, help="target cameras per object")
    ap.add_argument("--out", type=Path, default=Path("outputs/eval_image_to_3d"))
    ap.add_argument("--meshes", type=Path, nargs="?", const=ROOT.parent / "shared" / "data" / "meshes", default=None)
    ap.add_argument("--geometry-resolution", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--recentre", action="store_true",
                    help="cut the input out and re-centre it (image-to-3d's default for photos) instead of "
                         "passing the canonical-camera render as framed (--reference.no-recentre)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from dreamfusion3d.novel_view.model import NovelViewModel
    from dreamfusion3d.utils.io import write_json_atomic, write_text_atomic

    model = NovelViewModel.from_pretrained(None)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python scripts/eval_image_to_3d.py " + " ".join(sys.argv[1:] if argv is None else argv)
    sets: dict[str, dict] = {}
    groups = [("held-out world objects", held_out_objects(args.skip + args.objects)[args.skip:])]
    if args.meshes is not None and args.meshes.is_dir():
        groups.append(("real meshes", mesh_objects(args.meshes)))
    for set_name, objects in groups:
        rows = []
        work = args.out / set_name.split()[-1]
        work.mkdir(parents=True, exist_ok=True)
        for name, obj, cams in objects:
            row = evaluate_object(name, obj, cams, args, extra + ["--num-threads", str(args.threads)], model, work)
            print(json.dumps({k: v for k, v in row.items() if k != "targets"}), flush=True)
            rows.append(row)
            sets[set_name] = {"rows": rows, "summary": summarise(rows)}
            write_json_atomic(args.out / "image_to_3d_eval.json", {"command": command, "extra_flags": extra,
                                                                    "sets": sets})
        print(set_name, json.dumps(sets[set_name]["summary"]), flush=True)
    write_text_atomic(args.out / "image_to_3d_eval.md", markdown(sets, command))


if __name__ == "__main__":
    main_cli()
