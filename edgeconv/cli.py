"""The ``edgeconv`` command: generate C for layers or a .tflite model, verify it bit for bit
on a target, benchmark it, check the reference model against TFLite, write a report, run
the demo.

Every user error prints one line on stderr naming what was wrong and exits with 2; a
mismatch between the board and the reference model exits with 1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from edgeconv import progress
from edgeconv.model.graph import SEMANTICS

LAYER_SETS = ("seed", "bench")
OPTS = ("O0", "O1", "O2", "O3", "Os")


class UserError(ValueError):
    """A mistake in the command line or its inputs: one line, exit code 2."""


# ----------------------------------------------------------------------------- inputs

def load_layers(source: str) -> list:
    """Layers from ``seed`` (the seed's 1-D filters and its 5x5x3 conv), ``bench`` (the
    benchmark layers L1-L7) or a Python file that defines ``LAYERS`` (a list) or
    ``layers()`` (returning one)."""
    if source == "seed":
        from edgeconv.bench.layers import seed_layers

        return seed_layers(with_bench=False)
    if source == "bench":
        from edgeconv.bench import benchmark_layers

        return list(benchmark_layers().values())
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"--layers {source!r}: neither {', '.join(LAYER_SETS)} nor a file")
    try:
        namespace = runpy.run_path(str(path))
    except Exception as exc:  # the user's own file failed: one line saying where and why
        raise ValueError(f"--layers {source!r}: the file failed to run{_where(exc, path)}: "
                         f"{type(exc).__name__}: {exc}") from None
    if "LAYERS" in namespace:
        layers = namespace["LAYERS"]
    elif callable(namespace.get("layers")):
        layers = namespace["layers"]()
    else:
        raise ValueError(f"--layers {source!r}: the file defines neither LAYERS nor layers()")
    return _checked_layers(source, layers)


def _where(exc: Exception, path: Path) -> str:
    """`` at line N`` of ``path`` where ``exc`` was raised (or met, for a SyntaxError)."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f" at line {exc.lineno}"
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__)
             if Path(f.filename) == path]
    return f" at line {lines[-1]}" if lines else ""


def _checked_layers(source: str, layers) -> list:
    """``layers`` as a list, ValueError unless it is a non-empty list or tuple of layers."""
    from edgeconv.layers._base import WindowLayer
    from edgeconv.signal import SignalFilter

    if not isinstance(layers, (list, tuple)):
        raise ValueError(f"--layers {source!r}: LAYERS (or layers()) is a "
                         f"{type(layers).__name__}, must be a list of edgeconv layers")
    if not layers:
        raise ValueError(f"--layers {source!r}: the list of layers is empty")
    for i, layer in enumerate(layers):
        if not isinstance(layer, (WindowLayer, SignalFilter)):
            raise ValueError(f"--layers {source!r}: item {i} is a {type(layer).__name__} "
                             f"({layer!r:.40}), must be an edgeconv layer (Conv2D, "
                             "DepthwiseConv2D, Conv1D, MaxPool2D, AvgPool2D, SignalFilter)")
    return list(layers)


def is_model_path(source: str | None) -> bool:
    """Whether ``source`` names a .tflite file."""
    return source is not None and source.lower().endswith(".tflite")


def load_model(path: str, semantics: str = "tflite"):
    """The model in ``path``; ValueError naming the file when it cannot be read."""
    import edgeconv

    if not Path(path).is_file():
        raise ValueError(f"model {path!r}: no such file")
    try:
        return edgeconv.load(path, semantics=semantics)
    except ValueError as exc:
        raise ValueError(f"model {path!r}: {exc}") from None
    except Exception as exc:  # a corrupt flatbuffer raises whatever the parser hits
        raise ValueError(f"model {path!r}: not a readable .tflite file "
                         f"({type(exc).__name__}: {exc})") from None


def _random_input(shape: tuple[int, ...], dtype: Any, seed: int) -> np.ndarray:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


# ----------------------------------------------------------------------------- verify

def verify(target: str, layers: list, *, seed: int = 0, cpu: str | None = None,
           icount: bool = False, opt: str | None = None, out=sys.stdout,
           rows: list | None = None) -> int:
    """Runs every layer on ``target``, compares with the reference model, prints a table;
    returns the number of layers with a mismatch (``rows`` collects them as dicts)."""
    import edgeconv.targets

    options: dict = {"cpu": cpu} if cpu else {}
    if icount:
        options["icount"] = True
    if opt:
        options["opt"] = opt
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
        for layer in progress.bar(layers, desc=f"{target}: verifying", unit="layer"):
            x = _random_input(layer.input_shape, layer.activation_dtype, seed)
            want = layer(x)
            got = session.run(layer.name, x)
            diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
            bad = int(np.count_nonzero(diff))
            failures += bad > 0
            count = "-" if session.last_count is None else \
                f"{session.last_count:,} {session.count_unit}"
            progress.write(f"{layer.name:<{width}} {want.size:>9} {bad:>10} "
                           f"{int(diff.max()):>9} {count:>22}", file=out)
            if rows is not None:
                rows.append({"layer": layer.name, "elements": int(want.size),
                             "mismatches": bad, "count": session.last_count,
                             "count_unit": session.count_unit})
    print(f"{len(layers) - failures}/{len(layers)} layers bit-exact", file=out)
    return failures


def verify_model(target: str, model, *, seed: int = 0, cpu: str | None = None,
                 opt: str | None = None, out=sys.stdout, doc: dict | None = None,
                 crc: bool = False, specialize: str = "speed") -> int:
    """Runs a model's network on ``target``: the whole ``net_run`` on a random input, then
    every node on its own; prints a table per node and the totals; returns the number of
    mismatching nodes (whole network included). ``doc`` collects the figures. ``crc``:
    node outputs are compared on their CRC-32 and read only on a mismatch (slow links);
    ``specialize``: codegen's ``'speed'`` or ``'size'`` mode."""
    import edgeconv.targets
    from edgeconv.codegen import Network, plan_layers

    net = Network(model)
    options: dict = {"cpu": cpu} if cpu else {}
    if opt:
        options["opt"] = opt
    if specialize != "speed":
        options["specialize"] = specialize
    if not target.startswith("serial:") and not _fits(target, net, cpu):
        net = Network(model, nodes=False)  # the whole network may still fit
        _fits(target, net, cpu, raise_error=True)
        print(f"{target}: the nodes' own buffers do not fit next to the arena: the whole "
              "network only, no node-by-node run", file=out)
    planned = {p.ctx.name: p for p in plan_layers([net], cpu=cpu or _target_cpu(target),
                                                  specialize=specialize)}
    x = _random_input(net.input_shape, net.activation_dtype, seed)
    with edgeconv.targets.open(target, net, **options) as session:
        with progress.working(f"{target}: whole network"):
            y = session.run(x)
        whole_bad = int(np.count_nonzero(y != net(x)))
        total, unit = session.last_count, session.count_unit
        nodes = session.trace(x, crc=crc) if net.nodes else []
        print(f"{target}: {session.hello.board} {session.hello.cpu}, "
              f"{len(net.steps)} ops, layer hash {session.hello.layer_hash}", file=out)
    arena = planned[net.name].plan.scratch_bytes
    print(f"{'node':<16} {'op':<18} {'output':<14} {'kernel':<13} {'MACs':>10} "
          f"{'count':>12} {'scratch B':>9} bit-exact", file=out)
    rows = []
    for n in nodes:
        p = planned[n.layer]
        print(f"{n.layer:<16} {n.opcode:<18} {'x'.join(map(str, n.output_shape)):<14} "
              f"{p.plan.strategy:<13} {n.macs or 0:>10,} "
              f"{'-' if n.count is None else f'{n.count:,}':>12} "
              f"{p.plan.scratch_bytes:>9} "
              f"{('yes' if n.fetched else 'yes (CRC)') if n.bit_exact else f'NO ({n.mismatches})'}",
              file=out)
        rows.append({"node": n.layer, "op": n.opcode, "output_shape": list(n.output_shape),
                     "kernel": p.plan.strategy, "macs": n.macs, "count": n.count,
                     "scratch_bytes": p.plan.scratch_bytes, "mismatches": n.mismatches})
    macs = net.macs()
    per_mac = f", {total / macs:.2f} {unit}/MAC" if total and macs else ""
    print(f"whole network: {'bit-exact' if not whole_bad else f'{whole_bad} mismatches'}, "
          f"{'-' if total is None else f'{total:,}'} {unit or ''} per inference{per_mac}, "
          f"{macs:,} MACs, arena {arena:,} B", file=out)
    if doc is not None:
        doc.update(target=target, board=session.hello.board, cpu=session.hello.cpu,
                   count=total, count_unit=unit, macs=macs, arena_bytes=arena,
                   mismatches=whole_bad, nodes=rows)
    return (whole_bad > 0) + sum(not n.bit_exact for n in nodes)


def _target_cpu(target: str) -> str:
    from edgeconv.targets import parse_spec

    spec = parse_spec(target)
    return spec.cpu or "generic"


def _fits(target: str, net, cpu: str | None, *, raise_error: bool = False) -> bool:
    """Whether the network's firmware buffers fit the board's RAM; with ``raise_error``
    a ValueError in one line when they do not."""
    from edgeconv.targets import buffer_bytes, limits

    lim = limits(target)
    need = buffer_bytes(net, cpu or lim.cpu)
    if sum(need) <= lim.ram_bytes:
        return True
    if raise_error:
        raise ValueError(f"model does not fit {target}: the firmware needs {sum(need):,} B "
                         f"(input {need[0]:,}, output {need[1]:,}, arena {need[2]:,}), "
                         f"{lim.board} leaves {lim.ram_bytes:,} B")
    return False


# ----------------------------------------------------------------------------- commands

def cmd_generate(args: argparse.Namespace) -> int:
    from edgeconv import codegen

    source = load_model(args.source, args.semantics) if is_model_path(args.source) \
        else load_layers(args.source)
    prefix = args.prefix or ("net" if is_model_path(args.source) else "edgeconv_net")
    gen = codegen.generate(source, args.output, prefix, cpu=args.cpu, registry=args.registry,
                           specialize=args.specialize)
    doc = {"header": str(gen.header), "source": str(gen.source), "hash": gen.hash,
           "layers": [{"name": i.name, "op": i.op, "strategy": i.strategy,
                       "scratch_bytes": i.scratch_bytes} for i in gen.layers]}
    if args.json:
        _write_json(args.json, doc)
    else:
        for path in gen.sources + (gen.header,):
            print(path)
        for i in gen.layers:
            print(f"  {i.name}: {i.op}, {i.strategy}, scratch {i.scratch_bytes} B")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    source = args.source or args.layers
    out = sys.stderr if args.json else sys.stdout
    if is_model_path(source):
        doc: dict = {}
        failures = verify_model(args.target, load_model(source, args.semantics),
                                seed=args.seed, cpu=args.cpu, opt=args.opt, out=out, doc=doc,
                                crc=args.crc, specialize=args.specialize)
    else:
        rows: list = []
        failures = verify(args.target, load_layers(source), seed=args.seed, cpu=args.cpu,
                          icount=args.icount, opt=args.opt, out=out, rows=rows)
        doc = {"target": args.target, "layers": rows}
    if args.json:
        _write_json(args.json, doc)
    return 1 if failures else 0


def cmd_check(args: argparse.Namespace) -> int:
    package, interpreter = {"tflite": ("ai_edge_litert", "ai-edge-litert"),
                            "tflm": ("tflite_micro", "tflite-micro")}[args.semantics]
    if importlib.util.find_spec(package) is None:
        raise UserError(f"check --semantics {args.semantics} needs its interpreter: pip "
                        f"install {interpreter}")
    from edgeconv.model import compare_with_tflite, first_difference
    from edgeconv.model.compare import INTERPRETERS

    model = load_model(args.model, args.semantics)
    results = compare_with_tflite(args.model, seed=args.seed, model=model)
    first = first_difference(results)
    doc = {"model": args.model, "tensors": len(results),
           "bit_exact": first is None,
           "first_difference": None if first is None else first.name}
    out = sys.stderr if args.json else sys.stdout
    if first is None:
        print(f"{args.model}: {len(results)} tensors, every element equal to "
              f"{INTERPRETERS[args.semantics]}", file=out)
    else:
        print(f"{args.model}: first differing tensor {first.name!r}: {first}", file=out)
    if args.json:
        _write_json(args.json, doc)
    return 0 if first is None else 1


def cmd_report(args: argparse.Namespace) -> int:
    missing = [m for m in ("matplotlib", "tqdm") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"report needs {' and '.join(missing)}: pip install 'edgeconv[report]'")
    from edgeconv import report

    source = args.source or args.layers
    if is_model_path(source):
        load_model(source)  # a missing or unreadable file: one line
        data = report.build(source, target=args.target, opt=args.opt, seed=args.seed,
                            quiet=bool(args.json))
    else:
        data = report.build(load_layers(source), target=args.target, opt=args.opt,
                            seed=args.seed, quiet=bool(args.json), label=source)
    path = report.write(data, args.output, quiet=bool(args.json))
    out = sys.stderr if args.json else sys.stdout
    exact = "bit-exact" if not data.mismatches else f"{data.mismatches} MISMATCHES"
    print(f"{path}: {len(data.rows)} layers on {data.target}, {exact}, "
          f"{len(data.float_errors)} compared with float", file=out)
    if args.json:
        _write_json(args.json, {**report.to_json(data), "html": str(path)})
    return 1 if data.mismatches else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from edgeconv import demo

    return demo.main(sum((["--target", t] for t in args.target or []), []))


def _write_json(path: str, doc: dict) -> None:
    text = json.dumps(doc, indent=2, default=lambda v: v.tolist() if hasattr(v, "tolist")
                      else str(v)) + "\n"
    if path == "-":
        sys.stdout.write(text)
    else:
        Path(path).write_text(text)


# ----------------------------------------------------------------------------- parser

class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown (not for on/off flags, nor "default: None": such options say in
    words what happens without them), examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.nargs == 0 or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


# For the commands other modules parse (bench, demo train, demo image): the same help
# style, --json PATH ('-': stdout) and list of boards.
HelpFormatter = _Formatter
write_json = _write_json


def _boards_help() -> str:
    from edgeconv.targets.boards import BOARDS

    return ", ".join(f"qemu:{b.name} ({b.cpu})" for b in BOARDS.values() if b.machine)


boards_help = _boards_help


def _add_source(p: argparse.ArgumentParser) -> None:
    """A model (positional) or a layer set (``--layers``)."""
    p.add_argument("source", nargs="?", help="a .tflite model (else --layers)")
    p.add_argument("--layers", default="bench",
                   help="seed | bench (layers L1-L7) | a .py file defining LAYERS")


def build_parser() -> argparse.ArgumentParser:
    from edgeconv import __version__
    from edgeconv.codegen.cpus import CPU_NAMES

    parser = argparse.ArgumentParser(
        prog="edgeconv", formatter_class=_Formatter,
        description="Fixed-point convolution for microcontrollers: bit-exact reference, "
                    "generated C, proof on the board.",
        epilog="examples:\n"
               "  edgeconv generate model.tflite -o out/ --cpu cortex-m4\n"
               "  edgeconv verify model.tflite --target qemu:mps2-an386\n"
               "  edgeconv verify --layers bench --target native\n"
               "  edgeconv bench --target qemu:mps2-an386 --layers L2,L7\n"
               "  edgeconv bench --target qemu:mps2-an386 --layers my_layers.py\n"
               "  edgeconv check model.tflite\n"
               "  edgeconv demo image -o pictures/\n"
               "  edgeconv report model.tflite --target qemu:mps2-an386 -o report.html\n"
               "run 'edgeconv COMMAND --help' for a command's options")
    parser.add_argument("--version", action="version", version=f"edgeconv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    targets_help = f"native, serial:<port>[@baud], or {_boards_help()}"

    g = sub.add_parser("generate", formatter_class=_Formatter,
                       help="write C for a .tflite model or a layer set",
                       description="Write <prefix>.h and <prefix>.c: one function per layer "
                                   "(a model: one per node and <prefix>_run over one arena).",
                       epilog="examples:\n"
                              "  edgeconv generate model.tflite -o out/ --cpu cortex-m4\n"
                              "  edgeconv generate model.tflite -o out/ --specialize size\n"
                              "  edgeconv generate bench -o gen/ --cpu cortex-m55 --registry")
    g.add_argument("source", help="a .tflite model, seed, bench, or a .py file with LAYERS")
    g.add_argument("-o", "--output", required=True, help="output folder")
    g.add_argument("--cpu", default="generic", choices=CPU_NAMES, help="CPU to generate for")
    g.add_argument("--prefix", help="file and symbol prefix (default: net for a model, "
                                    "edgeconv_net for layers)")
    g.add_argument("--semantics", choices=SEMANTICS, default="tflite",
                   help="a model's arithmetic: tflite (LiteRT's reference kernels) or tflm "
                        "(TFLite Micro's, where they differ: docs/semantics.md)")
    g.add_argument("--registry", action="store_true",
                   help="also write the firmware harness's layer table")
    g.add_argument("--specialize", default="speed", choices=("speed", "size"),
                   help="speed: every layer its own kernel; size: conv, pool and FC layers "
                        "of one kind share one kernel (less flash, slower)")
    g.add_argument("--json", metavar="PATH", help="write what was generated as JSON "
                                                   "('-' for stdout)")
    g.set_defaults(run=cmd_generate)

    v = sub.add_parser("verify", formatter_class=_Formatter,
                       help="run generated code on a target and compare bit for bit",
                       description="Build the firmware for the target, run every layer (a "
                                   "model: the whole network, then node by node) on random "
                                   "input and compare each element with the reference model.",
                       epilog="examples:\n"
                              "  edgeconv verify model.tflite --target qemu:mps2-an386\n"
                              "  edgeconv verify --layers bench --target qemu:mps3-an547\n"
                              "  edgeconv verify --layers my_layers.py --target native\n"
                              "  edgeconv verify --target serial:/dev/ttyACM0@115200\n"
                              "counts: instructions under QEMU (-icount), cycles from DWT "
                              "or SysTick on a board, ns natively; the README's tables are "
                              "-O3 builds")
    _add_source(v)
    v.add_argument("--target", default="native", help=targets_help)
    v.add_argument("--cpu", choices=CPU_NAMES, help="CPU override (qemu:mps2-an385 also runs "
                                                    "cortex-m0 code)")
    v.add_argument("--opt", default="O3", choices=OPTS, help="firmware optimisation level")
    v.add_argument("--seed", type=int, default=0, help="random input seed")
    v.add_argument("--semantics", choices=SEMANTICS, default="tflite",
                   help="a model's arithmetic: tflite (LiteRT) or tflm (TFLite Micro)")
    v.add_argument("--crc", action="store_true",
                   help="a model, node by node: compare each node's output on its CRC-32 and "
                        "read it only on a mismatch (for slow links)")
    v.add_argument("--icount", action="store_true",
                   help="serial: the device is a QEMU run with -icount shift=3 (counts in "
                        "instructions)")
    v.add_argument("--specialize", default="speed", choices=("speed", "size"),
                   help="a model's code: speed (every layer its own kernel) or size (conv, "
                        "pool and FC layers of one kind share one kernel)")
    v.add_argument("--json", metavar="PATH", help="also write the results as JSON "
                                                   "('-' for stdout; the table goes to stderr)")
    v.set_defaults(run=cmd_verify)

    b = sub.add_parser("bench", formatter_class=_Formatter, add_help=False,
                       help="instructions, cycles, flash, scratch and stack of layers "
                            "(L1-L7 or your .py) or a .tflite model on an emulated board "
                            "('edgeconv bench --help')")
    b.set_defaults(run=None)

    c = sub.add_parser("check", formatter_class=_Formatter,
                       help="the reference model against the LiteRT interpreter, tensor by "
                            "tensor",
                       description="Run a .tflite model in edgeconv's reference model and in "
                                   "the LiteRT interpreter (reference kernels) and compare "
                                   "every intermediate tensor.",
                       epilog="examples:\n  edgeconv check model.tflite --seed 3\n"
                              "  edgeconv check model.tflite --semantics tflm")
    c.add_argument("model", help="a .tflite file")
    c.add_argument("--seed", type=int, default=0, help="random input seed")
    c.add_argument("--semantics", choices=SEMANTICS, default="tflite",
                   help="tflite: against the LiteRT interpreter; tflm: against TFLite "
                        "Micro's (tflite-micro package)")
    c.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    c.set_defaults(run=cmd_check)

    r = sub.add_parser("report", formatter_class=_Formatter,
                       help="an HTML page of a model's or layers' figures: counts, flash, "
                            "arena, fixed point against float",
                       description="Measure a .tflite model or a layer list on a target "
                                   "(every output checked bit for bit) and write one "
                                   "self-contained HTML page: instructions (and estimated "
                                   "cycles) per layer, flash per layer, the arena plan as "
                                   "boxes of offset x lifetime, and for layers from float "
                                   "the error of fixed point against float (histogram, SQNR "
                                   "per channel).",
                       epilog="examples:\n"
                              "  edgeconv report model.tflite --target qemu:mps2-an386 "
                              "-o report.html\n"
                              "  edgeconv report --layers bench --target qemu:mps3-an547 "
                              "-o l1-l7.html\n"
                              "  edgeconv report --layers my_layers.py --target native "
                              "-o mine.html --json -\n"
                              "needs matplotlib and tqdm: pip install 'edgeconv[report]'")
    _add_source(r)
    r.add_argument("--target", default="qemu:mps2-an386",
                   help=f"native (host ns and host code bytes), or {_boards_help()}")
    r.add_argument("-o", "--output", required=True, help="the .html file to write")
    r.add_argument("--opt", default="O3", choices=("O3", "Os"),
                   help="firmware optimisation level")
    r.add_argument("--seed", type=int, default=0, help="random input seed")
    r.add_argument("--json", metavar="PATH", help="also write the figures as JSON ('-' for "
                                                   "stdout; no progress bar)")
    r.set_defaults(run=cmd_report)

    d = sub.add_parser("demo", formatter_class=_Formatter,
                       help="the seed's examples through the reference, generated C and an "
                            "emulated board (make demo); demo train, demo image",
                       epilog="example:\n  edgeconv demo --target qemu:mps3-an547\n"
                              "learning on the board (a FIR filter trained by fixed-point SGD, "
                              "then a CNN's last layer fine-tuned):\n"
                              "  edgeconv demo train [--target qemu:mps2-an386] [--epochs N] "
                              "[--only filter|cnn]\n"
                              "pictures: edge detection, blur and template search as PNGs:\n"
                              "  edgeconv demo image [--target native] [-o demo-images]\n"
                              "('edgeconv demo train --help', 'edgeconv demo image --help')")
    d.add_argument("--target", action="append",
                   help=f"a target to verify on, repeatable: {targets_help} (default: native "
                        "and qemu:mps2-an386)")
    d.set_defaults(run=cmd_demo)
    return parser


def _delegated(argv: list[str]) -> tuple[str, str, list[str]] | None:
    """(module, command, its arguments) for the commands whose module parses its own
    options: ``bench`` (a model anywhere among its arguments: edgeconv.bench.model),
    ``demo train`` (learning a FIR filter on a target) and ``demo image`` (pictures)."""
    if argv[:1] == ["bench"]:
        model = any(is_model_path(a) for a in argv[1:] if not a.startswith("-"))
        return f"edgeconv.bench.{'model' if model else 'target'}", "bench", argv[1:]
    if argv[:1] == ["demo"] and argv[1:2] in (["train"], ["image"]):
        return f"edgeconv.demo_{argv[1]}", f"demo {argv[1]}", argv[2:]
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``edgeconv`` command."""
    argv = sys.argv[1:] if argv is None else argv
    delegated = _delegated(argv)
    if delegated is not None:  # commands that parse their own options
        module, name, rest = delegated
        try:
            return importlib.import_module(module).main(rest)
        except (ValueError, RuntimeError, OSError) as exc:  # bad --target, --opt, file...
            print(f"edgeconv {name}: {exc}".splitlines()[0], file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    try:
        with progress.quiet(bool(getattr(args, "json", None))):  # CI tools read the output
            return args.run(args)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"edgeconv {args.command}: {exc}".splitlines()[0], file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
