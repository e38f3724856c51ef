"""The figures of ``dreamfusion3d evaluate``: the summary over runs, its Markdown table and the
contact sheet of the judged views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..utils.images import contact_sheet, save_png
from .geometry import TEMPLATE_SHAPES


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarise(rows: list[dict], clip_name: str | None) -> dict:
    summary: dict = {"prompts": len(rows)}
    for k in ("shape", "color", "both"):
        summary[f"classifier_{k}"] = _mean(r["classifier"][k] for r in rows)
    if clip_name:
        summary["clip_r_precision"] = _mean(r.get("clip_r_precision") for r in rows)
        summary["clip_model"] = clip_name
    geo = [r["geometry"] for r in rows if "geometry" in r]
    # a run whose solid is empty (it collapsed to nothing) is a failure: IoU 0 and a missed 3D fit;
    # Chamfer and the surface figures are undefined for it and averaged over the other runs
    empty = [r for r in rows if r.get("geometry_empty")]
    summary["geometry_runs"] = len(geo) + len(empty)
    summary["geometry_empty"] = len(empty)
    summary["iou"] = _mean([g["iou"] for g in geo] + [0.0] * len(empty))
    summary["chamfer"] = _mean(g["chamfer"] for g in geo)
    summary["normal_consistency"] = _mean(g.get("normal_consistency") for g in geo)
    summary["outside_largest_component"] = _mean(g.get("outside_largest_component") for g in geo)
    fits = [(r["target"]["shape"], r["geometry"]["template"]["shape"]) for r in rows if "template" in r.get("geometry", {})]
    missed = [r for r in empty if r.get("target") and r["target"]["shape"] in TEMPLATE_SHAPES]
    summary["template_runs"], summary["template_right"] = len(fits) + len(missed), sum(a == b for a, b in fits)
    per_shape: dict[str, list[float]] = {}
    for r in rows:
        if ("geometry" in r or r.get("geometry_empty")) and r.get("target"):
            per_shape.setdefault(r["target"]["shape"], []).append(r["geometry"]["iou"] if "geometry" in r else 0.0)
    summary["iou_by_shape"] = {k: float(np.mean(v)) for k, v in per_shape.items()}
    faces = [r["multiface"] for r in rows if "multiface" in r]
    summary["front_runs"] = len(faces)
    summary["multi_face_rate"] = _mean(float(f["multi_face"]) for f in faces)
    summary["front_found_rate"] = _mean(float(f["fronts"] >= 1) for f in faces)
    return summary


def fmt(v, pct: bool = False) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{100 * v:.0f}%" if pct else f"{v:.3f}"


def markdown(rows: list[dict], summary: dict, clip: bool) -> str:
    head = ["#", "prompt", "shape", "colour", "both"] + (["CLIP R@1"] if clip else []) + [
        "IoU", "Chamfer", "normals", "off-part", "3D fit", "fronts"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows):
        c, g, m = r["classifier"], r.get("geometry", {}), r.get("multiface")
        cells = [str(i + 1), r["prompt"], fmt(c["shape"], True), fmt(c["color"], True), fmt(c["both"], True)]
        cells += [fmt(r.get("clip_r_precision"), True)] if clip else []
        empty = bool(r.get("geometry_empty"))
        fit = "empty" if empty else g.get("template", {}).get("shape")
        cells += [fmt(0.0 if empty else g.get("iou")), fmt(g.get("chamfer")), fmt(g.get("normal_consistency")),
                  fmt(g.get("outside_largest_component"), True), fit or "–", "–" if m is None else str(m["fronts"])]
        lines.append("| " + " | ".join(cells) + " |")
    s = summary
    cells = ["", "**overall**", fmt(s["classifier_shape"], True), fmt(s["classifier_color"], True),
             fmt(s["classifier_both"], True)]
    cells += [fmt(s.get("clip_r_precision"), True)] if clip else []
    fits = f"{s['template_right']}/{s['template_runs']}" if s["template_runs"] else "–"
    cells += [fmt(s["iou"]), fmt(s["chamfer"]), fmt(s["normal_consistency"]),
              fmt(s["outside_largest_component"], True), fits,
              "–" if s["multi_face_rate"] is None else f"multi-face {fmt(s['multi_face_rate'], True)}"]
    lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Rows follow contact_sheet.png top to bottom. shape/colour/both: share of views the evaluation "
              "classifier names as the prompt does (shape only for single primitives). IoU/Chamfer: against the "
              "world's object after centring, unit volume-equivalent radius and the best yaw (a torus also at the best of the world's "
              "tilts, 0–20°; Chamfer in those units). "
              "normals: normal consistency with the true surface (1 = same everywhere). off-part: share of the "
              "surface area outside the largest connected piece. 3D fit: the world primitive whose template fits "
              "the solid best in 3D (no 2D classifier). fronts: front features found by the multi-face test (1 = right, ≥2 = Janus)."]
    if "world_draws" in s:
        w = s["world_draws"]
        chamfers: dict[str, list] = {}
        for r in rows:
            if r.get("target") and "geometry" in r:
                chamfers.setdefault(r["target"]["shape"], []).append(r["geometry"]["chamfer"])
        lines += ["", f"**The world's own objects** ({w['draws']} other seeds per shape, scored against the same "
                  "references as the runs: a perfect object of the prompt's family with the proportions drawn at random):", "",
                  "| shape | runs' IoU | world's IoU (min) | runs' Chamfer | world's Chamfer (max) |", "|---|---|---|---|---|"]
        for shape, f in w["by_shape"].items():
            runs_ch = _mean(chamfers.get(shape, []))
            lines.append(f"| {shape} | {fmt(s['iou_by_shape'].get(shape))} | {f['iou']:.3f} ({f['iou_min']:.3f}) | {fmt(runs_ch)} | "
                         f"{f['chamfer']:.3f} ({f['chamfer_max']:.3f}) |")
        lines.append(f"| **all prompts** | {fmt(s['iou'])} | {w['iou']:.3f} | {fmt(s['chamfer'])} | {w['chamfer']:.3f} |")
    return "\n".join(lines) + "\n"


def write_contact_sheet(path: Path, views: list[torch.Tensor], pad: int = 2) -> None:
    """One row per run, K views each, white gutters."""
    sheet = contact_sheet([row.permute(0, 2, 3, 1) for row in views], pad=pad).numpy()
    save_png(path, (sheet.clip(0, 1) * 255).round().astype(np.uint8))
