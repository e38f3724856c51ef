"""Time a full 128³ export (grid, threshold, marching cubes, cleanup, colours, GLB/OBJ/PLY encoding).

Not collected by pytest (timings on a shared CPU are noise for a test); run it by hand:
    python tests/export/bench_export.py [--threads 2] [--resolution 128]
Prints wall and CPU seconds for a hash-grid NeRF field (every point evaluated; then with a
trained-style occupancy grid that skips empty cells, as the renderer does) and for a small MLP
with positional encoding.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch import nn

from dreamfusion3d.export import extract_mesh, mesh_files
from dreamfusion3d.export.command import ExportConfig, run
from dreamfusion3d.utils.logging import set_quiet


class PosEncMLP(nn.Module):
    """3 -> sin/cos(2^k x), k < 6 -> 64 -> 64 -> 4 (density, rgb): a realistic small field."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3 + 36, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))

    def forward(self, p: torch.Tensor) -> torch.Tensor:  # [N, 3] -> [N, 4]
        freqs = 2.0 ** torch.arange(6, dtype=p.dtype) * torch.pi
        x = (p[:, :, None] * freqs).reshape(len(p), -1)
        out = self.net(torch.cat([p, x.sin(), x.cos()], dim=-1))
        return out


def timed(label: str, fn) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    print(f"{label}: {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    set_quiet(True)
    from dreamfusion3d.fields import FieldConfig
    from dreamfusion3d.rendering import BackgroundConfig, RendererConfig
    from dreamfusion3d.representations import build_nerf, save_representation

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        renderer = build_nerf(FieldConfig(), RendererConfig(), BackgroundConfig())  # default hash grid
        save_representation(f"{tmp}/full/checkpoints/final", renderer)
        cfg = ExportConfig(source=f"{tmp}/full", out=f"{tmp}/out1", resolution=args.resolution)
        timed(f"hashgrid NeRF, all {args.resolution}³ points, `export` glb+obj+ply", lambda: run(cfg))
        renderer.train()
        for step in range(0, 512, renderer.config.occupancy_update_every):
            renderer.update_occupancy(step)
        frac = renderer.occupied_fraction()
        save_representation(f"{tmp}/occ/checkpoints/final", renderer)
        cfg = ExportConfig(source=f"{tmp}/occ", out=f"{tmp}/out2", resolution=args.resolution)
        timed(f"hashgrid NeRF, occupancy grid {frac:.0%} occupied, `export` glb+obj+ply", lambda: run(cfg))

        mlp = PosEncMLP().eval()
        with torch.no_grad():  # shift the output so the field has a blob-like object
            mlp.net[-1].bias[0] = 0.0

        def density(p):
            return nn.functional.softplus(mlp(p)[:, 0] + 10 * torch.exp(-(p**2).sum(-1) / 0.18) - 4)

        def color(p):
            return torch.sigmoid(mlp(p)[:, 1:])

        def mlp_export():
            mesh = extract_mesh(density, resolution=args.resolution, color_fn=color)
            for fmt in ("glb", "obj", "ply"):
                mesh_files(mesh, fmt)

        timed(f"pos-enc MLP (3x64), {args.resolution}³, extract + encode glb/obj/ply", mlp_export)


if __name__ == "__main__":
    main()
