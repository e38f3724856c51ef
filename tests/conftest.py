import os
from pathlib import Path

import pytest
import torch

SHARED_MESHES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "meshes"

# Tests are many small ops: one thread avoids oversubscription when other jobs share the CPU.
torch.set_num_threads(int(os.environ.get("DREAMFUSION3D_TEST_THREADS", "1")))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _fresh_logging_state():
    """Each test starts with the logger as a new process has it: ``main([... "--quiet" ...])`` in one
    test must not silence the stage lines that a later test reads (the order-dependent failure of
    tests/device/test_device_choice.py after the export and world tests)."""
    from dreamfusion3d.utils.logging import clear_pending, set_quiet

    set_quiet(False)
    clear_pending()
    yield
    set_quiet(False)
    clear_pending()


@pytest.fixture(params=["kernel", "eager"])
def compiled_or_eager(request, monkeypatch):
    """Run a test twice: through the compiled CPU kernels (dreamfusion3d.kernels; skipped where no C
    compiler built them) and through the eager PyTorch path they replace."""
    from dreamfusion3d import kernels

    if request.param == "eager":
        monkeypatch.setattr(kernels, "load", lambda name: None)
    elif any(kernels.load(name) is None for name in kernels.SIGNATURES):
        pytest.skip("no C compiler here: the CPU kernels are not built")
    return request.param


@pytest.fixture
def shared_meshes() -> Path:
    """The real test meshes in ../shared/data/meshes (skipped with a message when absent)."""
    if not SHARED_MESHES.is_dir():
        pytest.skip(f"real meshes not found at {SHARED_MESHES} (the ../shared folder beside the repo)")
    return SHARED_MESHES


requires_cuda = pytest.mark.cuda  # `pytest -m cuda` runs these; they are skipped where no GPU exists


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_prior(tmp_path_factory) -> Path:
    """A small, untrained text prior saved in the shipped format (so generate loads it for real)."""
    from dreamfusion3d.text_prior import TextPriorArchitecture, TextPriorModel

    folder = tmp_path_factory.mktemp("prior") / "tiny"
    torch.manual_seed(0)
    arch = TextPriorArchitecture(resolution=16, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4)
    TextPriorModel.from_architecture(arch).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_args():
    """``tiny_args(prior, out, steps)``: a generate command line that runs in about a second."""

    def tiny_args(prior: Path, out: Path, steps: int = 6) -> list[str]:
        return [
            "generate", "--prompt", "a red cube", "--out", str(out), "--prior.model", str(prior),
            "--steps", str(steps), "--batch-size", "1", "--resolution", "16", "--seed", "3",
            "--field.kind", "dense", "--field.dense-resolution", "24", "--field.dense-features", "4",
            "--renderer.num-steps", "32", "--renderer.occupancy-resolution", "16",
            "--renderer.occupancy-update-every", "2", "--renderer.occupancy-warmup-steps", "4",
            "--output.mesh-resolution", "32", "--output.texture-size", "64", "--output.video-frames", "3", "--output.video-resolution", "16",
            "--output.preview-every", "0", "--output.checkpoint-every", "2", "--shading.albedo-only-steps", "2",
            "--quiet",
        ]

    return tiny_args


@pytest.fixture(scope="session")
def same_final_weights():
    """``same_final_weights(ref, run)``: the two runs' final checkpoints hold the same tensors (the
    exact-resume check of generate and image-to-3d)."""
    from safetensors.torch import load_file

    def same_final_weights(ref: Path, run: Path) -> None:
        a = load_file(str(ref / "checkpoints" / "final" / "model.safetensors"))
        b = load_file(str(run / "checkpoints" / "final" / "model.safetensors"))
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=f"tensor {k} differs")

    return same_final_weights
