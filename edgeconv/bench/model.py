"""A whole .tflite model on an emulated board: ``edgeconv bench model.tflite --target T``.
(``--target native`` runs the same on the host: nanoseconds and host code bytes.)

Builds the network's firmware at ``-O3`` (``--opt``), runs ``net_run`` once on a random
input (instructions per inference under QEMU's ``-icount``), then every node on its own
(instructions per node; skipped where the nodes' buffers do not fit the board next to the
arena), checks every output bit for bit, and reads flash per node from the image's symbols
(``arm-none-eabi-nm``: ``.text`` + ``.rodata`` of each function and its data; with
``--specialize size`` the kernels the nodes share are counted in the total, not per node,
and named in the table's last line). Arena: the
planned bytes of activations and scratch; RAM adds the model's input and output buffers,
which ``net_run`` takes from the caller.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgeconv import progress
from edgeconv.bench.target import OPTS, flash_bytes, with_cpu

# Anchors measured on the same emulator (issue 8): TFLite Micro with CMSIS-NN kernels,
# arm-none-eabi-gcc 12.2 -O3 for cortex-m4+fp, instructions of one Invoke() counted
# exactly on qemu:mps2-an386, and the arena TFLM used (its own input/output included),
# for the MLPerf Tiny architectures the fixtures copy.
TFLM_ANCHORS = {
    "ds_cnn": {"instructions": 7_697_415, "macs": 2_656_768, "arena_bytes": 22_820},
    "resnet8": {"instructions": 29_863_700, "macs": 12_501_632, "arena_bytes": 54_996},
    "mobilenet_v1_025": {"instructions": 24_101_935, "macs": 7_489_664,
                         "arena_bytes": 100_708},
    "fc_autoencoder": {"instructions": 582_935, "macs": 264_192, "arena_bytes": 2_580},
}


@dataclass(frozen=True)
class NodeFigures:
    """One node: its op, kernel, MACs, instructions (None when not run alone) and flash."""

    name: str
    op: str
    kernel: str
    macs: int
    instructions: int | None
    flash_bytes: int
    mismatches: int | None


@dataclass
class ModelFigures:
    """A model's totals on one target, and its nodes."""

    model: str
    target: str
    cpu: str
    opt: str
    instructions: int | None
    count_unit: str | None
    macs: int
    arena_bytes: int
    io_bytes: int
    flash_bytes: int
    mismatches: int
    layers: list[NodeFigures] = field(default_factory=list)
    specialize: str = "speed"
    # specialize="size": flash of each kernel the nodes share (in flash_bytes, not per node)
    shared_flash: dict[str, int] = field(default_factory=dict)

    @property
    def per_mac(self) -> float | None:
        return None if not self.instructions else self.instructions / self.macs


def run(path: str | Path, target: str = "qemu:mps2-an386", *, opt: str = "O3",
        seed: int = 0, specialize: str = "speed") -> ModelFigures:
    """Measure the model in ``path`` on ``target`` (see the module docstring);
    ``specialize``: codegen's ``'speed'`` or ``'size'`` mode."""
    import edgeconv
    from edgeconv import targets
    from edgeconv.codegen import Network, plan_layers, shared_kernels
    from edgeconv.codegen.kernels.shared import check_specialize

    if opt not in OPTS:
        raise ValueError(f"opt={opt!r}: allowed are {', '.join(OPTS)}")
    model = edgeconv.load(path)
    spec = targets.parse_spec(target)
    if spec.kind not in ("qemu", "native"):
        raise ValueError(f"target={target!r}: the model benchmark runs on qemu:<board> "
                         "(instructions under -icount, flash from the built image) or "
                         "native (host nanoseconds and host code bytes)")
    net = Network(model)
    if targets.fitting_layers(target, [net])[1]:
        net = Network(model, nodes=False)
        if targets.fitting_layers(target, [net])[1]:
            need = sum(targets.buffer_bytes(net, spec.cpu))
            raise ValueError(f"model does not fit {target}: the firmware needs {need:,} B, "
                             f"{spec.board.name} leaves {spec.board.ram_bytes:,} B")
    check_specialize(specialize)
    plans = plan_layers([net], cpu=spec.cpu, specialize=specialize)
    planned = {p.ctx.name: p for p in plans}
    shared = [k.name for k in shared_kernels(plans)]
    info = np.iinfo(net.activation_dtype) if net.activation_dtype != np.float32 else None
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=net.input_shape).astype(np.float32) if info is None else
         rng.integers(info.min, int(info.max) + 1, net.input_shape).astype(net.activation_dtype))
    with targets.open(target, net, opt=opt, specialize=specialize) as session:
        with progress.working(f"{target}: whole network"):
            y = session.run(x)
        total, unit = session.last_count, session.count_unit
        bad = int(np.count_nonzero(y != np.asarray(net(x)).reshape(y.shape)))
        nodes = {n.layer: n for n in session.trace(x)} if net.nodes else {}
        image = session.image
    names = [layer.name for layer in net.layers] + [net.name]
    flash = flash_bytes(image, names + shared,
                        nm="nm" if spec.kind == "native" else "arm-none-eabi-nm")
    rows = []
    for step in net.steps:
        if step.kind != "kernel":
            continue
        name = step.layer.name
        n = nodes.get(name)
        rows.append(NodeFigures(name, step.opcode, planned[name].plan.strategy,
                                int(step.layer.macs()) if hasattr(step.layer, "macs") else 0,
                                None if n is None else n.count, flash[name],
                                None if n is None else n.mismatches))
    io = (int(np.prod(net.input_shape)) * np.dtype(net.activation_dtype).itemsize
          + int(np.prod(net.output_shape)) * np.dtype(net.output_dtype).itemsize)
    return ModelFigures(Path(path).stem, target, spec.cpu, opt, total, unit, net.macs(),
                        planned[net.name].plan.scratch_bytes, io, sum(flash.values()),
                        bad + sum(r.mismatches or 0 for r in rows), rows, specialize,
                        {name: flash[name] for name in shared})


def text_table(fig: ModelFigures) -> str:
    """Per node, then the totals (and the TFLM anchor where the model is one of theirs)."""
    lines = [f"{fig.model} on {fig.target} ({fig.cpu}, -{fig.opt}, specialize={fig.specialize})",
             f"{'node':<16} {'op':<18} {'kernel':<16} {'MACs':>10} "
             f"{fig.count_unit or 'count':>13} {'per MAC':>9} {'flash B':>8}"]
    for r in fig.layers:
        ipm = f"{r.instructions / r.macs:.2f}" if r.instructions and r.macs else "-"
        count = "-" if r.instructions is None else f"{r.instructions:,}"
        lines.append(f"{r.name:<16} {r.op:<18} {r.kernel:<16} {r.macs:>10,} {count:>13} "
                     f"{ipm:>9} {r.flash_bytes:>8,}")
    conv = sum(r.instructions or 0 for r in fig.layers
               if r.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"))
    rest = sum(r.instructions or 0 for r in fig.layers) - conv
    lines.append(f"total: {fig.instructions:,} {fig.count_unit} per inference, "
                 f"{fig.per_mac:.2f} per MAC, {fig.macs:,} MACs; conv/FC nodes {conv:,}, "
                 f"other nodes {rest:,}; arena {fig.arena_bytes:,} B (+ {fig.io_bytes:,} B "
                 f"input/output), flash {fig.flash_bytes:,} B; "
                 f"{'bit-exact' if not fig.mismatches else f'{fig.mismatches} MISMATCHES'}")
    if fig.shared_flash:
        lines.append("shared kernels (in the flash total): " + ", ".join(
            f"{name} {size:,} B" for name, size in fig.shared_flash.items()))
    anchor = TFLM_ANCHORS.get(fig.model)
    if anchor and fig.instructions and fig.count_unit == "instructions":
        ipm = anchor["instructions"] / anchor["macs"]
        ram = (fig.arena_bytes + fig.io_bytes) / anchor["arena_bytes"]
        lines.append(f"TFLite Micro + CMSIS-NN (M4): {ipm:.2f} instr/MAC, arena "
                     f"{anchor['arena_bytes']:,} B -> ours {fig.per_mac / ipm:.2f}x "
                     f"instructions, {ram:.2f}x RAM (arena + input/output)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``edgeconv bench MODEL.tflite``."""
    from edgeconv.cli import HelpFormatter, boards_help, write_json

    parser = argparse.ArgumentParser(
        prog="edgeconv bench", description=__doc__.split("\n")[0],
        formatter_class=HelpFormatter,
        epilog="examples:\n  edgeconv bench model.tflite\n"
               "  edgeconv bench model.tflite --target qemu:mps3-an547 --json figures.json\n"
               "layers instead of a model: 'edgeconv bench --help'")
    parser.add_argument("model", help="a .tflite file")
    parser.add_argument("--target", default="qemu:mps2-an386",
                        help=f"native (host nanoseconds and host code bytes), or "
                             f"qemu:<board>[:<cpu>], one of {boards_help()}")
    parser.add_argument("--cpu", help="CPU override (qemu:mps2-an385 also runs cortex-m0 "
                                      "code)")
    parser.add_argument("--opt", default="O3", choices=OPTS, help="optimisation level")
    parser.add_argument("--seed", type=int, default=0, help="random input seed")
    parser.add_argument("--specialize", default="speed", choices=("speed", "size"),
                        help="speed: every layer its own kernel; size: conv, pool and FC "
                             "layers of one kind share one kernel (less flash, slower)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON ('-' for "
                                                       "stdout; no progress bars)")
    args = parser.parse_args(argv)
    with progress.quiet(bool(args.json)):
        fig = run(args.model, with_cpu(args.target, args.cpu), opt=args.opt, seed=args.seed,
                  specialize=args.specialize)
    print(text_table(fig), file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        write_json(args.json, {**asdict(fig), "instructions_per_mac": fig.per_mac})
    return 1 if fig.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
