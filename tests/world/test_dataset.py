"""make-dataset writes the NeRF-synthetic layout and load_nerf_synthetic reads it (and the public
layout) back: same poses, same pixels up to 8-bit quantisation, object-level splits."""

import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from dreamfusion3d.cameras import CameraSamplerConfig, orbit_cameras, view_labels
from dreamfusion3d.cli import main
from dreamfusion3d.utils.config import load_preset
from dreamfusion3d.utils.errors import UserError
from dreamfusion3d.world import Scene, render_scene
from dreamfusion3d.world.dataset import MakeDatasetConfig, list_objects, load_nerf_synthetic, write_dataset
from dreamfusion3d.world.scene import Part


def _scene_from_meta(meta: dict) -> Scene:
    parts = [Part(p["kind"], {k: tuple(v) if isinstance(v, list) else v for k, v in p["params"].items()},
                  tuple(p["color"]), tuple(p["center"]), tuple(map(tuple, p["rotation"])),
                  tuple(p["front_color"]) if "front_color" in p else None) for p in meta["parts"]]
    return Scene(meta["shape"], meta["color"], parts, meta["has_front"], meta["seed"], meta["size"], meta["colors"])


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "data"
    config = MakeDatasetConfig(out=out, num_objects=6, views=5, val_views=2, test_views=1, resolution=24,
                               seed=3, supersample=1, val_fraction=0.2, test_fraction=0.2,
                               cameras=CameraSamplerConfig(radius_range=(2.6, 3.2), fov_range=(35.0, 45.0)))
    write_dataset(config)
    return out


def test_layout_and_object_level_split(small_dataset):
    splits = json.loads((small_dataset / "splits.json").read_text())
    ids = [i for s in splits.values() for i in s]
    assert len(ids) == len(set(ids)) == 6
    assert len(splits["test"]) >= 1 and len(splits["val"]) >= 1
    for split, objects in splits.items():
        assert sorted(p.name for p in (small_dataset / split).iterdir()) == sorted(objects) if objects else True
        assert list_objects(small_dataset, split) == [small_dataset / split / o for o in objects]
    train_ids = {p.name for p in (small_dataset / "train").iterdir()}
    assert not train_ids & set(splits["test"])
    config = load_preset(MakeDatasetConfig, str(small_dataset / "config.yaml"), command="make-dataset")
    assert config.num_objects == 6 and config.resolution == 24
    obj = list_objects(small_dataset, "train")[0]
    meta = json.loads((obj / "meta.json").read_text())
    assert {"shape", "color", "caption", "captions", "paraphrases", "seed", "object_id"} <= set(meta)
    for split, n in (("train", 5), ("val", 2), ("test", 1)):
        data = json.loads((obj / f"transforms_{split}.json").read_text())
        assert len(data["frames"]) == n and "camera_angle_x" in data
        frame = data["frames"][0]
        assert Path(frame["file_path"]).suffix == ""  # like the public NeRF-synthetic files
        assert (obj / (frame["file_path"] + ".png")).is_file()
        assert np.asarray(frame["transform_matrix"]).shape == (4, 4)


def test_round_trip_poses_and_pixels(small_dataset):
    for obj in list_objects(small_dataset, "train") + list_objects(small_dataset, "test"):
        meta = json.loads((obj / "meta.json").read_text())
        scene = _scene_from_meta(meta)
        for split in ("train", "val", "test"):
            data = load_nerf_synthetic(obj, split)
            assert data.images.shape[1:] == (24, 24, 4)
            frames = json.loads((obj / f"transforms_{split}.json").read_text())["frames"]
            c2w = torch.tensor([f["transform_matrix"] for f in frames])
            assert torch.allclose(data.cameras.c2w, c2w)
            # Re-rendering from the loaded poses gives the stored pixels up to 8-bit rounding.
            ref = render_scene(scene, data.cameras, background=(0.0, 0.0, 0.0))
            assert torch.equal(data.images[..., 3:], ref["alpha"])  # binary alpha without AA
            assert (data.images[..., :3] - ref["rgb"]).abs().max() <= 0.5 / 255 + 1e-6
            # The view word of each frame matches the camera.
            az, el, _ = data.cameras.spherical()
            labels = view_labels(az, el)
            assert [f["view"] for f in frames] == labels
            assert all(f["caption"].endswith(f", {v} view") for f, v in zip(frames, labels))


def test_cameras_follow_the_configured_ranges(small_dataset):
    obj = list_objects(small_dataset, "train")[0]
    data = load_nerf_synthetic(obj, "train")
    _, el, radius = data.cameras.spherical()
    assert ((radius > 2.6 - 1e-4) & (radius < 3.2 + 1e-4)).all()
    assert ((el > -10 - 1e-3) & (el < 70 + 1e-3)).all()
    fov = torch.rad2deg(data.cameras.fov_y)
    assert ((fov > 35 - 1e-3) & (fov < 45 + 1e-3)).all() and torch.allclose(fov, fov[:1].expand_as(fov))


def test_public_nerf_synthetic_layout(tmp_path):
    """Public scenes: file_path without extension, RGBA 8-bit PNGs, one camera_angle_x."""
    cams = orbit_cameras([0.0, 90.0, 200.0], [30.0, 30.0, 30.0], 4.0, 39.6, 40)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(3):
        pixels = rng.integers(0, 256, (40, 40, 4), dtype=np.uint8)
        (tmp_path / "test").mkdir(exist_ok=True)
        iio.imwrite(tmp_path / "test" / f"r_{i}.png", pixels)
        frames.append({"file_path": f"./test/r_{i}", "rotation": 0.0, "transform_matrix": cams.c2w[i].tolist()})
    fov_x = math.radians(39.6)
    (tmp_path / "transforms_test.json").write_text(json.dumps({"camera_angle_x": fov_x, "frames": frames}))
    data = load_nerf_synthetic(tmp_path, "test")
    assert data.images.shape == (3, 40, 40, 4)
    assert torch.allclose(data.images[1], torch.from_numpy(iio.imread(tmp_path / "test" / "r_1.png")).float() / 255)
    assert torch.allclose(data.cameras.c2w, cams.c2w)
    assert torch.allclose(data.cameras.fov_y, torch.full((3,), fov_x))  # square images: fov_y = fov_x
    small = load_nerf_synthetic(tmp_path, "test", resolution=20)
    assert small.images.shape == (3, 20, 20, 4) and small.cameras.width == 20
    # Area resize keeps the mean alpha.
    assert small.images[..., 3].mean() == pytest.approx(data.images[..., 3].mean().item(), abs=1e-5)
    with pytest.raises(UserError):
        load_nerf_synthetic(tmp_path, "train")


def test_make_dataset_refuses_a_non_empty_folder(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("earlier results")
    args = ["--quiet", "make-dataset", "--num-objects", "1", "--views", "2", "--val-views", "0",
            "--test-views", "0", "--resolution", "16", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "not empty" in err and len(err.splitlines()) == 1
    assert (out / "keep.txt").read_text() == "earlier results"
    assert main(args + ["--meshes", str(tmp_path / "nope.obj"), "--overwrite"]) == 2
    assert (out / "keep.txt").exists()  # a bad input does not destroy earlier outputs
    assert main(args + ["--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and (out / "splits.json").is_file()


def test_meshes_go_into_the_dataset(tmp_path, shared_meshes):
    out = tmp_path / "data"
    write_dataset(MakeDatasetConfig(out=out, num_objects=1, views=3, val_views=1, test_views=1, resolution=32,
                                    meshes=(shared_meshes / "suzanne.obj",), val_fraction=0.0, test_fraction=0.0))
    (mesh_obj,) = list_objects(out, "test")
    meta = json.loads((mesh_obj / "meta.json").read_text())
    assert meta["shape"] == "mesh" and meta["caption"] == "a suzanne"
    data = load_nerf_synthetic(mesh_obj, "train")
    coverage = data.images[..., 3].mean(dim=(1, 2))
    assert ((coverage > 0.05) & (coverage < 0.8)).all()


@pytest.mark.slow
def test_acceptance_make_dataset_50_objects(tmp_path):
    out = tmp_path / "data"
    assert main(["--quiet", "make-dataset", "--num-objects", "50", "--views", "24", "--resolution", "64",
                 "--out", str(out)]) == 0
    splits = json.loads((out / "splits.json").read_text())
    assert sum(len(v) for v in splits.values()) == 50
    data = load_nerf_synthetic(list_objects(out, "train")[0], "train")
    assert data.images.shape == (24, 64, 64, 4)
