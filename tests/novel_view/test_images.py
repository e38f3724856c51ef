import imageio.v3 as iio
import numpy as np
import pytest
import torch

from dreamfusion3d.novel_view.images import centre_object, load_input_image, read_image
from dreamfusion3d.utils.errors import UserError


def test_text_file_named_png_is_one_line_user_error(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_text("this is not an image\n")
    with pytest.raises(UserError) as exc:
        read_image(bad)
    assert "x.png" in str(exc.value) and "\n" not in str(exc.value)


def test_missing_file_is_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_image(tmp_path / "nope.png")


def test_plain_image_without_object_is_user_error():
    with pytest.raises(UserError, match="no object"):
        centre_object(np.full((20, 20, 3), 0.3, dtype=np.float32), 16)


def _bbox(img: torch.Tensor) -> tuple[int, int, int, int]:
    mask = (1 - img).abs().amax(0) > 0.1
    rows, cols = torch.nonzero(mask.any(1)).flatten(), torch.nonzero(mask.any(0)).flatten()
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def test_rgba_object_is_centred_and_framed(tmp_path):
    # a red 20x10 box in the top-left corner of a transparent 100x80 image
    img = np.zeros((100, 80, 4), dtype=np.uint8)
    img[5:25, 3:13] = (255, 0, 0, 255)
    img[..., :3][img[..., 3] == 0] = (0, 255, 0)  # hidden colour under alpha 0 must not leak
    path = tmp_path / "obj.png"
    iio.imwrite(path, img)
    out = load_input_image(path, 32, object_fraction=0.5)
    assert out.shape == (3, 32, 32)
    r0, r1, c0, c1 = _bbox(out)
    assert abs((r0 + r1) / 2 - 15.5) <= 1 and abs((c0 + c1) / 2 - 15.5) <= 1  # centred
    assert 14 <= r1 - r0 + 1 <= 18  # the longer side spans ~half the frame
    greenish = (out[1] > out[0] + 0.2) & (out[1] > out[2] + 0.2)
    assert not greenish.any()  # the colour hidden under alpha 0 does not leak
    assert torch.allclose(out[:, 0, 0], torch.ones(3))  # white background
    centre = out[:, 15, 15]
    assert centre[0] > 0.9 and centre[1] < 0.1 and centre[2] < 0.1


def test_plain_background_is_replaced_by_white(tmp_path):
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    img[:] = (40, 40, 200)  # blue backdrop
    img[20:40, 28:36] = (250, 200, 0)  # yellow object
    path = tmp_path / "obj.jpg"
    iio.imwrite(path, img, quality=95)
    out = load_input_image(path, 32, object_fraction=0.5)
    assert torch.all(out[:, 0, :] > 0.9) and torch.all(out[:, :, 0] > 0.9)
    c = out[:, 16, 16]
    assert c[0] > 0.85 and c[1] > 0.65 and c[2] < 0.2


def test_keep_framing_keeps_the_object_where_its_camera_saw_it(tmp_path):
    # the same off-centre red box as above: re-centring moves it to the middle; keeping the framing
    # pads 100x80 to 100x100 (10 columns each side) and scales by 32/100, so the box stays top-left
    from dreamfusion3d.novel_view.images import frame_input, keep_framing_and_mask

    img = np.zeros((100, 80, 4), dtype=np.uint8)
    img[5:25, 3:13] = (255, 0, 0, 255)
    path = tmp_path / "obj.png"
    iio.imwrite(path, img)
    rgb, mask = keep_framing_and_mask(read_image(path), 32)
    assert rgb.shape == (3, 32, 32) and mask.shape == (1, 32, 32)
    r0, r1, c0, c1 = _bbox(rgb)
    # box rows [5, 25) → [1.6, 8.0), columns [13, 23) after padding → [4.2, 7.4): first and last
    # pixel indices within a pixel of blur
    assert abs(r0 - 1.6) <= 1.0 and abs(r1 - 7.7) <= 1.0 and abs(c0 - 4.2) <= 1.0 and abs(c1 - 7.0) <= 1.0
    ys, xs = torch.nonzero(mask[0] > 0.5, as_tuple=True)
    assert abs(float(ys.float().mean()) - 4.6) < 0.8 and abs(float(xs.float().mean()) - 5.6) < 0.8
    assert float(mask.sum()) == pytest.approx(20 * 10 * (32 / 100) ** 2, rel=0.1)  # area scales with it
    assert torch.allclose(rgb[:, 31, 31], torch.ones(3))  # the rest is white
    assert torch.equal(frame_input(read_image(path), 32, recentre=False)[0], rgb)
    centred = load_input_image(path, 32, object_fraction=0.5)
    assert not torch.allclose(centred, rgb)  # the default still re-centres
    with pytest.raises(UserError, match="no object"):
        keep_framing_and_mask(np.full((20, 20, 3), 0.3, dtype=np.float32), 16)
