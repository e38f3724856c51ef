"""``bench --profile``: one SDS step op by op (torch.profiler), forward and backward apart.

Each op's *self* time (its own time, without the ops it calls) is summed per (phase, op): an op
belongs to the backward phase when it runs under one of autograd's ``evaluate_function: …Backward``
nodes, else to the forward phase. The backward nodes themselves are listed too (their total time,
children included): that is the backward cost of each forward op. The bench's stages are marked
with ``record_function`` (``stage:sampling``, ``stage:field``, ...), so the trace shows them.

Written to the bench's folder: ``profile.txt`` (the tables), ``profile.json`` (the same rows) and
``trace.json`` (a Chrome / Perfetto trace of the profiled steps).
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import torch

from ..utils.io import write_json_atomic

_BACKWARD_NODE = "autograd::engine::evaluate_function: "


def _phase_tables(events) -> tuple[dict, dict, float]:
    """(self µs by (phase, op), total µs by backward node, total self µs)."""
    self_us: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    nodes: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    total = 0.0
    for ev in events:
        name = ev.name
        if name.startswith("ProfilerStep") or name.startswith("stage:"):
            continue
        if name.startswith(_BACKWARD_NODE):
            row = nodes[name[len(_BACKWARD_NODE):]]
            row[0] += ev.cpu_time_total
            row[1] += 1
            continue
        phase, parent = "forward", ev.cpu_parent
        while parent is not None:
            if parent.name.startswith(_BACKWARD_NODE):
                phase = "backward"
                break
            parent = parent.cpu_parent
        row = self_us[(phase, name)]
        row[0] += ev.self_cpu_time_total
        row[1] += 1
        total += ev.self_cpu_time_total
    return self_us, nodes, total


def _stage_totals(events) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for ev in events:
        if ev.name.startswith("stage:"):
            out[ev.name[len("stage:"):]] += ev.cpu_time_total
    return out


def profile_steps(step_fn, steps: int, out: Path, device: torch.device, top: int = 40) -> dict:
    """Profile ``steps`` calls of ``step_fn`` (after the bench's warm-up) and write the tables."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=False) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step_fn()
            prof.step()
        wall = time.perf_counter() - start
    events = prof.events()
    self_us, nodes, total = _phase_tables(events)
    per = 1.0 / (steps * 1000.0)  # µs over all steps -> ms per step
    phase_ms = defaultdict(float)
    for (phase, _), (us, _) in self_us.items():
        phase_ms[phase] += us * per
    ops = sorted(({"phase": p, "op": n, "ms_per_step": us * per, "calls_per_step": c / steps,
                   "fraction": us / total if total else 0.0} for (p, n), (us, c) in self_us.items()),
                 key=lambda r: -r["ms_per_step"])
    backward_nodes = sorted(({"node": n, "ms_per_step": us * per, "calls_per_step": c / steps}
                             for n, (us, c) in nodes.items()), key=lambda r: -r["ms_per_step"])
    stages = {k: v * per for k, v in _stage_totals(events).items()}
    result = {"steps": steps, "wall_ms_per_step": 1000.0 * wall / steps, "self_ms_per_step": total * per, "phase_ms_per_step": dict(phase_ms),
              "stage_ms_per_step": stages, "ops": ops, "backward_nodes": backward_nodes}
    write_json_atomic(out / "profile.json", result)
    try:
        prof.export_chrome_trace(str(out / "trace.json"))
    except Exception:  # a trace is a convenience; the tables are the result
        pass
    lines = [f"profile of {steps} SDS steps: {1000.0 * wall / steps:.1f} ms wall (profiler on), "
             f"{total * per:.1f} ms self time per step "
             + ", ".join(f"({k} {v:.1f} ms)" for k, v in phase_ms.items()),
             "stages (ms/step, children included): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()),
             "", f"{'phase':<9} {'ms/step':>8} {'share':>6} {'calls':>7}  op"]
    lines += [f"{r['phase']:<9} {r['ms_per_step']:8.2f} {100 * r['fraction']:5.1f}% {r['calls_per_step']:7.1f}  {r['op']}"
              for r in ops[:top]]
    lines += ["", f"{'ms/step':>8} {'calls':>7}  backward node (total time, children included)"]
    lines += [f"{r['ms_per_step']:8.2f} {r['calls_per_step']:7.1f}  {r['node']}" for r in backward_nodes[:top]]
    text = "\n".join(lines) + "\n"
    (out / "profile.txt").write_text(text)
    print(text)
    return result
