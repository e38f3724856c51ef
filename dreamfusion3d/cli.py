"""The ``dreamfusion3d`` command: one tyro subcommand per capability.

Each subcommand is a dataclass config (its docstring and field docstrings become ``--help``)
plus a ``run(config)`` function. The registry below imports them lazily so that
``dreamfusion3d --help`` answers instantly. Global flags, accepted anywhere on the line:

* ``--config NAME|PATH`` loads a YAML preset (``NAME.yaml`` from ``./configs`` or the package's ``presets/``); flags override it.
* ``--quiet`` silences stage lines and progress bars.
* ``--debug`` shows the Python traceback of an error instead of one line.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Command:
    config: str  # "module:ConfigClass"
    run: str  # "module:function"
    summary: str


COMMANDS: dict[str, Command] = {
    # name: Command("dreamfusion3d.module:Config", "dreamfusion3d.module:run", "one line")
    "reconstruct": Command("dreamfusion3d.representations.nerf.reconstruct:ReconstructConfig", "dreamfusion3d.representations.nerf.reconstruct:run", "fit a NeRF to one object of a multi-view dataset and report held-out PSNR"),
    "make-dataset": Command("dreamfusion3d.world.dataset:MakeDatasetConfig", "dreamfusion3d.world.dataset:run", "render a multi-view dataset of procedural objects and meshes (NeRF-synthetic layout, captions, splits)"),
    "render": Command("dreamfusion3d.world.render_cli:RenderConfig", "dreamfusion3d.world.render_cli:run", "render procedural scenes or mesh files to PNGs, a contact sheet and a GIF"),
    "generate": Command(
        "dreamfusion3d.generate.config:GenerateConfig",
        "dreamfusion3d.generate.loop:run",
        "text -> 3D: optimise a NeRF against a diffusion prior (SDS), export meshes + turntable",
    ),
    "image-to-3d": Command("dreamfusion3d.generate.image:ImageTo3DConfig", "dreamfusion3d.generate.image_command:run", "image -> 3D: a NeRF that reproduces the input view, novel-view SDS for the rest; meshes + turntable"),
    "sample": Command("dreamfusion3d.guidance.sample:SampleConfig", "dreamfusion3d.guidance.sample:run", "draw 2D images from a diffusion prior (PNGs + grid) to check it before optimising 3D"),
    "export": Command("dreamfusion3d.export.command:ExportConfig", "dreamfusion3d.export.command:run", "mesh a NeRF run or a world object: GLB/OBJ/PLY with vertex colours or a baked texture"),
    "train-novel-view": Command("dreamfusion3d.novel_view.train:TrainNovelViewConfig", "dreamfusion3d.novel_view.train:run", "train the pose-conditioned novel-view diffusion model (3DiM) on multi-view datasets"),
    "novel-view": Command("dreamfusion3d.novel_view.infer:NovelViewConfig", "dreamfusion3d.novel_view.infer:run", "novel views of the object in one image (3DiM, stochastic conditioning), PNGs + turntable GIF"),
    "evaluate-novel-view": Command("dreamfusion3d.novel_view.evaluate:EvaluateNovelViewConfig", "dreamfusion3d.novel_view.evaluate:run", "PSNR/SSIM of novel views on held-out objects vs copy-the-input and single-view baselines"),
    "train-prior": Command(
        "dreamfusion3d.text_prior.train:TrainPriorConfig",
        "dreamfusion3d.text_prior.train:run",
        "train the bundled text-conditioned pixel diffusion prior on world renders",
    ),
    "train-classifier": Command(
        "dreamfusion3d.judge.train:TrainClassifierConfig",
        "dreamfusion3d.judge.train:run_train_classifier",
        "train the shape/colour evaluation classifier (the judge) on world renders",
    ),
    "evaluate": Command("dreamfusion3d.evaluation.evaluate:EvaluateConfig", "dreamfusion3d.evaluation.evaluate:run", "generate or read one object per prompt; R-precision, CLIP R-precision, IoU/Chamfer vs ground truth, Janus rate"),
    "bench": Command("dreamfusion3d.evaluation.bench:BenchConfig", "dreamfusion3d.evaluation.bench:run", "time one SDS step by stage; rays/s, samples/s, memory, matmul-peak fraction, resolution and sample scaling"),
    "evaluate-prior": Command(
        "dreamfusion3d.text_prior.evaluate:EvaluatePriorConfig",
        "dreamfusion3d.text_prior.evaluate:run_evaluate_prior",
        "sample a text prior per caption and report shape/colour accuracy (training words and paraphrases)",
    ),
    "app": Command("dreamfusion3d.app:AppConfig", "dreamfusion3d.app:run", "a local web page (Gradio, offline): type a prompt or drop an image, watch it form, turn the mesh in 3D"),
}


_ORDER = ("generate", "image-to-3d", "export", "sample", "novel-view", "reconstruct", "make-dataset", "render", "train-prior",
          "train-classifier", "evaluate-prior", "train-novel-view", "evaluate-novel-view", "evaluate", "bench")
COMMANDS = {**{k: COMMANDS[k] for k in _ORDER if k in COMMANDS}, **COMMANDS}


def _load(ref: str) -> Any:
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def _pop_global_flags(argv: list[str]) -> tuple[list[str], str | None, bool, bool]:
    rest: list[str] = []
    preset, quiet, debug = None, False, False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--quiet":
            quiet = True
        elif arg == "--debug":
            debug = True
        elif arg == "--config":
            if i + 1 >= len(argv):
                raise SystemExit(_fail("--config needs a preset name or YAML path"))
            preset = argv[i + 1]
            i += 1
        elif arg.startswith("--config="):
            preset = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return rest, preset, quiet, debug


def _fail(message: str) -> int:
    print(f"dreamfusion3d: error: {message}", file=sys.stderr)
    return 2


def _print_overview() -> None:
    width = max((len(n) for n in COMMANDS), default=0)
    lines = [
        "usage: dreamfusion3d COMMAND [--config PRESET] [--quiet] [--debug] [OPTIONS]",
        "",
        "Text to 3D by score distillation, novel views from one image, and mesh export.",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += [
        "",
        "global flags (anywhere on the line):",
        "  --config NAME|PATH  load a YAML preset (configs/NAME.yaml); flags given after it override it",
        "  --quiet             no stage lines or progress bars",
        "  --debug             show the Python traceback of an error",
        "",
        "`dreamfusion3d COMMAND --help` explains every option of a command.",
    ]
    print("\n".join(lines))


def _parse(name: str, cls: type, args: list[str], default: Any) -> Any:
    """Run tyro; turn its multi-line error panel into one line (``--help`` passes through)."""
    import tyro

    if any(a in ("-h", "--help") for a in args):
        return tyro.cli(cls, args=args, default=default, prog=f"dreamfusion3d {name}")
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            return tyro.cli(cls, args=args, default=default, prog=f"dreamfusion3d {name}")
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        raise SystemExit(_fail(f"{name}: {_one_line(captured.getvalue())} (see `dreamfusion3d {name} --help`)"))


def _one_line(panel: str) -> str:
    """Condense tyro's boxed error message to its key sentence (plus a suggestion, if any)."""
    lines = [ln.strip(" │╭╮╰╯─┃━┏┓┗┛") for ln in panel.splitlines()]
    lines = [ln for ln in lines if ln.strip("-") and not ln.startswith(("For full helptext", "usage:"))]
    body = " ".join(ln.strip() for ln in lines[1:] if not ln.startswith("Perhaps"))  # a wrapped sentence under the title
    message = next((ln for ln in lines if ":" in ln and not ln.startswith("Perhaps")), body or (lines[0] if lines else ""))
    for i, ln in enumerate(lines):
        if ln.startswith("Perhaps you meant") and i + 1 < len(lines):
            message += f"; did you mean {lines[i + 1].split()[0]}?"
            break
    return message or "invalid arguments"


def _close_progress_bars() -> None:
    """Close live tqdm bars so that a message printed next starts on its own line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()  # a closed bar ends its line (or clears it, with leave=False)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, preset, quiet, debug = _pop_global_flags(argv)
    if not rest or rest[0] in ("-h", "--help", "help"):
        _print_overview()
        return 0 if rest else 2
    if rest[0] in ("-V", "--version"):
        from . import __version__

        print(__version__)
        return 0
    name, args = rest[0], rest[1:]
    if name not in COMMANDS:
        return _fail(f"unknown command {name!r}; choose from: {', '.join(COMMANDS)}")

    from .utils.errors import UserError
    from .utils.logging import clear_pending, set_quiet

    set_quiet(quiet)
    clear_pending()
    command = COMMANDS[name]
    try:
        cls = _load(command.config)
        run: Callable[[Any], Any] = _load(command.run)
        default = None
        if preset is not None:
            from .utils.config import load_preset

            default = load_preset(cls, preset, command=name)
        config = _parse(name, cls, args, default)
        from .utils.validate import validate_config

        validate_config(name, config)
        run(config)
    except UserError as exc:
        if debug:
            raise
        return _fail(str(exc))
    except KeyboardInterrupt:
        _close_progress_bars()
        print("dreamfusion3d: interrupted", file=sys.stderr, flush=True)
        return 130
    return 0


def entrypoint() -> None:
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `dreamfusion3d --help | head`
        sys.exit(0)


if __name__ == "__main__":
    entrypoint()
