"""The app without a browser: input checks, the job queue of CLI subprocesses, run views, history.

None of this needs gradio (the app's core is importable and tested without the extra)."""

import json
import time
import zipfile

import imageio.v3 as iio
import numpy as np
import pytest
import trimesh
import yaml

from dreamfusion3d.app import AppConfig
from dreamfusion3d.app.inputs import check_image, check_int, check_prompt, check_seed
from dreamfusion3d.app.jobs import ACTIVE, JobQueue
from dreamfusion3d.app.runs import checkpoint_step, read_log
from dreamfusion3d.app.submit import example_prompts, presets_offered, resume, submit_generate, submit_image
from dreamfusion3d.app.view import history, view_run
from dreamfusion3d.cli import main
from dreamfusion3d.utils.errors import UserError
from dreamfusion3d.world.captions import TRAIN_COLORS, TRAIN_SHAPES


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_bad_inputs_are_one_sentence_and_write_nothing(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    huge = tmp_path / "huge.png"
    with huge.open("wb") as f:
        f.truncate(21 * 2**20)
    good = tmp_path / "ok.png"
    iio.imwrite(good, np.full((8, 8, 3), 200, np.uint8))
    before = _listing(tmp_path)
    cases = [
        (lambda: check_prompt("   "), "prompt is empty"),
        (lambda: check_prompt("x" * 301), "under 300"),
        (lambda: check_int(0, "Steps", 1, 100), "between 1 and 100"),
        (lambda: check_int(101, "Steps", 1, 100), "out of range"),
        (lambda: check_int(2.5, "Steps", 1, 100), "whole number"),
        (lambda: check_int(None, "Steps", 1, 100), "empty"),
        (lambda: check_int("many", "Steps", 1, 100), "whole number"),
        (lambda: check_seed(-1), "seed"),
        (lambda: check_image(None, 20), "No image"),
        (lambda: check_image(text, 20), "not an image"),
        (lambda: check_image(huge, 20), "limit is 20 MB"),
    ]
    for call, words in cases:
        with pytest.raises(UserError, match=words):
            call()
    assert check_prompt("  a   red cube ") == "a red cube"
    assert check_int(7.0, "Steps", 1, 100) == 7 and check_image(good, 20) == good
    assert _listing(tmp_path) == before


def test_log_parsing_reads_the_last_bar_stage_and_error(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("[dreamfusion3d] prompt 'a red cube' -> out\rgenerate: a red cube:   3%|▎ | 2/60 [00:01<00:30]"
                   "\rgenerate: a red cube:  20%|██ | 12/60 [00:02<00:10, 5.0step/s]\n"
                   "[dreamfusion3d] extracting the mesh\rfield on grid:  50%|█ | 1.05M/2.10M [00:01<00:01]\n"
                   "dreamfusion3d: error: cannot write to output folder out: Permission denied\n")
    got = read_log(log)
    assert (got.step, got.total) == (12, 60)
    assert got.stage == "extracting the mesh" and got.error.startswith("cannot write to output folder")


def test_page_submissions_are_checked_before_anything_is_written(tmp_path, tiny_preset):
    runs = tmp_path / "runs"
    cfg = AppConfig(runs=runs, presets=(str(tiny_preset),), max_steps=50)
    presets = presets_offered(cfg)
    assert list(presets) == ["tiny"] and presets["tiny"][1] == 6
    jobs = JobQueue(runs)
    text = tmp_path / "photo.jpg"
    text.write_text("not a photo")
    bad = [
        lambda: submit_generate(jobs, cfg, presets, "", "tiny", 6, 0),
        lambda: submit_generate(jobs, cfg, presets, "a red cube", "tiny", 51, 0),
        lambda: submit_generate(jobs, cfg, presets, "a red cube", "no-such-preset", 6, 0),
        lambda: submit_image(jobs, cfg, "novel-view", text, 2, 0),
        lambda: submit_image(jobs, cfg, "novel-view", None, 2, 0),
    ]
    for call in bad:
        with pytest.raises(UserError):
            call()
    jobs.shutdown()
    assert not runs.exists() and jobs.jobs() == []


def test_the_app_command_refuses_bad_options_in_one_line(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    assert main(["app", "--runs", str(runs), "--max-jobs", "0"]) == 2
    assert main(["app", "--runs", str(runs), "--presets", "no-such-preset"]) == 2
    assert "no-such-preset" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    assert main(["app", "--runs", str(runs)]) == 2
    assert "pip install 'dreamfusion3d[app]'" in capsys.readouterr().err
    assert not runs.exists()


def test_example_prompts_use_the_bundled_vocabulary():
    prompts = example_prompts()
    assert len(set(prompts)) == len(prompts) >= 5
    for prompt in prompts:
        *_, colour, shape = prompt.split()
        assert colour in TRAIN_COLORS and shape in TRAIN_SHAPES
    assert {p.split()[-1] for p in prompts} == set(TRAIN_SHAPES)


@pytest.mark.slow
def test_a_job_is_a_cli_run_and_the_queue_keeps_order(tmp_path, tiny_preset):
    runs = tmp_path / "runs"
    cfg = AppConfig(runs=runs, presets=(str(tiny_preset),), preview_every=2)
    presets = presets_offered(cfg)
    jobs = JobQueue(runs, max_parallel=1)
    first = submit_generate(jobs, cfg, presets, " a red  cube", "tiny", 6, 3)
    second = submit_generate(jobs, cfg, presets, "a red cube", "tiny", 6, 3)
    assert first != second
    assert jobs.get(second).state == "queued"  # one at a time: the second waits for the first
    assert jobs.stop(second) and jobs.get(second).state == "stopped"
    done = jobs.wait(first, timeout=300)
    assert done.state == "done", (done.error, jobs.log_path(first).read_text()[-2000:])
    jobs.shutdown()
    assert not (runs / second).exists()  # a job stopped in the queue never ran

    view = view_run(jobs, first)
    assert view.state == "done" and view.metrics["steps"] == 6
    assert [caption for _, caption in view.previews] == ["step 2", "step 4", "step 6"]
    mesh = trimesh.load(view.files.glb, force="mesh")
    assert len(mesh.faces) > 0
    with zipfile.ZipFile(view.files.obj_zip) as zf:
        assert "mesh.obj" in zf.namelist()
        zf.extractall(tmp_path / "unzipped")
    assert len(trimesh.load(tmp_path / "unzipped" / "mesh.obj", force="mesh").faces) == len(mesh.faces)
    written = yaml.safe_load((runs / first / "config.yaml").read_text())
    assert written["command"] == "generate" and written["prompt"] == "a red cube"
    assert (written["steps"], written["seed"], written["output"]["preview_every"]) == (6, 3, 2)

    # A restarted app (a new queue on the same folder) lists both runs; so it does a CLI run.
    again = JobQueue(runs)
    labels = {run_id: label for label, run_id in history(again, ("generate",))}
    assert labels[first].endswith("a red cube · done") and labels[second].endswith("· stopped")
    again.shutdown()
    (runs / ".app" / "jobs" / f"{first}.json").unlink()
    cli_only = JobQueue(runs)
    assert {r: lab for lab, r in history(cli_only, ("generate",))}[first].endswith("· done")
    cli_only.shutdown()


@pytest.mark.slow
def test_stop_leaves_a_checkpoint_that_resume_continues(tmp_path, tiny_preset):
    runs = tmp_path / "runs"
    cfg = AppConfig(runs=runs, presets=(str(tiny_preset),), max_steps=100000)
    jobs = JobQueue(runs)
    run_id = submit_generate(jobs, cfg, presets_offered(cfg), "a red cube", "tiny", 100000, 0)
    folder = runs / run_id
    deadline = time.time() + 300  # poll for the first checkpoint (generous: the machine may be busy)
    while checkpoint_step(folder) is None and jobs.get(run_id).state in ACTIVE and time.time() < deadline:
        time.sleep(0.2)
    assert jobs.stop(run_id)
    stopped = jobs.wait(run_id, timeout=120)
    assert stopped.state == "stopped", jobs.log_path(run_id).read_text()[-2000:]
    view = view_run(jobs, run_id)
    step = checkpoint_step(folder)
    assert view.resumable and f"at step {step}" in view.status and not (folder / "metrics.json").exists()

    # Shorten the run to 4 more steps (a resumed run continues with its folder's config), then
    # resume it as the page's Resume button does: `generate --resume FOLDER`.
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["steps"] = step + 4
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    resume(jobs, run_id)
    done = jobs.wait(run_id, timeout=300)
    jobs.shutdown()
    assert done.state == "done", jobs.log_path(run_id).read_text()[-2000:]
    assert json.loads((folder / "metrics.json").read_text())["steps"] == step + 4


def test_a_failing_job_shows_the_cli_error(tmp_path):
    runs = tmp_path / "runs"
    jobs = JobQueue(runs)
    run_id = jobs.new_id("bad")
    jobs.submit(run_id, "generate", ["generate", "--prompt", "a red cube", "--out", str(runs / run_id),
                                     "--prior.model", str(tmp_path / "no-such-prior")])
    job = jobs.wait(run_id, timeout=300)
    jobs.shutdown()
    assert job.state == "failed" and job.returncode == 2
    view = view_run(jobs, run_id)
    assert view.state == "failed" and "no-such-prior" in view.status and not view.resumable


@pytest.mark.slow
def test_a_novel_view_job_shows_its_views(tmp_path):
    runs = tmp_path / "runs"
    image = tmp_path / "red disc.png"
    yy, xx = np.mgrid[:64, :64]
    pixels = np.full((64, 64, 3), 255, np.uint8)
    pixels[(yy - 32) ** 2 + (xx - 32) ** 2 < 300] = (220, 30, 30)
    iio.imwrite(image, pixels)
    jobs = JobQueue(runs)
    run_id = submit_image(jobs, AppConfig(runs=runs), "novel-view", image, 2, 0)
    job = jobs.wait(run_id, timeout=300)
    jobs.shutdown()
    assert job.state == "done", jobs.log_path(run_id).read_text()[-2000:]
    view = view_run(jobs, run_id)
    assert view.kind == "novel-view" and view.state == "done" and view.label == "red disc.png"
    assert len(view.files.views) == len(view.metrics["targets"]) == 8
    assert view.files.turntable.name == "turntable.gif" and view.files.sheet.name == "views.png"
    assert history(jobs, ("novel-view",))[0][1] == run_id and history(jobs, ("generate",)) == []


@pytest.mark.slow
def test_an_image_to_3d_job_gives_a_mesh_the_viewer_can_open(tmp_path):
    runs = tmp_path / "runs"
    image = tmp_path / "red disc.png"
    yy, xx = np.mgrid[:64, :64]
    pixels = np.full((64, 64, 3), 255, np.uint8)
    pixels[(yy - 32) ** 2 + (xx - 32) ** 2 < 300] = (220, 30, 30)
    iio.imwrite(image, pixels)
    jobs = JobQueue(runs)
    run_id = submit_image(jobs, AppConfig(runs=runs), "image-to-3d", image, 2, 0)
    job = jobs.wait(run_id, timeout=600)
    jobs.shutdown()
    assert job.state == "done", jobs.log_path(run_id).read_text()[-2000:]
    view = view_run(jobs, run_id)
    assert view.kind == "image-to-3d" and view.state == "done" and view.label == "red disc.png"
    mesh = trimesh.load(view.files.glb, force="mesh")
    assert len(mesh.faces) > 0
    assert history(jobs, ("image-to-3d",))[0][1] == run_id
