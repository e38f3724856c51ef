"""A photo of the red cube saved in every colour mode PIL reads is accepted, cut out and still red
(some modes used to reach the object cut-out unconverted and were refused as "one plain colour")."""

import numpy as np
import pytest
from PIL import Image

from dreamfusion3d.cli import main
from dreamfusion3d.novel_view.images import load_input_image, read_image


@pytest.fixture(scope="module")
def red_cube(tmp_path_factory) -> Image.Image:
    """The world's red cube rendered over white by the package's own renderer."""
    out = tmp_path_factory.mktemp("render") / "cube"
    assert main(["render", "--shape", "cube", "--color", "red", "--views", "1", "--resolution", "48",
                 "--out", str(out), "--quiet"]) == 0
    (view,) = sorted(out.rglob("view_000.png"))
    return Image.open(view).convert("RGB")


# (mode, file suffix, colour survives the mode)
MODES = [("RGB", ".png", True), ("RGBA", ".png", True), ("P", ".png", True),
         ("L", ".png", False), ("LA", ".png", False), ("1", ".png", False), ("I;16", ".png", False),
         ("I", ".tif", False), ("F", ".tif", False), ("CMYK", ".jpg", True), ("YCbCr", ".jpg", True),
         ("RGB", ".jpg", True), ("P-transparent", ".png", True), ("RGBA-transparent", ".webp", True)]


def _save(img: Image.Image, mode: str, path) -> None:
    if mode == "P-transparent":  # palette image whose background index is transparent
        pal = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
        pal.info["transparency"] = pal.getpixel((0, 0))
        pal.save(path, transparency=pal.getpixel((0, 0)))
        return
    if mode == "RGBA-transparent":
        rgba = img.convert("RGBA")
        arr = np.asarray(rgba).copy()
        arr[..., 3] = np.where((arr[..., :3] > 245).all(-1), 0, 255)
        Image.fromarray(arr, "RGBA").save(path)
        return
    if mode == "I;16":
        grey = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
        assert grey.mode == "I;16"
        grey.save(path)
        return
    if mode == "I":
        grey = Image.fromarray(np.asarray(img.convert("L")).astype(np.int32) * 257)
        assert grey.mode == "I"
        grey.save(path)
        return
    if mode == "F":
        grey = Image.fromarray(np.asarray(img.convert("L")).astype(np.float32) / 255.0)
        assert grey.mode == "F"
        grey.save(path)
        return
    img.convert(mode).save(path)


@pytest.mark.parametrize("mode, suffix, colour", MODES, ids=[f"{m}{s}" for m, s, _ in MODES])
def test_every_pil_mode_is_read_as_rgb_or_rgba_and_the_cube_is_found(red_cube, tmp_path, mode, suffix, colour):
    path = tmp_path / f"cube{suffix}"
    _save(red_cube, mode, path)
    arr = read_image(path)
    assert arr.dtype == np.float32 and arr.shape[-1] in (3, 4) and 0.0 <= arr.min() and arr.max() <= 1.0
    assert arr[..., :3].max() > 0.9  # white background kept its range (no 16-bit / float clipping)
    framed = load_input_image(path, 32)  # raises "one plain colour" when no object is found
    centre = framed[:, 12:20, 12:20].mean((1, 2))
    assert (1 - framed).abs().amax(0).max() > 0.2  # an object, not a blank frame
    if colour:
        assert centre[0] > centre[1] + 0.15 and centre[0] > centre[2] + 0.15, centre  # still red
