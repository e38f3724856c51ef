"""Held-out accuracy of evaluation classifiers over white and over random background colours, on the
same renders (250 unseen objects x 4 views, the held-out set of configs/train_classifier.yaml):

    python scripts/judge_backgrounds.py shipped OTHER_CLASSIFIER_FOLDER ...

("shipped" = dreamfusion3d/assets/classifier; e.g. the one before session 37:
`git worktree add /tmp/old 176fcba` and pass /tmp/old/dreamfusion3d/assets/classifier).
"""

import sys

import torch

from dreamfusion3d.cameras import CameraSamplerConfig
from dreamfusion3d.judge.model import ShapeColorClassifier
from dreamfusion3d.judge.train import classifier_accuracy, over_random_backgrounds, render_labelled

torch.set_num_threads(1)
x, ys, yc, _, _ = render_labelled(250, 4, 32, 1007, CameraSamplerConfig(), alpha=True)
coloured = over_random_backgrounds(x, 1.0, torch.Generator().manual_seed(1007))
for folder in sys.argv[1:]:
    judge = ShapeColorClassifier.from_pretrained() if folder == "shipped" else ShapeColorClassifier.from_pretrained(folder)
    white, random = classifier_accuracy(judge, x[:, :3], ys, yc), classifier_accuracy(judge, coloured, ys, yc)
    print(f"{folder}: white shape {white['shape']:.3f} colour {white['color']:.3f} | "
          f"random backgrounds shape {random['shape']:.3f} colour {random['color']:.3f}")
