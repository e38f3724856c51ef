"""`dreamfusion3d evaluate` end to end on tiny runs, `--runs` on existing runs, and bad input."""

import json

import imageio.v3 as iio
import pytest

from dreamfusion3d.cli import main


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_generate_preset):
    """Two prompts generated from scratch: one of the world's, one it has no words for."""
    out = tmp_path_factory.mktemp("eval") / "e"
    args = ["evaluate", "--prompts", "a red cube", "a wooden chair", "--generate-config", str(tiny_generate_preset),
            "--out", str(out), "--views", "3", "--geometry-resolution", "32", "--quiet"]
    assert main(args) == 0
    return out, args


def test_outputs_and_figures(evaluated):
    out, _ = evaluated
    results = json.loads((out / "results.json").read_text())
    cube, chair = results["runs"]
    assert cube["prompt"] == "a red cube" and cube["target"]["shape"] == "cube" and cube["step"] == 6
    assert len(cube["predicted"]) == 3
    for k in ("shape", "color", "both"):
        assert 0.0 <= cube["classifier"][k] <= 1.0
        assert chair["classifier"][k] is None
    assert cube["classifier"]["both"] <= min(cube["classifier"]["shape"], cube["classifier"]["color"])
    g = cube["geometry"]
    assert 0.0 <= g["iou"] <= 1.0 and g["chamfer"] > 0 and 0 <= g["yaw_deg"] < 360
    assert "geometry" not in chair and any("vocabulary" in n for n in chair["notes"])
    s = results["summary"]
    assert s["prompts"] == 2 and s["classifier_both"] == cube["classifier"]["both"] and s["iou"] == g["iou"]
    assert s["multi_face_rate"] is None and s["geometry_runs"] == 1
    md = (out / "results.md").read_text()
    assert "| 1 | a red cube |" in md and "**overall**" in md and f"{g['iou']:.3f}" in md
    sheet = iio.imread(out / "contact_sheet.png")
    assert sheet.shape == (2 * (64 + 2) + 2, 3 * (64 + 2) + 2, 3)
    assert (out / "config.yaml").is_file() and (out / "runs" / "a-red-cube" / "mesh.glb").is_file()


def test_finished_runs_are_reused(evaluated):
    out, args = evaluated
    final = out / "runs" / "a-red-cube" / "checkpoints" / "final" / "model.safetensors"
    before = final.stat().st_mtime_ns
    first = json.loads((out / "results.json").read_text())
    assert main(args) == 2  # a non-empty --out needs --resume (or --overwrite)
    assert main(args + ["--resume"]) == 0
    assert final.stat().st_mtime_ns == before
    again = json.loads((out / "results.json").read_text())
    assert again["runs"][0]["classifier"] == first["runs"][0]["classifier"]  # same views, same judge


def test_interrupted_run_resumes(tmp_path, capsys, tiny_generate_preset):
    """A run with only a latest checkpoint is continued, not restarted."""
    import shutil

    out = tmp_path / "e"
    args = ["evaluate", "--prompts", "a blue cone", "--generate-config", str(tiny_generate_preset), "--out", str(out),
            "--views", "1", "--no-geometry", "--quiet"]
    assert main(args) == 0
    run = out / "runs" / "a-blue-cone"
    shutil.rmtree(run / "checkpoints" / "final")
    capsys.readouterr()
    assert main(args[:-1] + ["--resume"]) == 0  # not quiet: show the stage lines
    captured = capsys.readouterr()
    assert "resumed at step 6" in captured.out + captured.err
    trainer = json.loads((run / "checkpoints" / "final" / "representation.json").read_text())
    assert trainer["extra"]["step"] == 6


def test_runs_mode_with_clip(evaluated, tmp_path, tiny_clip):
    out, _ = evaluated
    dest = tmp_path / "r"
    assert main(["evaluate", "--runs", str(out / "runs"), "--out", str(dest), "--views", "2", "--clip", str(tiny_clip),
                 "--geometry-resolution", "32", "--quiet"]) == 0
    results = json.loads((dest / "results.json").read_text())
    assert sorted(r["prompt"] for r in results["runs"]) == ["a red cube", "a wooden chair"]
    hits = [r["clip_r_precision"] for r in results["runs"]]
    assert all(h in (0.0, 0.5, 1.0) for h in hits)  # 2 views per run
    assert results["summary"]["clip_r_precision"] == pytest.approx(sum(hits) / 2)
    assert "CLIP R@1" in (dest / "results.md").read_text()


def test_world_draws_sit_next_to_the_runs(evaluated, tmp_path):
    """``--world-draws``: the world's own cubes scored against the same reference, in the summary
    and as a table under the runs' (the chair has no world shape and adds no row)."""
    out, _ = evaluated
    dest = tmp_path / "w"
    assert main(["evaluate", "--runs", str(out / "runs"), "--out", str(dest), "--views", "1",
                 "--geometry-resolution", "24", "--world-draws", "2", "--quiet"]) == 0
    results = json.loads((dest / "results.json").read_text())
    w = results["summary"]["world_draws"]
    cube = w["by_shape"]["cube"]
    assert w["draws"] == 2 and set(w["by_shape"]) == {"cube"} and w["iou"] == cube["iou"]
    assert 0.5 < cube["iou_min"] <= cube["iou"] < 1.0 and cube["chamfer"] <= cube["chamfer_max"]
    md = (dest / "results.md").read_text()
    assert "The world's own objects" in md and f"| cube | {results['summary']['iou']:.3f} | {cube['iou']:.3f}" in md
    assert not (dest / "runs").exists()


@pytest.mark.parametrize("extra, message", [
    (["--runs", "/nonexistent/dir"], "no such folder"),
    (["--prompts-file", "/nonexistent/p.txt"], "does not exist"),
    (["--views", "0"], "--views"),
    (["--world-draws", "-1"], "--world-draws"),
    (["--runs", "{tmp}", "--quick"], "cannot be combined"),
])
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    assert main(["evaluate", "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_folder_without_runs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--runs", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no generate runs" in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.json").exists()
