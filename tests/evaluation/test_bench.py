"""`dreamfusion3d bench` on a tiny setting: every figure present, positive and consistent."""

import json

from dreamfusion3d.cli import main


def test_bench_reports_every_figure(tmp_path, tiny_generate_preset, capsys):
    out = tmp_path / "b"
    assert main(["bench", "--generate-config", str(tiny_generate_preset), "--out", str(out), "--repeats", "1",
                 "--warmup", "1", "--resolutions", "16", "24", "--samples-per-ray", "16", "32",
                 "--matmul-size", "128", "--quiet"]) == 0
    r = json.loads((out / "bench.json").read_text())
    stages = ("sampling", "field", "compositing", "prior_unet", "backward", "optimizer")
    assert all(r["stages_s"][k] > 0 for k in stages)
    assert 0.5 < sum(r["stages_fraction"].values()) <= 1.0 + 1e-6
    assert r["step_s"] >= sum(r["stages_s"][k] for k in stages)
    for k in ("rays_per_s", "samples_per_s", "flops_per_step", "achieved_flops_per_s"):
        assert r[k] > 0, k
    assert r["rays_per_step"] == 16 * 16  # batch 1 at 16 px
    assert r["rays_per_s"] == r["rays_per_step"] / r["step_s"]
    assert 0 < r["fraction_of_matmul_peak"] <= 1
    assert r["matmul_peak"]["flops_per_s"] > 0 and r["matmul_peak"]["dtype"] == "float32"
    if r["prior_dtype"] == "float32":
        assert r["matmul_peak_prior_dtype"] is None
    else:  # bfloat16 on an AMX CPU: that dtype's peak is measured too
        assert r["matmul_peak_prior_dtype"]["dtype"] == r["prior_dtype"] and r["matmul_peak_prior_dtype"]["flops_per_s"] > 0
    assert r["memory"]["process_peak_rss_mb"] > 0 and r["occupancy_update"]["full_update_s"] > 0
    res, spr = r["scaling_resolution"], r["scaling_samples_per_ray"]
    assert set(res) == {"16", "24"} and res["16"]["ratio"] == 1.0 and res["24"]["ratio"] > 0
    assert set(spr) == {"16", "32"} and spr["32"]["ratio"] == 1.0
    assert spr["16"]["num_samples"] < spr["32"]["num_samples"]  # fewer samples along each ray
    assert res["24"]["num_samples"] > res["16"]["num_samples"]
    assert r["machine"]["torch"] and r["machine"]["cpu_count"] >= 1
    assert (out / "config.yaml").is_file()
    assert "SDS step" in capsys.readouterr().out


def test_bench_bad_input(tmp_path, capsys):
    assert main(["bench", "--out", str(tmp_path / "b"), "--repeats", "0"]) == 2
    assert "--repeats" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_bench_profile_writes_op_tables(tmp_path, tiny_generate_preset, capsys):
    out = tmp_path / "p"
    assert main(["bench", "--generate-config", str(tiny_generate_preset), "--out", str(out), "--repeats", "1",
                 "--warmup", "1", "--stages-only", "--profile", "--matmul-size", "64", "--quiet"]) == 0
    p = json.loads((out / "profile.json").read_text())
    assert p["phase_ms_per_step"]["forward"] > 0 and p["phase_ms_per_step"]["backward"] > 0
    assert {"sampling", "field", "prior_unet", "optimizer"} <= set(p["stage_ms_per_step"])
    assert p["ops"] and p["backward_nodes"] and (out / "profile.txt").is_file()
    r = json.loads((out / "bench.json").read_text())
    assert len(r["scaling_resolution"]) == 1 and len(r["scaling_samples_per_ray"]) == 1
