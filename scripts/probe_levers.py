"""Measure one geometry lever on a small probe set of prompts (docs/RESULTS.md, issue 17).

    python3 scripts/probe_levers.py --name cos --set optim.decay=cosine --set optim.final_lr_fraction=0.1
    python3 scripts/probe_levers.py --name default                      # the default preset itself

The default preset (configs/default.yaml) with the ``--set`` changes applied (dotted keys, YAML
values; a misspelt key is refused when evaluate loads the file) is written to OUT/NAME.yaml; the probe prompts go through ``dreamfusion3d evaluate
--generate-config OUT/NAME.yaml`` (generation, then IoU / Chamfer / normal consistency / 3D template
fit against the world's objects) into OUT/NAME/, and one markdown row per prompt is printed. The
texture bake and most turntable frames are skipped: geometry is judged on the field, not on them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ("a red cone", "a green torus", "a blue cube", "a yellow sphere", "a purple cylinder", "a white cube",
           "a orange torus")  # the grid's wording ("a orange …"), so rows match its table
FAST_OUTPUT = {"texture": "none", "video_frames": 8, "gif": False}


def derived_config(changes: list[str]) -> dict:
    config = yaml.safe_load((ROOT / "dreamfusion3d" / "presets" / "default.yaml").read_text())
    config["output"].update(FAST_OUTPUT)
    for change in changes:
        key, _, value = change.partition("=")
        *path, last = key.split(".")
        node = config
        for part in path:
            node = node.setdefault(part, {})  # a section the preset leaves at its defaults
        node[last] = yaml.safe_load(value)
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="name of the probe (sub-folder and config file)")
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE",
                        help="a change to the default preset, e.g. sdf.init_radius=0.3 (repeatable)")
    parser.add_argument("--prompts", nargs="+", default=list(PROMPTS))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=Path("outputs/probes"))
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    config_path = args.out / f"{args.name}.yaml"
    config_path.write_text(yaml.safe_dump(derived_config(args.changes), sort_keys=False))
    run_dir = args.out / args.name
    cmd = [sys.executable, "-m", "dreamfusion3d", "evaluate", "--quiet", "--overwrite", "--prompts", *args.prompts,
           "--generate-config", str(config_path), "--num-threads", str(args.threads), "--out", str(run_dir)]
    subprocess.run(cmd, check=True)
    results = json.loads((run_dir / "results.json").read_text())
    ious = []
    print("| prompt | IoU | Chamfer | normals | 3D fit | outside largest piece |")
    print("|---|---|---|---|---|---|")
    for run in results["runs"]:
        if run.get("geometry_empty"):  # collapsed to nothing: IoU 0, as evaluate's summary counts it
            ious.append(0.0)
            print(f"| {run['prompt']} | 0.000 (empty) | – | – | – | – |")
            continue
        g = run["geometry"]
        ious.append(g["iou"])
        print(f"| {run['prompt']} | {g['iou']:.3f} | {g['chamfer']:.3f} | {g['normal_consistency']:.2f} | "
              f"{g['template']['shape']} | {g['outside_largest_component']:.3f} |")
    print(f"| **mean** ({args.name}: {' '.join(args.changes) or 'default preset'}) | **{sum(ious) / len(ious):.3f}** "
          f"| | | | |")


if __name__ == "__main__":
    main()
