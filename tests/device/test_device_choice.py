"""--device: auto by default everywhere, resolved and checked (CUDA mocked) before anything is written."""

import dataclasses
import importlib

import pytest
import torch

from dreamfusion3d.cli import COMMANDS, main
from dreamfusion3d.utils.device import check_prior_device, resolve_device
from dreamfusion3d.utils.errors import UserError
from dreamfusion3d.utils.logging import clear_pending, info


@pytest.fixture(autouse=True)
def _no_pending_lines():
    clear_pending()
    yield
    clear_pending()


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend two GPUs exist; record which one became current."""
    current = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: current.append(torch.device(d)))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Fake GPU")
    return current


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_auto_is_cpu_without_cuda_and_says_so(no_cuda, capsys):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None, announce=False) == torch.device("cpu")
    assert capsys.readouterr().err == ""  # reported with the run's first stage line
    info("loading the prior")
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["[dreamfusion3d] device: cpu (auto: no CUDA device)", "[dreamfusion3d] loading the prior"]
    info("next stage")
    assert "device" not in capsys.readouterr().err


def test_auto_takes_the_local_rank_gpu(fake_cuda, monkeypatch, capsys):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("auto") == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda", 1)  # plain cuda also follows torchrun
    assert resolve_device("cuda:0") == torch.device("cuda", 0)  # an explicit index wins
    assert fake_cuda == [torch.device("cuda", i) for i in (0, 1, 1, 0)]
    info("go")
    assert "device: cuda:1 (Fake GPU, auto)" in capsys.readouterr().err
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(UserError, match="LOCAL_RANK 2 but only 2 CUDA device"):
        resolve_device("auto")


@pytest.mark.parametrize("spec, message", [
    ("cuda:7", "there is no cuda:7; 2 CUDA device"),
    ("cuda:x", "GPU index must be a number"),
    ("gpu", "unknown device 'gpu'; choose one of auto, cpu, cuda, cuda:N, mps"),
    ("xla", "unknown device"),
])
def test_bad_names_with_cuda(fake_cuda, spec, message):
    with pytest.raises(UserError, match=message):
        resolve_device(spec)


def test_cuda_or_mps_when_absent(no_cuda, monkeypatch):
    with pytest.raises(UserError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(UserError, match="CUDA is not available"):
        resolve_device("cuda:0")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(UserError, match="MPS"):
        resolve_device("mps")


def test_gpu_priors_on_the_cpu(capsys):
    cpu = torch.device("cpu")
    with pytest.raises(UserError, match="needs a CUDA GPU and none was found; pass --device cpu"):
        check_prior_device("stable-diffusion", "auto", cpu)
    check_prior_device("deepfloyd-if", "cpu", cpu)  # asked for explicitly: allowed, with a warning
    assert "running the deepfloyd-if prior on the CPU" in capsys.readouterr().err
    check_prior_device("bundled", "auto", cpu)
    check_prior_device("stable-diffusion", "auto", torch.device("cuda", 0))
    assert capsys.readouterr().err == ""


def test_every_command_defaults_to_auto():
    with_device = []
    for name, command in COMMANDS.items():
        module, cls = command.config.split(":")
        fields = {f.name: f for f in dataclasses.fields(getattr(importlib.import_module(module), cls))}
        if "device" in fields:
            with_device.append(name)
            assert fields["device"].default in ("auto", None), f"{name} defaults to {fields['device'].default!r}"
    assert {"generate", "sample", "export", "reconstruct", "train-prior", "train-novel-view", "novel-view",
            "evaluate", "evaluate-prior", "evaluate-novel-view", "bench"} <= set(with_device)


@pytest.mark.parametrize("argv", [
    ["generate", "--config", "sd", "--prompt", "a corgi"],
    ["generate", "--prompt", "a red cube", "--device", "cuda:3"],
    ["generate", "--prompt", "a red cube", "--device", "tpu"],
])
def test_generate_refuses_before_writing(no_cuda, tmp_path, capsys, argv):
    out = tmp_path / "run"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dreamfusion3d: error:"), err
    assert not out.exists()
