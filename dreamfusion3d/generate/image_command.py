"""``dreamfusion3d image-to-3d --image IMG --out DIR``: one 3D object per input image.

Every input is read and cut out (novel-view's checks: not an image, too small, no object, …)
before anything is written; a bad one is one line on stderr and exit 2. One image writes into
OUT; several write into OUT/<image stem>/. Resuming, Ctrl-C and the outputs are those of
``generate`` (the same loop). ``--prompt TEXT`` adds a text prior's SDS (:mod:`.joint`); the prompt
is checked and the text prior loaded before anything is written, and config.yaml keeps the prompt
for ``--resume``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..guidance import load_prior
from ..guidance.config import IMAGE_KINDS
from ..utils.config import resumed_config, save_config
from ..utils.device import resolve_device
from ..utils.errors import UserError
from ..utils.logging import info
from ..utils.outdir import has_checkpoint, output_folder
from .checks import claim_folder
from .image import ImageGeneration, ImageTo3DConfig
from .joint import check_text_guidance
from .loop import slugify

COMMAND = "image-to-3d"


def read_inputs(cfg: ImageTo3DConfig) -> list[tuple[str, object]]:
    """(name, pixels) per input image, each validated as ``novel-view`` validates its input."""
    from ..novel_view.images import frame_input, read_image

    if not cfg.image:
        raise UserError("no input image: pass --image IMG (or several)")
    inputs, names = [], set()
    for path in cfg.image:
        pixels = read_image(path)
        try:
            # finds the object (or says there is none) before any writing
            frame_input(pixels, 8, recentre=cfg.reference.recentre)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from exc
        name = slugify(Path(path).stem, 60)
        if name in names:
            raise UserError(f"two input images would share the output folder {name!r}; rename one")
        names.add(name)
        inputs.append((name, pixels))
    return inputs


def _check_config(cfg: ImageTo3DConfig) -> None:
    if cfg.prior.kind not in IMAGE_KINDS:
        raise UserError(f"image-to-3d needs an image-conditioned prior ({', '.join(IMAGE_KINDS)}), "
                        f"not {cfg.prior.kind!r}")
    if cfg.steps < 0 or cfg.batch_size < 1 or cfg.resolution < 8 or cfg.reference.resolution < 8:
        raise UserError("need --steps >= 0, --batch-size >= 1, --resolution and --reference.resolution >= 8")
    cfg.prompt = check_text_guidance(cfg.prompt, cfg.text_prior)


def run(cfg: ImageTo3DConfig) -> None:
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    if cfg.resume is not None:
        cfg = resumed_config(ImageTo3DConfig, cfg.resume, COMMAND, "an image-to-3d run")  # with the images it was started with
        if cfg.prompt == "":  # runs from before --prompt existed saved `prompt: ''` for "no prompt"
            cfg.prompt = None
    _check_config(cfg)
    device = resolve_device(cfg.device, prior_kind=cfg.prior.kind)  # checked before anything is written
    inputs = read_inputs(cfg)
    multi, resuming = len(inputs) > 1, cfg.resume is not None
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    jobs = [(name, pixels, cfg.out / name if multi else cfg.out) for name, pixels in inputs][rank::world]
    prior = load_prior(cfg.prior, device=device)  # a bad model folder fails before writing
    text_prior = None if cfg.prompt is None else load_prior(cfg.text_prior, device=device)  # likewise
    with output_folder(cfg.out, overwrite=cfg.overwrite, resume=resuming, started=has_checkpoint):
        if not resuming:
            save_config(cfg, cfg.out / "config.yaml", command=COMMAND)  # keeps --device as given (auto)
        cfg.device = str(device)
        for name, pixels, out in jobs:
            if multi:
                claim_folder(out, resuming)
            gen = ImageGeneration(cfg, f"image:{name}", pixels, out, prior=prior, text_prior=text_prior)
            info(f"image {name!r} -> {out}" + ("" if cfg.prompt is None else f" (with the prompt {cfg.prompt!r})"))
            if resuming:
                gen.resume_latest()
            metrics = gen.run()
            info(f"done in {metrics['train_seconds_this_session']:.0f} s (input view PSNR "
                 f"{metrics['reference_view']['psnr']:.1f} dB): " + ", ".join(metrics["outputs"]))
