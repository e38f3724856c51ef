"""Side by side in one process: the default SDS step with and without each speed lever.

    python scripts/bench_step_levers.py [--rounds 15] [--threads 1] [--json out.json]

Levers: ``bf16`` = the bundled prior in bfloat16 + channels-last (what ``prior.dtype: auto``
picks on a CPU with AMX; off = float32), ``jacobian`` = the SDF's normals and eikonal term through
the dense grid's closed-form Jacobian (off = autograd's grid_sample double backward). Each
setting is its own ``Generation`` of the default preset with the learning rates at 0 (the field
stays as initialised, as in ``bench``), lambertian shading; the settings take turns step by step
(the order rotates every round) and each step is timed by ``time.process_time`` (CPU time of this
process), which a busy machine disturbs far less than wall time. Prints the median per setting
and its ratio to the setting with both levers off.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def jacobian_path(on: bool):
    """Off: hide the dense grid's ``value_and_jacobian`` so the SDF falls back to autograd."""
    from dreamfusion3d.fields.encoding import DenseGridEncoding

    method = DenseGridEncoding.value_and_jacobian
    if not on:
        del DenseGridEncoding.value_and_jacobian
    try:
        yield
    finally:
        DenseGridEncoding.value_and_jacobian = method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prompt", default="a red cube")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from dreamfusion3d.generate.config import GenerateConfig
    from dreamfusion3d.generate.loop import Generation
    from dreamfusion3d.utils.config import load_preset
    from dreamfusion3d.utils.logging import set_quiet

    set_quiet(True)
    settings = {"float32, autograd": (False, False), "float32, jacobian": (False, True),
                "bf16, autograd": (True, False), "bf16, jacobian": (True, True)}
    gens, tmp = {}, tempfile.TemporaryDirectory()
    for name, (bf16, _) in settings.items():
        cfg = load_preset(GenerateConfig, "default", command="generate")
        cfg.prior.dtype = "auto" if bf16 else "float32"
        gen = Generation(cfg, args.prompt, Path(tmp.name) / name.replace(", ", "_"))
        for group in gen.optimizer.param_groups:  # the same field in every step, as in `bench`
            group["lr"] = group["base_lr"] = 0.0
        object.__setattr__(gen, "_shading", lambda: "lambertian")
        gen.representation.update(0)
        gen.representation.config.occupancy_update_every = 1 << 30
        gen.step = 1
        gens[name] = gen
    dtypes = {name: str(gen.prior.dtype).replace("torch.", "") for name, gen in gens.items()}
    times: dict[str, list[float]] = {name: [] for name in settings}
    names = list(settings)
    for r in range(args.rounds + 2):  # two warm-up rounds
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            with jacobian_path(settings[name][1]):
                start = time.process_time()
                gens[name].train_step()
                if r >= 2:
                    times[name].append(time.process_time() - start)
    base = statistics.median(times[names[0]])
    rows = {}
    for name in names:
        med = statistics.median(times[name])
        rows[name] = {"median_s": med, "ratio": med / base, "prior_dtype": dtypes[name]}
        print(f"{name:<20} (prior {dtypes[name]:<8}) {1e3 * med:7.1f} ms  ×{med / base:.2f}")
    print(f"{args.rounds} rounds, {args.threads} thread(s), CPU time per step, settings in turn")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    tmp.cleanup()


if __name__ == "__main__":
    main()
