"""``dreamfusion3d bench``: where the time of one SDS step goes, in one run and one JSON.

It builds the generate components of a preset (renderer, prior, prompt processor, optimiser:
``Generation`` itself, so the timed step *is* ``Generation.train_step``) and times steps after a
warm-up. Stages are timed by wrapping the calls they are made of:

* sampling — ``renderer.sample`` (ray–box test + occupancy-grid march);
* field — ``renderer.field.query`` forward (encoding + MLP, normals by autograd when shaded);
* compositing — the rest of the render (shading, nerfacc weights and accumulation, background);
* prior UNet — the prior's model call inside the SDS loss (conditional + unconditional batch);
* sds other — the rest of the SDS call (image encoding, noising, guidance arithmetic);
* backward — ``loss.backward()`` (through compositing, field and normals);
* optimizer — ``Adam.step``; other — cameras, lights, regularisers.

FLOPs of a step come from ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and
convolutions, forward and backward), the machine's peak from a timed square float32
``torch.matmul``; the step's achieved FLOP/s over that peak is the *fraction of peak*. When the
prior runs in another dtype (bfloat16 on AMX CPUs, float16 on CUDA), that dtype's matmul peak is
measured and reported too.
Scaling: step time at each render resolution and each samples-per-ray setting
(``renderer.num_steps``) as ratios to the preset's own setting, measured in the same run, so
figures from noisy or different machines compare.

``--profile`` adds an op-by-op torch.profiler table of the timed steps, forward and backward apart
(:mod:`.profile`: profile.txt / profile.json / trace.json); ``--stages-only`` skips the scaling
settings. ``scripts/bench_compare.sh REV`` runs this bench against a git revision side by side.

The learning rates are set to zero so that every setting times the same field (the
blob-initialised one, its occupancy grid after the first update: the state of a run's first
steps); the occupancy refresh is timed once and reported amortised over its period.
"""

from __future__ import annotations

import datetime
import os
import platform
import resource
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from .. import kernels
from ..utils.config import load_preset, save_config, to_dict
from ..utils.device import resolve_device
from ..utils.errors import UserError
from ..utils.io import write_json_atomic
from ..utils.logging import info
from ..utils.outdir import check_output_folder, output_folder


@dataclass
class BenchConfig:
    """Time one SDS step of a generate preset by stage; throughput, memory, fraction of matmul peak, scaling."""

    out: Path = Path("outputs/bench")
    """Folder for bench.json and config.yaml (empty or new unless --overwrite)."""
    overwrite: bool = False
    """Replace a non-empty --out folder."""
    generate_config: str = "default"
    """Generate preset (name or YAML path) whose components are timed."""
    prompt: str = "a red cube"
    """Prompt of the timed steps."""
    prior_model: str | None = None
    """Override the preset's prior model folder or hub id."""
    field_kind: Literal["hashgrid", "dense"] | None = None
    """Override the preset's field encoding."""
    repeats: int = 5
    """Timed steps per setting (the median is reported)."""
    warmup: int = 2
    """Untimed steps before each setting."""
    resolutions: tuple[int, ...] = (32, 64, 128)
    """Render resolutions of the scaling test."""
    samples_per_ray: tuple[int, ...] = (32, 64, 128)
    """renderer.num_steps values (samples along the box diagonal) of the scaling test."""
    shading: Literal["albedo", "lambertian", "textureless"] = "lambertian"
    """Shading of the timed steps (lambertian: the most frequent one after the albedo warm-up; needs normals)."""
    matmul_size: int = 1024
    """Side of the square matrices of the matmul peak."""
    device: str | None = None
    """Torch device (default: the preset's)."""
    num_threads: int = 0
    """torch CPU threads (0: torch's default)."""
    profile: bool = False
    """Also profile --repeats steps op by op (torch.profiler, forward and backward): profile.txt
    (ops by self time), profile.json (the same as rows) and trace.json (Chrome trace)."""
    stages_only: bool = False
    """Skip the FLOP count, matmul peak and scaling settings: only the preset's stage times."""


class StageTimer:
    """Accumulates wall time of wrapped callables by stage name (synchronising CUDA around them)."""

    def __init__(self, device: torch.device):
        self.totals: dict[str, float] = defaultdict(float)
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def wrap(self, obj, attr: str, stage: str) -> None:
        fn = getattr(obj, attr)

        label = f"stage:{stage}"

        def timed(*args, **kwargs):
            self.sync()
            start = time.perf_counter()
            try:
                with torch.profiler.record_function(label):
                    return fn(*args, **kwargs)
            finally:
                self.sync()
                self.totals[stage] += time.perf_counter() - start

        object.__setattr__(obj, attr, timed)  # an instance attribute shadows the method

    def reset(self) -> None:
        self.totals.clear()


def matmul_peak(size: int, dtype: torch.dtype, device: torch.device, repeats: int = 5) -> dict:
    """FLOP/s of ``torch.matmul`` on two ``size``² matrices (median of ``repeats`` after a warm-up)."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    times = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.matmul(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {"size": size, "dtype": str(dtype).replace("torch.", ""), "seconds": seconds,
            "flops_per_s": 2.0 * size**3 / seconds}


class _GlobalOnly:
    """Stands in for FlopCounterMode's module tracker, whose backward hooks fail under the
    double backward of analytic normals (torch.autograd.grad inside the step); every count then
    goes to the "Global" total, which is all the bench reports."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


def _extra_flop_formulas() -> dict:
    """Ops the counter does not know: oneDNN's convolution with a prepacked weight (the bfloat16
    UNets' ``Conv2dCL``, :mod:`dreamfusion3d.diffusion.cpu_bfloat16`)."""
    from torch.utils.flop_counter import conv_flop_count

    def pointwise_conv(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)

    op = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)
    return {} if op is None else {op: pointwise_conv}


def count_flops(fn) -> float:
    """FLOPs of one call of ``fn`` (matmuls, convolutions, attention; forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=_extra_flop_formulas())
    counter.mod_tracker = _GlobalOnly()
    with counter:
        fn()
    return float(counter.get_total_flops())


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info_ = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
             "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "torch": torch.__version__,
             "python": platform.python_version(), "platform": platform.platform(),
             "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if torch.cuda.is_available():
        info_["gpu"] = torch.cuda.get_device_name()
    return info_


def _peak_memory_mb(device: torch.device) -> dict:
    out = {"process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if device.type == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def run(cfg: BenchConfig) -> None:
    check_output_folder(cfg.out, overwrite=cfg.overwrite)
    with output_folder(cfg.out, overwrite=cfg.overwrite):
        _bench(cfg)


def _bench(cfg: BenchConfig) -> None:
    from ..generate.config import GenerateConfig
    from ..generate.loop import Generation

    if cfg.repeats < 1 or cfg.warmup < 0:
        raise UserError(f"--repeats must be >= 1 and --warmup >= 0, got {cfg.repeats} and {cfg.warmup}")
    if not cfg.resolutions or any(r < 8 for r in cfg.resolutions):
        raise UserError(f"--resolutions must be at least 8 px each, got {cfg.resolutions}")
    if not cfg.samples_per_ray or any(n < 2 for n in cfg.samples_per_ray):
        raise UserError(f"--samples-per-ray values must be at least 2, got {cfg.samples_per_ray}")
    if cfg.matmul_size < 16:
        raise UserError(f"--matmul-size must be at least 16, got {cfg.matmul_size}")
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    gcfg = load_preset(GenerateConfig, cfg.generate_config, command="generate")
    if cfg.prior_model is not None:
        gcfg.prior.model = cfg.prior_model
    if cfg.field_kind is not None:
        gcfg.field.kind = cfg.field_kind
    if cfg.device is not None:
        gcfg.device = cfg.device
    gcfg.device = str(resolve_device(gcfg.device))
    t_start = time.time()
    gen = Generation(gcfg, cfg.prompt, cfg.out)
    device = gen.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for group in gen.optimizer.param_groups:  # time the same field in every setting
        group["base_lr"] = 0.0
    object.__setattr__(gen, "_shading", lambda: cfg.shading)
    renderer, rcfg = gen.representation, gen.representation.config  # volume-rendered geometries

    # The occupancy refresh: once in full (as at a run's start), then disabled while timing.
    timer = StageTimer(device)
    timer.sync()
    start = time.perf_counter()
    renderer.update(0)
    timer.sync()
    occupancy_s = time.perf_counter() - start
    update_every = rcfg.occupancy_update_every
    rcfg.occupancy_update_every = 1 << 30
    gen.step = 1

    timer.wrap(renderer, "sample", "sampling")
    timer.wrap(renderer.field, "query", "field")
    timer.wrap(gen.prior, "_model_output", "prior_unet")
    timer.wrap(gen.optimizer, "step", "optimizer")

    def measure() -> dict:
        """Median stage times of ``repeats`` steps after ``warmup`` steps at the current setting."""
        for _ in range(cfg.warmup):
            gen.train_step()
        rows = []
        for _ in range(cfg.repeats):
            timer.reset()
            before = dict(gen.timings)
            timer.sync()
            start = time.perf_counter()
            stats = gen.train_step()
            timer.sync()
            total = time.perf_counter() - start
            d = {k: gen.timings[k] - before[k] for k in gen.timings}
            t = timer.totals
            row = {
                "sampling": t["sampling"], "field": t["field"],
                "compositing": d["render"] - t["sampling"] - t["field"],
                "prior_unet": t["prior_unet"], "sds_other": max(0.0, d["prior"] - t["prior_unet"]),
                "backward": d["backward"] - t["optimizer"], "optimizer": t["optimizer"],
            }
            row["other"] = max(0.0, total - sum(row.values()) - d["occupancy"])  # timer noise can dip below 0
            row["step"] = total
            row["num_samples"] = stats.num_samples
            rows.append(row)
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        rays = gcfg.batch_size * gcfg.resolution**2
        med.update({"rays": rays, "rays_per_s": rays / med["step"], "samples_per_s": med["num_samples"] / med["step"]})
        return med

    base_res, base_spr = gcfg.resolution, rcfg.num_steps
    info(f"bench: {cfg.generate_config} preset, batch {gcfg.batch_size}, {base_res} px, {base_spr} samples/ray, "
         f"{cfg.shading} shading, {torch.get_num_threads()} threads")
    base = measure()

    if cfg.profile:
        from .profile import profile_steps

        profile_steps(gen.train_step, cfg.repeats, cfg.out, device)
    step_flops = count_flops(gen.train_step)
    dtype = getattr(gen.prior, "dtype", torch.float32)
    peak = matmul_peak(cfg.matmul_size, torch.float32, device)
    prior_peak = None if dtype == torch.float32 else matmul_peak(cfg.matmul_size, dtype, device)
    achieved = step_flops / base["step"]

    resolution_rows = {}
    for res in (() if cfg.stages_only else cfg.resolutions):
        gcfg.resolution = res
        resolution_rows[str(res)] = base if res == base_res else measure()
    gcfg.resolution = base_res
    spr_rows = {}
    for n in (() if cfg.stages_only else cfg.samples_per_ray):
        rcfg.num_steps = n
        spr_rows[str(n)] = base if n == base_spr else measure()
    rcfg.num_steps = base_spr

    resolution_rows.setdefault(str(base_res), base)
    spr_rows.setdefault(str(base_spr), base)

    def scaling(rows: dict, ref: dict) -> dict:
        return {k: {"step_s": r["step"], "ratio": r["step"] / ref["step"], "rays_per_s": r["rays_per_s"],
                    "samples_per_s": r["samples_per_s"], "num_samples": r["num_samples"]} for k, r in rows.items()}

    stages = ("sampling", "field", "compositing", "prior_unet", "sds_other", "backward", "optimizer", "other")
    result = {
        "machine": machine(),
        "setting": {"preset": cfg.generate_config, "prior": gcfg.prior.kind, "prior_model": gcfg.prior.model,
                    "field": gcfg.field.kind, "batch_size": gcfg.batch_size, "resolution": base_res,
                    "samples_per_ray": base_spr, "shading": cfg.shading, "repeats": cfg.repeats,
                    "warmup": cfg.warmup, "device": str(device)},
        "step_s": base["step"],
        "stages_s": {k: base[k] for k in stages},
        "stages_fraction": {k: base[k] / base["step"] for k in stages},
        "occupancy_update": {"full_update_s": occupancy_s, "every_n_steps": update_every,
                             "amortised_s_per_step": occupancy_s / update_every},
        "rays_per_step": base["rays"], "samples_per_step": base["num_samples"],
        "rays_per_s": base["rays_per_s"], "samples_per_s": base["samples_per_s"],
        "flops_per_step": step_flops, "achieved_flops_per_s": achieved,
        "matmul_peak": peak, "fraction_of_matmul_peak": achieved / peak["flops_per_s"],
        "prior_dtype": str(dtype).replace("torch.", ""), "matmul_peak_prior_dtype": prior_peak,
        "dense_grid_kernel": "compiled C" if kernels.load("trilinear") is not None else "eager PyTorch",
        "scaling_resolution": scaling(resolution_rows, resolution_rows.get(str(base_res), base)),
        "scaling_samples_per_ray": scaling(spr_rows, spr_rows.get(str(base_spr), base)),
        "memory": _peak_memory_mb(device),
        "bench_seconds": time.time() - t_start,
    }
    result["config"] = to_dict(cfg)
    write_json_atomic(cfg.out / "bench.json", result)
    save_config(cfg, cfg.out / "config.yaml", command="bench")
    split = ", ".join(f"{k} {100 * v:.0f}%" for k, v in result["stages_fraction"].items())
    res_ratio = ", ".join(f"{k} px ×{v['ratio']:.2f}" for k, v in result["scaling_resolution"].items())
    spr_ratio = ", ".join(f"{k} ×{v['ratio']:.2f}" for k, v in result["scaling_samples_per_ray"].items())
    print(f"SDS step {1000 * base['step']:.1f} ms ({split})\n"
          f"{base['rays_per_s']:.0f} rays/s, {base['samples_per_s']:.0f} samples/s; "
          f"{step_flops / 1e9:.2f} GFLOP/step = {achieved / 1e9:.2f} GFLOP/s, "
          f"{100 * result['fraction_of_matmul_peak']:.1f}% of the float32 matmul peak ({peak['flops_per_s'] / 1e9:.1f} GFLOP/s)"
          + (f"; prior in {result['prior_dtype']} (its matmul peak {prior_peak['flops_per_s'] / 1e9:.1f} GFLOP/s)"
             if prior_peak else "") + f"; dense grid: {result['dense_grid_kernel']}\n"
          f"resolution: {res_ratio}; samples/ray: {spr_ratio}; "
          f"peak RSS {result['memory']['process_peak_rss_mb']:.0f} MB\n"
          f"written {cfg.out / 'bench.json'} in {result['bench_seconds']:.0f} s")
