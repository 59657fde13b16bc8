"""Instructions per MAC of the 2-D filters of the README table ("2-D filters on one
channel"): a 96x96 image, ``same`` mode, symmetric boundary (``valid`` for the ``3x3 q7
valid`` row), seeded random non-separable kernels whose exact sums fit int32, ``-O3``;
with ``--match`` the template matching layers instead (an 8x8 template on the 96x96
image; MACs = products of the cross term).  Every output checked against the reference
while measuring.

    python -m edgeconv.bench.filter2d [--target qemu:mps2-an386] [--cycles] [--match]
        [--direct] [--only NAME,..]
"""

from __future__ import annotations

import argparse

import numpy as np

from edgeconv.bench import cycles, target
from edgeconv.codegen.cpus import CPUS
from edgeconv.signal2d import MatchTemplate, SignalFilter2D

ROWS = (("f3q7", "3x3 q7", (3, 3), "q7", "same"),
        ("f3q7v", "3x3 q7 `valid`", (3, 3), "q7", "valid"),
        ("f5q15", "5x5 q15", (5, 5), "q15", "same"),
        ("f5q7", "5x5 q7", (5, 5), "q7", "same"),
        ("f3q15", "3x3 q15", (3, 3), "q15", "same"))


def layers(shape: tuple[int, int] = (96, 96), seed: int = 2026) -> list[SignalFilter2D]:
    """The filters of ``ROWS`` (name, README label, kernel size, format, mode)."""
    rng = np.random.default_rng(seed)
    out = []
    for name, _, ksize, fmt, mode in ROWS:
        dtype = np.int8 if fmt == "q7" else np.int16
        limit = min(int(np.iinfo(dtype).max), 60000 // (ksize[0] * ksize[1]))
        kernel = rng.integers(-limit, limit + 1, size=ksize).astype(dtype)
        out.append(SignalFilter2D(kernel, fmt=fmt, mode=mode, boundary="symmetric",
                                  input_shape=shape, separable=False, name=name))
    return out


MATCH_ROWS = (("m8ncc", "8x8 ncc q7", "ncc", "q7"), ("m8ssd", "8x8 ssd q7", "ssd", "q7"),
              ("m8sad", "8x8 sad q7", "sad", "q7"), ("m8n15", "8x8 ncc q15", "ncc", "q15"))


def match_layers(shape: tuple[int, int] = (96, 96), seed: int = 2027) -> list[MatchTemplate]:
    """The template matchers of ``MATCH_ROWS``: seeded random 8x8 templates."""
    rng = np.random.default_rng(seed)
    out = []
    for name, _, method, fmt in MATCH_ROWS:
        info = np.iinfo(np.int8 if fmt == "q7" else np.int16)
        tpl = rng.integers(info.min, info.max, size=(8, 8), endpoint=True).astype(info.dtype)
        out.append(MatchTemplate(tpl, method=method, input_shape=shape, name=name))
    return out


def main(argv: list[str] | None = None) -> int:
    """Print one line per layer: strategy, instructions, instructions per MAC."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="qemu:mps2-an386")
    parser.add_argument("--cycles", action="store_true", help="also estimate cycles/MAC")
    parser.add_argument("--only", default=None, help="comma-separated layer names")
    parser.add_argument("--direct", action="store_true", help="the portable kernel")
    parser.add_argument("--match", action="store_true", help="template matching layers")
    args = parser.parse_args(argv)
    chosen = match_layers() if args.match else layers()
    if args.only:
        keep = args.only.split(",")
        chosen = [la for la in chosen if la.name in keep]
    cpu = target._board(args.target)[0].cpu
    timing = cycles.timing(cpu) if args.cycles and cpu in CPUS else None
    labels = {name: label for name, label, *_ in (*ROWS, *MATCH_ROWS)}
    for res in target.run(chosen, args.target, "O3", fast=not args.direct, timing=timing):
        cpm = "" if res.cycles_per_mac is None else f"  {res.cycles_per_mac:.2f} cycles/MAC"
        print(f"{labels[res.name]:16s} {res.strategy:14s} {res.instructions:9d} instr "
              f"{res.per_mac:.2f} instr/MAC{cpm}  mismatches {res.mismatches}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
