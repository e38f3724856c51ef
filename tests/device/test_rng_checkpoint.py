"""Process-wide RNG states in checkpoints: the CPU one for real, the CUDA one with CUDA mocked."""

import torch
from safetensors.torch import load_file

from dreamfusion3d.utils.checkpoint import load_checkpoint, save_checkpoint


def test_cpu_global_rng_round_trip(tmp_path):
    model = torch.nn.Linear(2, 2)
    torch.manual_seed(5)
    save_checkpoint(tmp_path / "ck", {"m": model}, global_rng="cpu")
    expected = torch.rand(4)
    assert "rng_global.cuda" not in load_file(str(tmp_path / "ck" / "tensors.safetensors"))
    torch.manual_seed(99)
    load_checkpoint(tmp_path / "ck", {"m": model}, global_rng=torch.device("cpu"))
    assert torch.equal(torch.rand(4), expected)


class FakeCudaRng:
    """torch.cuda's RNG functions over a CPU generator, per device index."""

    def __init__(self):
        self.generators: dict[int, torch.Generator] = {}
        self.restored: list[tuple[int, torch.Tensor]] = []

    def gen(self, device) -> torch.Generator:
        return self.generators.setdefault(torch.device(device).index or 0, torch.Generator().manual_seed(1))

    def get_rng_state(self, device="cuda"):
        return self.gen(device).get_state()

    def set_rng_state(self, state, device="cuda"):
        self.restored.append((torch.device(device).index, state.clone()))
        self.gen(device).set_state(state)


def test_cuda_rng_state_is_written_and_restored(tmp_path, monkeypatch, capsys):
    fake = FakeCudaRng()
    monkeypatch.setattr(torch.cuda, "get_rng_state", fake.get_rng_state)
    monkeypatch.setattr(torch.cuda, "set_rng_state", fake.set_rng_state)
    device = torch.device("cuda", 1)
    model = torch.nn.Linear(2, 2)
    fake.gen(device).manual_seed(42)
    torch.rand(3, generator=fake.gen(device))  # advance it: the saved state is not a fresh seed
    save_checkpoint(tmp_path / "ck", {"m": model}, global_rng=device)
    saved = load_file(str(tmp_path / "ck" / "tensors.safetensors"))["rng_global.cuda"]
    assert torch.equal(saved, fake.gen(device).get_state())
    expected = torch.rand(5, generator=fake.gen(device))  # what the run draws next

    fake.gen(device).manual_seed(7)  # a fresh process
    load_checkpoint(tmp_path / "ck", {"m": model}, global_rng=device)
    assert [i for i, _ in fake.restored] == [1] and torch.equal(fake.restored[0][1], saved)
    assert torch.equal(torch.rand(5, generator=fake.gen(device)), expected)
    assert capsys.readouterr().err == ""

    # resuming that checkpoint on the CPU: one warning, the CPU state is still restored
    load_checkpoint(tmp_path / "ck", {"m": model}, global_rng="cpu")
    err = capsys.readouterr().err
    assert "holds a CUDA RNG state but this run is on cpu" in err and len(err.strip().splitlines()) == 1


def test_cpu_checkpoint_resumed_on_a_gpu_warns(tmp_path, monkeypatch, capsys):
    fake = FakeCudaRng()
    monkeypatch.setattr(torch.cuda, "set_rng_state", fake.set_rng_state)
    save_checkpoint(tmp_path / "ck", {"m": torch.nn.Linear(2, 2)}, global_rng="cpu")
    load_checkpoint(tmp_path / "ck", {"m": torch.nn.Linear(2, 2)}, global_rng="cuda:0")
    assert fake.restored == []
    assert "holds no CUDA RNG state but this run is on cuda:0" in capsys.readouterr().err
