"""evaluate's summary: a run whose solid collapsed to nothing counts as a failure, not as absent."""

from dreamfusion3d.evaluation.report import markdown, summarise


def _row(prompt, shape, iou=None, fit=None):
    row = {"prompt": prompt, "target": {"shape": shape, "color": "red"}, "notes": [],
           "classifier": {"shape": 1.0, "color": 1.0, "both": 1.0}}
    if iou is None:
        row["geometry_empty"] = True
    else:
        row["geometry"] = {"iou": iou, "chamfer": 0.1, "normal_consistency": 0.5,
                           "outside_largest_component": 0.0, "template": {"shape": fit}}
    return row


def test_an_empty_solid_is_iou_zero_and_a_missed_fit():
    rows = [_row("a red cube", "cube", 0.8, "cube"), _row("a white cube", "cube"), _row("a red cone", "cone", 0.6, "cone")]
    s = summarise(rows, None)
    assert s["geometry_runs"] == 3 and s["geometry_empty"] == 1
    assert abs(s["iou"] - (0.8 + 0.0 + 0.6) / 3) < 1e-12  # not the mean of the two non-empty runs (0.7)
    assert abs(s["iou_by_shape"]["cube"] - 0.4) < 1e-12 and abs(s["iou_by_shape"]["cone"] - 0.6) < 1e-12
    assert (s["template_runs"], s["template_right"]) == (3, 2)
    assert abs(s["chamfer"] - 0.1) < 1e-12  # undefined for the empty run: averaged over the others
    table = markdown(rows, s, clip=False)
    assert "| 2 | a white cube |" in table and "| 0.000 |" in table and "| empty |" in table
