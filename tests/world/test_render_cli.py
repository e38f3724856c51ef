"""dreamfusion3d render: PNGs, a contact sheet with one row per object, GIFs, clear errors."""

import imageio.v3 as iio
import numpy as np

from dreamfusion3d.cli import main


def test_render_specs_and_a_mesh(tmp_path, shared_meshes):
    out = tmp_path / "r"
    code = main(["--quiet", "render", "--spec", "a red cube", "a small blue sphere on a yellow cube",
                 "--mesh", str(shared_meshes / "teapot.obj"), "--azimuths", "0", "90", "180",
                 "--elevations", "15", "--resolution", "32", "--supersample", "1", "--gif", "--out", str(out)])
    assert code == 0
    sheet = iio.imread(out / "contact_sheet.png")
    assert sheet.shape == (3 * 34 + 2, 3 * 34 + 2, 3)
    view = iio.imread(out / "a_red_cube" / "view_000.png")
    assert view.shape == (32, 32, 3)
    red = (view[..., 0] > 120) & (view[..., 1] < 60) & (view[..., 2] < 60)
    assert red.mean() > 0.05
    assert np.array_equal(sheet[2:34, 2:34], view)
    gif = iio.imread(out / "teapot.gif", index=None)
    assert gif.shape[0] == 3
    assert (out / "config.yaml").is_file()


def test_render_default_turntable(tmp_path):
    out = tmp_path / "r"
    assert main(["--quiet", "render", "--shape", "torus", "--color", "green", "--views", "4",
                 "--resolution", "24", "--out", str(out)]) == 0
    assert len(list(next(p for p in out.iterdir() if p.is_dir()).glob("view_*.png"))) == 4


def test_render_errors_are_one_line(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["render", "--mesh", str(tmp_path / "missing.obj"), "--out", str(out)]) == 2
    assert main(["render", "--spec", "a shiny thing", "--out", str(out)]) == 2
    assert main(["render", "--shape", "pyramid", "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and "not found" in lines[0] and "colour" in lines[1] and "pyramid" in lines[2]
    assert not out.exists()
