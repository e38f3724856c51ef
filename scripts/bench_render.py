"""Superseded by `dreamfusion3d bench` (dreamfusion3d/evaluation/bench.py), which times the
sampling / field / compositing split inside a real SDS step, plus the prior UNet, backward,
throughput, memory, fraction of matmul peak and resolution / samples-per-ray scaling.
This wrapper forwards its arguments:
    python scripts/bench_render.py [--field-kind hashgrid|dense] [--shading albedo|lambertian] [--repeats 5]
"""

import sys

from dreamfusion3d.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
