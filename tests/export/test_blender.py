"""A real client: Blender (headless) imports our GLB, OBJ (+MTL+PNG) and PLY and a Cycles render of
each shows the object's colour where it should be.

Skipped where ``blender`` is not on PATH (``bash scripts/setup.sh --dev`` installs Debian's package).
"""

import colorsys
import json
import os
import shutil
import subprocess
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from dreamfusion3d.cli import main
from dreamfusion3d.export import apply_texture, export_all, extract_mesh
from dreamfusion3d.world import COLORS

SCRIPT = Path(__file__).with_name("blender_render.py")
TEXTURE = 256

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("blender") is None, reason="Blender not installed (scripts/setup.sh --dev installs it)"),
]


def hue(rgb) -> float:  # degrees
    return colorsys.rgb_to_hsv(*np.asarray(rgb, dtype=float))[0] * 360.0


def hue_gap(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def foreground(png: str) -> tuple[np.ndarray, np.ndarray]:
    """(mask [H, W], rgb [H, W, 3] in [0, 1]) of a transparent-film render."""
    image = iio.imread(png).astype(np.float64) / 255.0
    return image[..., 3] > 0.5, image[..., :3]


def mean_color(mask, rgb):
    assert mask.sum() > 50, "the object covers almost no pixels of the render"
    return rgb[mask].mean(0)


def two_tone(p: torch.Tensor) -> torch.Tensor:
    """Red on the object's left (world +Y), blue on its right: shows whether the texture lands where
    it should and the axes are right."""
    red, blue = torch.tensor(COLORS["red"]), torch.tensor(COLORS["blue"])
    return torch.where(p[:, 1:2] > 0, red, blue)


def blender_env() -> dict:
    """The environment for a system Blender: its embedded Python finds its standard library from
    the first ``python3`` on PATH, which under pyenv/venvs is not the one Blender was built with
    (and lacks the distribution's numpy that its glTF importer needs). Point it at its own prefix."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    prefix = Path(shutil.which("blender")).resolve().parents[1]
    if any(prefix.glob("lib/python3.*/os.py")):  # a distribution package using the system Python
        env["PYTHONHOME"] = str(prefix)
    return env


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("blender")
    files = {}
    for shape, colour in (("cube", "red"), ("sphere", "blue")):
        out = tmp / shape
        rc = main(["--quiet", "export", "--world-shape", shape, "--world-color", colour, "--resolution", "48",
                   "--texture-size", str(TEXTURE), "--out", str(out)])
        assert rc == 0
        files[shape] = out
    rc = main(["--quiet", "export", "--world-shape", "sphere", "--world-color", "blue", "--resolution", "48",
               "--texture", "none", "--format", "glb", "--out", str(tmp / "plain")])
    assert rc == 0
    mesh = extract_mesh(lambda p: p.norm(dim=-1) - 0.5, resolution=48, field_type="sdf", color_fn=two_tone)
    textured, _ = apply_texture(mesh, two_tone, "albedo", TEXTURE)
    export_all(textured, tmp / "halves", ["glb", "obj", "ply"])
    files["halves"] = tmp / "halves"
    items = [f"{fmt}:{files[name] / f'mesh.{fmt}'}" for name in ("cube", "sphere", "halves") for fmt in ("glb", "obj", "ply")]
    items.append(f"glb:{tmp / 'plain' / 'mesh.glb'}")
    proc = subprocess.run(
        ["blender", "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(SCRIPT), "--", str(tmp / "renders"), *items],
        capture_output=True, text=True, timeout=600, cwd=tmp, env=blender_env(),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp / "renders" / "report.json").read_text())
    keys = [(name, fmt) for name in ("cube", "sphere", "halves") for fmt in ("glb", "obj", "ply")] + [("plain", "glb")]
    return dict(zip(keys, report))


@pytest.mark.parametrize("fmt", ["glb", "obj", "ply"])
@pytest.mark.parametrize("shape,colour", [("cube", "red"), ("sphere", "blue")])
def test_import_renders_the_object_colour(renders, shape, colour, fmt):
    entry = renders[(shape, fmt)]
    assert entry["objects"] == 1 and entry["faces"] > 1000
    if fmt == "ply":  # vertex colours, wired into a material as the README says
        assert entry["color_attributes"] and entry["materials"] == ["ply_vertex_colour"]
    else:  # the baked texture is what feeds Base Color
        assert [t["size"] for t in entry["base_color_textures"]] == [[TEXTURE, TEXTURE]]
    rgb = mean_color(*foreground(entry["png"]))
    h, s, _ = colorsys.rgb_to_hsv(*rgb)
    assert s > 0.4, f"render is nearly grey: mean colour {rgb}"
    assert hue_gap(h * 360, hue(COLORS[colour])) < 20, f"mean colour {rgb} is not {colour}"


def test_vertex_colour_glb_shows_its_colours(renders):
    # --texture none: no image, but a material, so Blender shows COLOR_0 instead of grey
    entry = renders[("plain", "glb")]
    assert entry["materials"] and not entry["base_color_textures"]
    rgb = mean_color(*foreground(entry["png"]))
    assert colorsys.rgb_to_hsv(*rgb)[1] > 0.4 and hue_gap(hue(rgb), hue(COLORS["blue"])) < 20, rgb


@pytest.mark.parametrize("fmt", ["glb", "obj"])
def test_texture_lands_on_the_right_side(renders, fmt):
    # Blender's front view looks at the object's front (world +X), so its left (+Y, red) is on the
    # right of the image and its right (blue) on the left
    mask, rgb = foreground(renders[("halves", fmt)]["png"])
    cols = np.nonzero(mask.any(0))[0]
    middle = (cols.min() + cols.max()) / 2
    x = np.arange(mask.shape[1])[None, :]
    left = mean_color(mask & (x < middle - 2), rgb)
    right = mean_color(mask & (x > middle + 2), rgb)
    assert hue_gap(hue(right), hue(COLORS["red"])) < 20, (left, right)
    assert hue_gap(hue(left), hue(COLORS["blue"])) < 20, (left, right)
