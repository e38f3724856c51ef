"""The figures in tests/novel_view/test_shipped.py: PSNR gain over copying the input on 8 freshly
rendered objects (seed 11, used by no training set), at the sampling defaults.

    python scripts/probe_novel_view_unseen.py [MODEL_FOLDER ...]   # none = the shipped weights

Earlier shipped weights come out of git, e.g. the 6,860-step model:
    mkdir -p /tmp/nv6860 && git archive 835e48d dreamfusion3d/assets/novel_view | tar -x -C /tmp/nv6860
    python scripts/probe_novel_view_unseen.py /tmp/nv6860/dreamfusion3d/assets/novel_view
"""

import sys
import tempfile
from pathlib import Path

import torch

from dreamfusion3d.novel_view.data import load_view_set
from dreamfusion3d.novel_view.evaluate import input_and_targets, score
from dreamfusion3d.novel_view.model import NovelViewModel
from dreamfusion3d.novel_view.sampling import generation_order, sample_views
from dreamfusion3d.world.dataset import MakeDatasetConfig, write_dataset


def main(folders: list[str | None]) -> None:
    root = write_dataset(MakeDatasetConfig(out=Path(tempfile.mkdtemp()) / "ds", num_objects=8, views=12, val_views=0,
                                           test_views=0, resolution=32, val_fraction=0.0, test_fraction=0.0, seed=11))
    for folder in folders:
        model = NovelViewModel.from_pretrained(folder)
        source, src_sph, truth, tgt_sph = input_and_targets(load_view_set(root, "train", model.resolution), model, 4)
        copy = score(source[:, None].expand_as(truth), truth)["psnr"]
        line = [f"{folder or 'shipped'}: copy {copy:.2f} dB"]
        for stochastic in (True, False):
            out = sample_views(model, source, src_sph, tgt_sph, stochastic=stochastic,
                               generator=torch.Generator().manual_seed(0),
                               order=generation_order(src_sph[0], tgt_sph[0]))
            line.append(f"{'stochastic' if stochastic else 'single-view'} {score(out, truth)['psnr'] - copy:+.2f} dB")
        print(", ".join(line))


if __name__ == "__main__":
    main(sys.argv[1:] or [None])
