"""``edgeconv`` command line: ``verify`` generated layers on a target (and ``bench``)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import runpy
import sys
from pathlib import Path

import numpy as np

LAYER_SETS = ("seed", "bench")


def load_layers(source: str) -> list:
    """Layers from ``seed``/``bench`` (benchmark layers L1-L7) or from a Python file that
    defines ``LAYERS`` (a list) or ``layers()`` (returning one)."""
    if source in LAYER_SETS:
        from edgeconv.bench import benchmark_layers

        return list(benchmark_layers().values())
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"--layers {source!r}: neither {', '.join(LAYER_SETS)} nor a file")
    namespace = runpy.run_path(str(path))
    if "LAYERS" in namespace:
        layers = namespace["LAYERS"]
    elif callable(namespace.get("layers")):
        layers = namespace["layers"]()
    else:
        raise ValueError(f"--layers {source!r}: the file defines neither LAYERS nor layers()")
    return list(layers)


def _random_input(layer, seed: int) -> np.ndarray:
    info = np.iinfo(layer.activation_dtype)
    rng = np.random.default_rng(seed)
    return rng.integers(info.min, info.max, size=layer.input_shape, endpoint=True,
                        dtype=layer.activation_dtype)


def verify(target: str, layers: list, *, seed: int = 0, cpu: str | None = None,
           icount: bool = False, out=sys.stdout) -> int:
    """Runs every layer on ``target``, compares with the reference model, prints a table;
    returns the number of layers with a mismatch."""
    import edgeconv.targets

    options: dict = {"cpu": cpu} if cpu else {}
    if icount:
        options["icount"] = True
    if not target.startswith("serial:"):
        layers, skipped = edgeconv.targets.fitting_layers(target, layers)
        if skipped:
            names = ", ".join(layer.name for layer in skipped)
            print(f"{target}: skipping {names} (buffers exceed the board's RAM)", file=out)
    if not layers:
        raise ValueError(f"no layer fits {target}")
    failures = 0
    width = max(12, *(len(layer.name) for layer in layers))
    header = (f"{'layer':<{width}} {'elements':>9} {'mismatches':>10} {'max|diff|':>9} "
              f"{'count':>22}")
    with edgeconv.targets.open(target, layers, **options) as session:
        print(f"{target}: {session.hello.board} {session.hello.cpu}, "
              f"layer hash {session.hello.layer_hash}", file=out)
        print(header, file=out)
        for layer in layers:
            x = _random_input(layer, seed)
            want = layer(x)
            got = session.run(layer.name, x)
            diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
            bad = int(np.count_nonzero(diff))
            failures += bad > 0
            count = "-" if session.last_count is None else \
                f"{session.last_count:,} {session.count_unit}"
            print(f"{layer.name:<{width}} {want.size:>9} {bad:>10} {int(diff.max()):>9} "
                  f"{count:>22}", file=out)
    print(f"{len(layers) - failures}/{len(layers)} layers bit-exact", file=out)
    return failures


def _bench_available() -> bool:
    return importlib.util.find_spec("edgeconv.bench.target") is not None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``edgeconv`` command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"] and _bench_available():
        return importlib.import_module("edgeconv.bench.target").main(argv[1:])
    if argv[:2] == ["demo", "train"]:  # learning a FIR filter on a target (issue 9, 4a)
        return importlib.import_module("edgeconv.demo_train").main(argv[2:])
    parser = argparse.ArgumentParser(prog="edgeconv")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("verify", help="run layers on a target and compare bit for bit")
    p.add_argument("--target", default="native",
                   help="native, qemu:<board>[:<cpu>] or serial:<port>[@baud]")
    p.add_argument("--layers", default="bench",
                   help="seed | bench (benchmark layers L1-L7) | a .py file with LAYERS")
    p.add_argument("--cpu", help="cpu override (qemu:mps2-an385 also runs cortex-m0 code)")
    p.add_argument("--seed", type=int, default=0, help="input random seed")
    p.add_argument("--icount", action="store_true",
                   help="serial: the device is a QEMU run with -icount shift=3 (counts in "
                        "instructions)")
    if _bench_available():
        sub.add_parser("bench", help="benchmark layers on a target (edgeconv.bench.target)")
    sub.add_parser("demo", help="demo train [--target T]: learn a FIR filter on the board "
                                "(edgeconv.demo_train)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        parser.error("demo: the demo is 'edgeconv demo train [--target T] [--epochs N]'")
    try:
        failures = verify(args.target, load_layers(args.layers), seed=args.seed, cpu=args.cpu,
                          icount=args.icount)
    except (ValueError, RuntimeError) as exc:
        print(f"edgeconv verify: {exc}", file=sys.stderr)
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
