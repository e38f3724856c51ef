"""Side by side in one process: the default SDS step with and without each speed lever.

    python scripts/bench_step_levers.py [--rounds 15] [--threads 1] [--json out.json]

Levers: ``bf16`` = the bundled prior in bfloat16 + channels-last (what ``prior.dtype: auto``
picks on a CPU with AMX; off = float32), ``jacobian`` = the SDF's normals and eikonal term through
the dense grid's closed-form Jacobian (off = autograd's grid_sample double backward). Each
setting is its own ``Generation`` of the default preset with the learning rates at 0 (the field
stays as initialised, as in ``bench``), lambertian shading; the settings take turns step by step
(the order rotates every round) and each step is timed by ``time.process_time`` (CPU time of this
process), which a busy machine disturbs far less than wall time. Prints the median per setting
and its ratio to the setting with both levers off; then the two pieces the levers change, timed
the same way: the SDF field path of a step (normals at 25 k points + the eikonal term at 4 096,
forward and backward) with and without the closed-form Jacobian, and the prior's ε prediction
(batch 4: conditional + unconditional of 2 views) in float32 and bfloat16, with their relative
L2 difference.
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


def alternate(calls: dict, rounds: int) -> dict[str, float]:
    """Median CPU time of each callable, calling them in turn (order rotating) ``rounds`` times."""
    names, times = list(calls), {name: [] for name in calls}
    for r in range(rounds + 2):  # two warm-up rounds
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.process_time()
            calls[name]()
            if r >= 2:
                times[name].append(time.process_time() - start)
    return {name: statistics.median(t) for name, t in times.items()}


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
    names = list(settings)

    def step(name: str):
        def run() -> None:
            with jacobian_path(settings[name][1]):
                gens[name].train_step()
        return run

    medians = alternate({name: step(name) for name in names}, args.rounds)
    base = medians[names[0]]
    rows = {}
    for name in names:
        med = medians[name]
        rows[name] = {"median_s": med, "ratio": med / base, "prior_dtype": dtypes[name]}
        print(f"{name:<20} (prior {dtypes[name]:<8}) {1e3 * med:7.1f} ms  ×{med / base:.2f}")
    print(f"{args.rounds} rounds, {args.threads} thread(s), CPU time per step, settings in turn")

    field = gens[names[0]].representation.field
    gen_pts = torch.Generator().manual_seed(0)
    samples, box = (torch.rand(n, 3, generator=gen_pts) * 2 - 1 for n in (25_000, 4_096))

    def field_path(on: bool):
        def run() -> None:
            with jacobian_path(on):
                out = field.query(samples, with_normals=True)
                _, grad, _ = field.sdf_and_gradient(box, create_graph=True)
                loss = out.density.sum() + out.normals.sum() + ((grad.norm(dim=-1) - 1) ** 2).mean()
                loss.backward()
        return run

    full, half = gens["float32, autograd"].prior, gens["bf16, autograd"].prior
    x = torch.rand(4, 3, full.resolution, full.resolution, generator=gen_pts) * 2 - 1
    t = torch.tensor([800, 700, 800, 700])
    emb = full.encode_text([args.prompt, args.prompt, "", ""])
    half_name = dtypes["bf16, autograd"]
    with torch.no_grad():
        eps_full = full.predict_noise(x, t, emb)
        eps_rel = float((half.predict_noise(x, t, emb) - eps_full).norm() / eps_full.norm())
        prior = alternate({"float32": lambda: full.predict_noise(x, t, emb),
                           half_name: lambda: half.predict_noise(x, t, emb)}, args.rounds)
    fields = alternate({"autograd": field_path(False), "jacobian": field_path(True)}, args.rounds)
    print(f"field path (25k normals + 4096 eikonal, fwd+bwd): autograd {1e3 * fields['autograd']:.1f} ms, "
          f"closed-form Jacobian {1e3 * fields['jacobian']:.1f} ms")
    print(f"prior eps prediction (batch 4): float32 {1e3 * prior['float32']:.1f} ms, {half_name} "
          f"{1e3 * prior[half_name]:.1f} ms; relative L2 difference {eps_rel:.4f}")
    rows["pieces"] = {"field_path_s": fields, "prior_s": prior, "eps_relative_l2": eps_rel}
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    tmp.cleanup()


if __name__ == "__main__":
    main()
