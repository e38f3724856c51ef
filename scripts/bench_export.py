"""Time `export`: marching cubes + cleaning, then the texture bake (UV atlas, rasterisation,
colour queries, gutter dilation), and check its GLB with the Khronos validator.

Not a test (timings on a shared CPU are noise for a test); run it by hand:
    python scripts/bench_export.py RUN_OR_CHECKPOINT [--threads 2] [--texture-size 1024] [--decimate-to 50000]
    python scripts/bench_export.py --world-shape cube    # a world object instead of a NeRF run
Prints the mesh size, wall and CPU seconds of the extraction and of each bake stage, the
texture coverage and the validator's errors / warnings / hints for the textured GLB.
``--json PATH`` writes the seconds by stage (scripts/bench_compare.sh reads them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def validate(path: Path) -> str:
    node, validator = shutil.which("node"), REPO / ".ci" / "gltf" / "node_modules" / "gltf-validator"
    if node is None or not validator.is_dir():
        return "validator not installed (bash scripts/install_gltf_validator.sh)"
    proc = subprocess.run([node, str(REPO / "scripts" / "validate_gltf.mjs"), str(path)], capture_output=True, text=True)
    report = json.loads(proc.stdout)
    return f"{report['numErrors']} errors, {report['numWarnings']} warnings, {report.get('numHints', '?')} hints"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, help="a generate/NeRF run or checkpoint folder")
    parser.add_argument("--world-shape", default=None)
    parser.add_argument("--world-color", default="red")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--texture-size", type=int, default=1024)
    parser.add_argument("--decimate-to", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write mesh.glb/obj/ply here (e.g. to open in Blender)")
    parser.add_argument("--json", type=Path, default=None, help="write the seconds by stage here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not os.environ.get("PYTHONPATH"):  # else the package on PYTHONPATH (bench_compare.sh: another revision's)
        sys.path.insert(0, str(REPO))
    from dreamfusion3d.export import extract_mesh
    from dreamfusion3d.export.command import ExportConfig, _run_source, _world_source
    from dreamfusion3d.export.texture import bake_texture
    from dreamfusion3d.export.writers import export_all, export_mesh
    from dreamfusion3d.utils.logging import set_quiet

    set_quiet(True)
    cfg = ExportConfig(source=args.source, world_shape=args.world_shape, world_color=args.world_color)
    if cfg.world_shape is not None:
        field_fn, color_fn, field_type, _ = _world_source(cfg.world_shape, cfg.world_color, cfg.world_seed)
    else:
        field_fn, color_fn, field_type, _ = _run_source(cfg.source, "cpu")
    seconds: dict = {}
    wall = time.perf_counter()
    with torch.no_grad():
        mesh = extract_mesh(field_fn, resolution=args.resolution, color_fn=color_fn, field_type=field_type,
                            decimate_to=args.decimate_to)
    seconds["extract (marching cubes + clean)"] = time.perf_counter() - wall
    print(f"mesh: {len(mesh.faces)} faces, {len(mesh.vertices)} vertices ({args.resolution}^3 grid"
          f"{', decimated' if args.decimate_to else ''}); {args.threads} threads, texture {args.texture_size}^2")
    for _ in range(args.repeats):
        timings: dict = {}
        wall, cpu = time.perf_counter(), time.process_time()
        textured = bake_texture(mesh, color_fn, args.texture_size, timings=timings)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        stages = ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
        if "bake" not in seconds or wall < seconds["bake"]:
            seconds["bake"] = wall
            seconds.update({f"  bake {k}": v for k, v in timings.items() if isinstance(v, (int, float))})
        print(f"bake: {wall:.2f} s wall, {cpu:.2f} s CPU ({stages}); {len(textured.vertices)} vertices after seams")
    print(f"extract: {seconds['extract (marching cubes + clean)']:.2f} s wall")
    if args.json is not None:
        args.json.write_text(json.dumps({"seconds": seconds}))
    image = np.asarray(textured.visual.material.baseColorTexture)
    with tempfile.TemporaryDirectory() as tmp:
        (glb,) = export_mesh(textured, Path(tmp) / "mesh.glb")
        print(f"GLB {glb.stat().st_size / 1e6:.1f} MB, texture {image.shape[1]}x{image.shape[0]}; validator: {validate(glb)}")
    if args.out is not None:
        print("wrote", ", ".join(p.name for p in export_all(textured, args.out, ["glb", "obj", "ply"])))


if __name__ == "__main__":
    main()
