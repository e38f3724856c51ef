"""Put the turntables of several generate runs side by side in one GIF (for the README):
    python scripts/make_readme_gif.py docs/generate_turntables.gif RUN_DIR [RUN_DIR ...]
"""

import sys

import imageio.v3 as iio
import numpy as np

out, runs = sys.argv[1], sys.argv[2:]
videos = [iio.imread(f"{run}/turntable.mp4") for run in runs]  # each [T, H, W, 3]
frames = min(len(v) for v in videos)
strip = np.concatenate([v[:frames] for v in videos], axis=2)
iio.imwrite(out, strip, duration=1000 / 24, loop=0)
print(f"wrote {out}: {frames} frames of {strip.shape[2]}x{strip.shape[1]}")
