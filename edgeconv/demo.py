"""``make demo``: the seed's examples through the reference model, the generated C
(native build) and an emulated Cortex-M4 over a serial line, then the 2-D filter pictures
(:mod:`edgeconv.demo_image`: Sobel, blur, template search, PNGs in ./demo-images).

Run with ``python -m edgeconv.demo [--target qemu:mps2-an386]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from edgeconv import demo_image, signal
from edgeconv.bench import benchmark_layers
from edgeconv.bench.layers import seed_layers
from edgeconv.cli import verify


def print_reference_examples(out=sys.stdout) -> None:
    """The seed's worked examples, computed by the reference model."""
    x = np.array([0, 1, 2, 3, 4], dtype=np.int16)
    w = np.array([1, -1, 2], dtype=np.int16)
    print("Reference model: the seed's examples", file=out)
    print(f"  x = {x.tolist()}, w = {w.tolist()}", file=out)
    for mode in ("full", "same", "valid"):
        y = signal.convolve(x.astype(float), w.astype(float), mode=mode)
        print(f"  convolve {mode:<5} -> {y.astype(int).tolist()}", file=out)
    # Q15 (arm_conv_q15): x/8 and w/8 as Q15 values give x*w/64, i.e. full * 512 in Q15.
    yq = signal.convolve(x * 4096, w * 4096, mode="full")
    print(f"  arm_conv_q15(x/8, w/8) -> {yq.tolist()} = full * 512", file=out)
    commutes = np.array_equal(signal.convolve(x, w), signal.convolve(w, x))
    xf, wf = x.astype(float), w.astype(float)
    flipped = np.array_equal(signal.correlate(xf, wf), signal.convolve(xf, wf[::-1]))
    print(f"  conv(x, w) == conv(w, x): {commutes}; correlate(x, w) == conv(x, w[::-1]): "
          f"{flipped}", file=out)
    l7 = benchmark_layers()["L7"]
    y = l7(np.zeros(l7.input_shape, dtype=np.int8))
    print(f"  conv 5x5x3, F=3, S=2, P=1, K=2 -> output shape {y.shape}", file=out)
    print(file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeconv.demo", description=__doc__)
    parser.add_argument("--target", action="append",
                        help="targets to verify on (default: native and qemu:mps2-an386)")
    parser.add_argument("--images", default="demo-images", type=Path,
                        help="folder for the pictures of the 2-D filter demo, run on the "
                             "last target (default: ./demo-images, git-ignored)")
    args = parser.parse_args(argv)
    print_reference_examples()
    failures = 0
    chosen = args.target or ["native", "qemu:mps2-an386"]
    for target in chosen:
        print(f"Generated C on {target}, every output compared with the reference model")
        failures += verify(target, seed_layers())
        print()
    print(f"Pictures: Sobel edges, Gaussian blur and an 8x8 template search on {chosen[-1]}")
    try:
        demo_image.run(args.images, chosen[-1])
    except RuntimeError as exc:
        print(f"  FAILED: {exc}")
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
