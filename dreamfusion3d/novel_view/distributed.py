"""Data-parallel training of the novel-view model under torchrun: process-group setup and the
check that every rank ends with the same weights."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.distributed as dist

from ..utils.device import resolve_device
from ..utils.logging import info
from .model import NovelViewModel


@torch.no_grad()
def report_rank_sync(model: NovelViewModel, out: Path, rank: int, world: int, device: torch.device) -> None:
    """Gather every rank's parameter fingerprint; rank 0 writes them to ``out/ddp_sync.json``."""
    flat = torch.cat([p.detach().double().flatten() for p in model.unet.parameters()])
    probe = torch.linspace(-1.0, 1.0, flat.numel(), dtype=torch.float64, device=flat.device)
    mine = torch.stack([flat.sum(), (flat * flat).sum(), (flat * probe).sum()]).to(device)
    gathered = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(gathered, mine)
    if rank == 0:
        rows = [g.cpu().tolist() for g in gathered]
        spread = max(max(abs(a - b) for a, b in zip(r, rows[0])) for r in rows)
        (out / "ddp_sync.json").write_text(json.dumps({"fingerprints": rows, "max_abs_diff": spread}))
        info(f"{world} ranks hold identical parameters (max fingerprint difference {spread:.3g})")


def setup_distributed(device_name: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device) under torchrun (WORLD_SIZE, RANK, LOCAL_RANK), else (0, 1, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(device_name)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device
