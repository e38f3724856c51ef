"""The Gradio page: a tab per capability, each with its inputs, a live panel and a history list.

A one-second timer redraws the panel of the run a tab is watching from :func:`.view.view_run`,
sending only what changed (``gr.skip()`` for the rest), so the 3D viewer loads its GLB once.
"""

from __future__ import annotations

from functools import partial

import gradio as gr

from ..cli import COMMANDS
from ..utils.errors import UserError
from ..world.captions import TRAIN_COLORS, TRAIN_SHAPES
from . import AppConfig
from .jobs import JobQueue
from .submit import example_prompts, option_default, resume, submit_generate, submit_image
from .view import RunView, history, view_run

CSS = ".df-progress progress{width:100%;height:1.1em} .df-progress span{font-size:.95em} #t2d-message p{margin:0}"
THEME_FONTS = {"font": ["ui-sans-serif", "system-ui", "sans-serif"],  # local fonts: no font CDN
               "font_mono": ["ui-monospace", "monospace"]}
PRIOR_NOTE = (
    "The bundled CPU prior knows the small world it was trained on: five shapes ({shapes}) in seven "
    "colours ({colours}), so “a purple torus” works and “a corgi” does not. Open-ended prompts need "
    "the `sd` or `if` preset (Stable Diffusion, DeepFloyd IF) on a CUDA GPU."
)


class Panel:
    """The live part of a tab: progress, previews or views, viewer, turntable, downloads, metrics."""

    def __init__(self, prefix: str, mesh: bool):
        self.mesh = mesh
        with gr.Row():
            self.stop = gr.Button("Stop", visible=False, size="sm", elem_id=f"{prefix}-stop")
            self.resume = gr.Button("Resume", visible=False, size="sm", elem_id=f"{prefix}-resume")
        self.progress = gr.HTML("", elem_id=f"{prefix}-progress")
        self.gallery = gr.Gallery(label="progress previews (newest first)" if mesh else "views", columns=4,
                                  height=300, object_fit="contain", preview=True, elem_id=f"{prefix}-gallery", interactive=False)
        self.viewer = gr.Model3D(label="3D model (drag to turn)", height=380, elem_id=f"{prefix}-viewer",
                                 clear_color=(1.0, 1.0, 1.0, 1.0)) if mesh else None
        with gr.Row():
            self.turntable = gr.Image(label="turntable", type="filepath", interactive=False, height=220,
                                      elem_id=f"{prefix}-turntable")
            self.downloads = gr.File(label="downloads", file_count="multiple", interactive=False,
                                     elem_id=f"{prefix}-downloads")
        self.metrics = gr.JSON(label="metrics", elem_id=f"{prefix}-metrics")

    @property
    def outputs(self) -> list:
        return [c for c in (self.stop, self.resume, self.progress, self.gallery, self.viewer, self.turntable,
                            self.downloads, self.metrics) if c is not None]

    def updates(self, view: RunView | None, shown: dict) -> tuple[list, dict]:
        """Values for ``outputs``, skipping what ``shown`` says the page already has."""
        new = {"run": view.run_id if view else None}
        fresh = shown.get("run", "") != new["run"]  # "": nothing drawn yet
        if view is None:  # nothing watched: clear the panel once
            values = [gr.update(visible=False), gr.update(visible=False), ""] + [None] * (len(self.outputs) - 3)
            return (values if fresh else [gr.skip()] * len(self.outputs)), new
        html = view.progress_html()
        gallery = view.previews[::-1] if self.mesh else []
        if view.files is not None and not self.mesh:
            gallery = [(str(p), p.stem.split("_", 2)[-1]) for p in view.files.views]
        new.update(html=html, gallery=len(gallery), final=view.files is not None, stop=view.active,
                   resume=view.resumable)

        def changed(key):
            return fresh or shown.get(key) != new[key]

        values = [gr.update(visible=view.active) if changed("stop") else gr.skip(),
                  gr.update(visible=view.resumable) if changed("resume") else gr.skip(),
                  html if changed("html") else gr.skip(),
                  gallery if changed("gallery") else gr.skip()]
        final = changed("final")
        files = view.files
        if self.mesh:
            values.append((str(files.glb) if files and files.glb else None) if final else gr.skip())
        values += [(str(files.turntable) if files and files.turntable else None) if final else gr.skip(),
                   ([str(p) for p in files.downloads + ([files.sheet] if files.sheet else [])] if files else None)
                   if final else gr.skip(),
                   (view.metrics if files else None) if final else gr.skip()]
        return values, new


def _tab(jobs: JobQueue, prefix: str, kinds: tuple[str, ...], mesh: bool, inputs_fn, submit_fn, note: str = ""):
    """Inputs on the left (``inputs_fn`` builds them), the panel and the history on the right."""
    watched, shown = gr.State(None), gr.State({})
    with gr.Row():
        with gr.Column(scale=2):
            if note:
                gr.Markdown(note)
            inputs = inputs_fn()
            submit = gr.Button("Generate", variant="primary", elem_id=f"{prefix}-submit")
            message = gr.Markdown("", elem_id=f"{prefix}-message")
            past = gr.Dropdown(choices=history(jobs, kinds), value=None, label="past runs (pick one to reopen it)",
                               interactive=True, elem_id=f"{prefix}-history")
        with gr.Column(scale=3):
            panel = Panel(prefix, mesh)
    outs = panel.outputs + [past, shown]

    def refresh(run_id, seen):
        view = view_run(jobs, run_id) if run_id else None
        values, new = panel.updates(view, seen or {})
        runs = history(jobs, kinds)
        new["history"] = runs
        past_update = gr.update(choices=runs) if (seen or {}).get("history") != runs else gr.skip()
        return values + [past_update, new]

    def on_submit(*args):
        try:
            run_id = submit_fn(*args)
        except UserError as exc:
            return [f"**⚠ {exc}**", gr.skip()] + [gr.skip()] * len(outs)
        return [f"Submitted: run folder `{jobs.runs / run_id}`.", run_id] + refresh(run_id, {})

    def on_open(run_id):
        return [run_id, ""] + refresh(run_id, {})

    def on_stop(run_id):
        if run_id:
            jobs.stop(run_id)
        return refresh(run_id, {})

    def on_resume(run_id, seen):
        view = view_run(jobs, run_id) if run_id else None
        if view is None or not view.resumable:
            return refresh(run_id, seen)
        resume(jobs, run_id, view.label)
        return refresh(run_id, {})

    quick = {"show_progress": "hidden", "concurrency_limit": None}
    submit.click(on_submit, inputs, [message, watched] + outs, **quick)
    # .change, not .input: a Model3D filled by a dropdown's .input event never draws (gradio 6.31)
    past.change(on_open, [past], [watched, message] + outs, **quick)
    panel.stop.click(on_stop, [watched], outs, **quick)
    panel.resume.click(on_resume, [watched, shown], outs, **quick)
    gr.Timer(1.0).tick(refresh, [watched, shown], outs, **quick)


def build(cfg: AppConfig, jobs: JobQueue, presets: dict[str, tuple[str, int]]) -> gr.Blocks:
    first = next(iter(presets))

    def t2d_inputs():
        prompt = gr.Textbox(label="prompt", placeholder="a red cube", elem_id="t2d-prompt")
        gr.Examples([[p] for p in example_prompts()], inputs=[prompt], label="examples the CPU prior knows",
                    cache_examples=False)
        preset = gr.Dropdown(list(presets), value=first, label="preset", elem_id="t2d-preset")
        with gr.Row():
            steps = gr.Number(presets[first][1], label=f"steps (1-{cfg.max_steps})", precision=None,
                              elem_id="t2d-steps")
            seed = gr.Number(0, label="seed", precision=None, elem_id="t2d-seed")
        preset.change(lambda name: presets[name][1] if name in presets else gr.skip(), [preset], [steps])
        return [prompt, preset, steps, seed]

    def image_inputs(prefix: str, kind: str):
        steps_default = option_default(kind, "steps")
        image = gr.File(label="image (PNG/JPG, one object on a plain background)", file_types=["image"],
                        elem_id=f"{prefix}-image")
        with gr.Row():
            steps = gr.Number(steps_default, label="steps", precision=None, elem_id=f"{prefix}-steps",
                              visible=steps_default is not None)
            seed = gr.Number(0, label="seed", precision=None, elem_id=f"{prefix}-seed")
        return [image, steps, seed]

    note = PRIOR_NOTE.format(shapes=", ".join(TRAIN_SHAPES), colours=", ".join(TRAIN_COLORS))
    with gr.Blocks(title="dreamfusion3d", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown("## dreamfusion3d\nText → 3D by score distillation, novel views from one image. Each job "
                    f"runs the `dreamfusion3d` command and writes an ordinary run folder under `{jobs.runs}`.")
        with gr.Tab("Text → 3D", id="t2d"):
            _tab(jobs, "t2d", ("generate",), True, t2d_inputs, partial(submit_generate, jobs, cfg, presets), note)
        if "image-to-3d" in COMMANDS:  # shown once the command exists
            with gr.Tab("Image → 3D", id="i2d"):
                _tab(jobs, "i2d", ("image-to-3d",), True, partial(image_inputs, "i2d", "image-to-3d"),
                     partial(submit_image, jobs, cfg, "image-to-3d"))
        with gr.Tab("Novel views", id="nv"):
            _tab(jobs, "nv", ("novel-view",), False, partial(image_inputs, "nv", "novel-view"),
                 partial(submit_image, jobs, cfg, "novel-view"))
    return demo


def launch(demo: gr.Blocks, cfg: AppConfig, block: bool = True):
    demo.queue(default_concurrency_limit=None)
    return demo.launch(
        server_name=cfg.host, server_port=cfg.port, share=False, ssr_mode=False, mcp_server=False,
        enable_monitoring=False, allowed_paths=[str(cfg.runs.resolve())], max_file_size=int(cfg.max_upload_mb * 2**20),
        theme=gr.themes.Default(**THEME_FONTS), css=CSS, show_error=True, prevent_thread_lock=not block,
        footer_links=["settings"],
    )
