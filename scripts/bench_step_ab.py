"""The default SDS step with some modules as they are in the working tree and as they were at a git
revision, side by side in one process.

    python scripts/bench_step_ab.py REV MODULE.py [MODULE.py ...] [--rounds 20] [--threads 2]
        [--checkpoint RUN/checkpoints/final]

For each MODULE (a path in the package, e.g. ``dreamfusion3d/fields/trilinear.py``) the file at REV
is loaded as a second module, and while REV's objects are built and REV's step runs, every function
and class that the tree's module defines is replaced by REV's namesake wherever the package refers to
it (module attributes and module-level registries). Two ``Generation``s
of the default preset (learning rates 0, lambertian shading, occupancy grid frozen after one
refresh, as in ``bench``) take turns step by step, the order flipping every round, so that both see
the same machine; each step is timed by wall clock with several threads, by CPU time with one.
``--checkpoint`` loads a finished run's weights into both (a late-training state: small β, a
tight occupancy grid) instead of the initial sphere. Prints the median step of each and their
ratio. Only modules whose names both versions define are swapped; the rest of the tree runs as is.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
import types
from contextlib import contextmanager
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def load_revision(rev: str, path: str, name: str) -> types.ModuleType:
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{path}"], check=True, capture_output=True,
                            text=True).stdout
    module_name = path[:-3].replace("/", ".")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder) / Path(path).name
        tmp.write_text(source)
        spec = importlib.util.spec_from_file_location(name, tmp)
        module = importlib.util.module_from_spec(spec)
        module.__package__ = module_name.rpartition(".")[0]  # its relative imports resolve in the tree's package
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


def import_package() -> None:
    """Import every module of the package (but the web app and `__main__`), so that :func:`swaps` sees every
    reference: one imported later, lazily, would keep the tree's object."""
    import pkgutil

    import dreamfusion3d

    for info in pkgutil.walk_packages(dreamfusion3d.__path__, "dreamfusion3d."):
        if not info.name.startswith("dreamfusion3d.app") and not info.name.endswith("__main__"):
            try:
                importlib.import_module(info.name)
            except ImportError:  # an optional dependency that is missing
                pass


def swaps(tree: types.ModuleType, old: types.ModuleType) -> list[tuple[object, str, object, object]]:
    """(holder, attribute, tree's object, REV's object) for every reference in the package to a
    function or class defined in ``tree`` that REV defines too."""
    defined = {name: obj for name, obj in vars(tree).items()
               if isinstance(obj, (types.FunctionType, type)) and getattr(obj, "__module__", None) == tree.__name__
               and hasattr(old, name)}
    out = []
    for module in list(sys.modules.values()):
        if module is None or not getattr(module, "__name__", "").startswith("dreamfusion3d"):
            continue
        for attr, value in list(vars(module).items()):
            for name, obj in defined.items():
                if value is obj:
                    out.append((module, attr, obj, getattr(old, name)))
                elif isinstance(value, dict):  # a registry: {name: class}
                    out += [(value, key, obj, getattr(old, name)) for key, v in list(value.items()) if v is obj]
    return out


def _set(holder, attr, value) -> None:
    if isinstance(holder, dict):
        holder[attr] = value
    else:
        setattr(holder, attr, value)


@contextmanager
def revision(table: list[tuple[object, str, object, object]]):
    for holder, attr, _, old in table:
        _set(holder, attr, old)
    try:
        yield
    finally:
        for holder, attr, new, _ in table:
            _set(holder, attr, new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev")
    parser.add_argument("modules", nargs="+")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--prompt", default="a red cube")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from dreamfusion3d.generate.config import GenerateConfig
    from dreamfusion3d.generate.loop import Generation
    from dreamfusion3d.representations import load_weights
    from dreamfusion3d.utils.config import load_preset
    from dreamfusion3d.utils.logging import set_quiet

    set_quiet(True)
    import_package()
    table = []
    for i, path in enumerate(args.modules):
        tree = importlib.import_module(path[:-3].replace("/", ".").removesuffix(".__init__"))  # a package: itself
        table += swaps(tree, load_revision(args.rev, path, f"_revision_module_{i}"))
    if not table:
        raise SystemExit("nothing to swap: the modules define no functions or classes that REV has too")
    print(f"swapped for {args.rev}: " + ", ".join(sorted({f'{getattr(h, "__name__", "registry")}.{a}' for h, a, _, _ in table})))
    gens, tmp = {}, tempfile.TemporaryDirectory()
    for name in ("tree", args.rev):
        cfg = load_preset(GenerateConfig, "default", command="generate")
        with revision(table if name == args.rev else []):  # REV's classes build REV's objects
            gen = Generation(cfg, args.prompt, Path(tmp.name) / name)
        if args.checkpoint is not None:
            load_weights(args.checkpoint, gen.representation)
        else:
            gen.representation.update(0)
        for group in gen.optimizer.param_groups:
            group["lr"] = group["base_lr"] = 0.0
        object.__setattr__(gen, "_shading", lambda: "lambertian")
        gen.representation.config.occupancy_update_every = 1 << 30
        gen.step = 1 if args.checkpoint is None else cfg.sdf.beta_steps  # keeps the checkpoint's final β
        gens[name] = gen
    clock = time.process_time if args.threads == 1 else time.perf_counter
    times: dict[str, list[float]] = {name: [] for name in gens}
    for r in range(args.rounds + 2):  # two warm-up rounds
        for name in (list(gens) if r % 2 == 0 else list(gens)[::-1]):
            with revision(table if name == args.rev else []):
                start = clock()
                gens[name].train_step()
                elapsed = clock() - start
            if r >= 2:
                times[name].append(elapsed)
    tree_s, rev_s = (statistics.median(times[name]) for name in gens)
    kind = "CPU" if args.threads == 1 else "wall"
    print(f"step ({kind}, median of {args.rounds}, {args.threads} thread(s)): tree {1e3 * tree_s:.1f} ms, "
          f"{args.rev} {1e3 * rev_s:.1f} ms, ratio {tree_s / rev_s:.3f}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
