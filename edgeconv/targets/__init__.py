"""Run generated layers on a target and get their outputs back.

``open(spec, layers, **options)`` with ``spec``:

- ``native``: the firmware harness compiled for the host, serving a pty;
- ``qemu:<board>`` (``mps2-an385`` Cortex-M3, ``mps2-an386`` M4, ``mps2-an500`` M7,
  ``mps2-an505`` M33, ``mps3-an547`` M55, ``netduinoplus2``, ``microbit``): firmware built
  for the board and booted in qemu-system-arm;
  ``qemu:mps2-an385:cortex-m0`` (or option ``cpu='cortex-m0'``) builds Cortex-M0 code;
- ``serial:<port>[@baud]``: an already flashed board (``/dev/ttyACM0@115200``,
  ``/dev/pts/3``, ``socket://host:port``); nothing is built, the layer hash is checked.

Options: ``cpu`` (override, see above), ``opt`` (the firmware's optimisation level,
``'O2'`` by default; ``'O3'`` as the README's benchmark tables), ``strategy``, ``specialize`` and
``scratch_budget`` (passed to codegen), ``gen_dir`` + ``expected_hash`` (use already
generated C instead of codegen),
``timeout``/``run_timeout``/``retries`` (client), ``qemu`` (binary), ``icount`` (QEMU
boards: run with ``-icount shift=3``, default on MPS2/MPS3; ``serial:``: the device is a
QEMU started with ``-icount shift=3``, so timer counts convert to instructions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import serial

from edgeconv.targets import build
from edgeconv.targets.boards import BOARDS, Board, board
from edgeconv.targets.client import Client, DeviceDisconnectedError
from edgeconv.targets.process import PtyProcess
from edgeconv.targets.qemu import QemuMachine
from edgeconv.targets.session import Session

__all__ = ["open", "limits", "fitting_layers", "buffer_bytes", "parse_spec", "Session",
           "TargetLimits", "BOARDS"]

DEFAULT_BAUD = 115200
BAUD_RANGE = (50, 4_000_000)  # POSIX B50 .. Linux B4000000
_CLIENT_OPTIONS = ("timeout", "run_timeout", "retries", "reset_retries")
_CODEGEN_OPTIONS = ("strategy", "scratch_budget", "specialize")


@dataclass(frozen=True)
class TargetSpec:
    """A parsed target spec."""

    kind: str  # native | qemu | serial
    board: Board | None
    cpu: str | None = None
    port: str | None = None
    baud: int = DEFAULT_BAUD


def parse_spec(spec: str) -> TargetSpec:
    """Parses ``native``, ``qemu:<board>[:<cpu>]`` or ``serial:<port>[@baud]``."""
    if not isinstance(spec, str):
        raise ValueError(f"spec={spec!r}: must be a string such as 'native', "
                         "'qemu:<board>' or 'serial:<port>[@baud]'")
    if spec == "native":
        return TargetSpec("native", BOARDS["native"], "generic")
    kind, sep, rest = spec.partition(":")
    if kind == "qemu" and sep:
        name, _, cpu = rest.partition(":")
        b = board(name)
        if b.machine is None:
            raise ValueError(f"spec={spec!r}: board {name} does not run in QEMU")
        return TargetSpec("qemu", b, b.check_cpu(cpu or None))
    if kind == "serial" and rest:
        return _serial_spec(spec, rest)
    raise ValueError(f"spec={spec!r} must be 'native', 'qemu:<board>[:<cpu>]' "
                     f"(boards: {', '.join(b for b in BOARDS if b != 'native')}) "
                     f"or 'serial:<port>[@baud]'")


def _serial_spec(spec: str, rest: str) -> TargetSpec:
    """``<port>[@baud]`` of a ``serial:`` spec, both checked."""
    port, at, baud = rest.rpartition("@")
    if not at:
        port, baud = rest, str(DEFAULT_BAUD)
    if not port.strip():
        raise ValueError(f"spec={spec!r}: empty port, must be 'serial:<port>[@baud]'")
    lo, hi = BAUD_RANGE
    if not (baud.isascii() and baud.isdigit()) or not lo <= int(baud) <= hi:
        raise ValueError(f"spec={spec!r}: baud={baud!r}, allowed range is the integers "
                         f"[{lo}, {hi}]")
    return TargetSpec("serial", None, port=port, baud=int(baud))


@dataclass(frozen=True)
class TargetLimits:
    """What fits a target: ``ram_bytes`` for input + output + scratch of all layers'
    largest buffers together, ``cpu`` the code is generated for."""

    ram_bytes: int
    cpu: str
    board: str


def limits(spec: str, *, board_name: str | None = None) -> TargetLimits:
    """Memory limits of ``spec``; a ``serial:`` spec needs ``board_name``."""
    t = parse_spec(spec)
    b = t.board if t.board is not None else board(board_name or "")
    return TargetLimits(b.ram_bytes, t.cpu or b.cpu, b.name)


def buffer_bytes(layer, cpu: str, **codegen_options) -> tuple[int, int, int]:
    """Input, output and scratch bytes the harness needs for ``layer`` built for ``cpu``
    (for a network: the largest of its registered nodes' and its own, the arena being its
    scratch)."""
    from edgeconv import codegen

    need = (0, 0, 0)
    shown = {id(x) for x in codegen.registry_layers([layer])}
    for p in codegen.plan_layers([layer], cpu=cpu, **codegen_options):  # a network: each node
        if id(p.ctx.layer) not in shown:
            continue
        layer_in = p.ctx.layer.activation_dtype
        layer_out = getattr(p.ctx.layer, "output_dtype", None) or layer_in
        this = (np.dtype(layer_in).itemsize * p.ctx.input_count,
                np.dtype(layer_out).itemsize * p.ctx.output_count, p.plan.scratch_bytes)
        need = tuple(max(a, b) for a, b in zip(need, this, strict=True))
    return need


def fitting_layers(spec: str, layers, *, board_name: str | None = None,
                   **codegen_options) -> tuple[list, list]:
    """(layers that fit ``spec`` together, layers left out), keeping the given order.

    The harness sizes its input, output and scratch buffers for the largest layer, so a
    layer is taken while the three maxima still add up to at most ``ram_bytes``.
    """
    lim = limits(spec, board_name=board_name)
    kept, skipped, peak = [], [], (0, 0, 0)
    for layer in layers:
        need = buffer_bytes(layer, lim.cpu, **codegen_options)
        grown = tuple(max(a, b) for a, b in zip(peak, need, strict=True))
        if sum(grown) <= lim.ram_bytes:
            kept.append(layer)
            peak = grown
        else:
            skipped.append(layer)
    return kept, skipped


def _layer_hash(layers, cpu: str, options: dict) -> str:
    from edgeconv import codegen

    return codegen.layer_set_hash(list(layers), cpu=cpu, **options)


def _firmware(b: Board, cpu: str, layers, options: dict) -> tuple[Path, str]:
    """(image, expected hash): prebuilt ``gen_dir`` or codegen + build (cached)."""
    gen_dir = options.pop("gen_dir", None)
    opt = build.check_opt(options.pop("opt", build.DEFAULT_OPT))
    codegen_options = {k: options.pop(k) for k in _CODEGEN_OPTIONS if k in options}
    if gen_dir is not None:
        expected = options.pop("expected_hash", None)
        if expected is None:
            raise ValueError("gen_dir needs expected_hash (the hash of the generated code)")
        return build.build_prebuilt(Path(gen_dir), b, cpu, opt=opt), expected
    layer_hash = _layer_hash(layers, cpu, codegen_options)
    return build.build_for_layers(layers, b, cpu, layer_hash=layer_hash,
                                  codegen_options=codegen_options, opt=opt), layer_hash


def _connect(spec: str, port_url: str, layers, expected_hash: str | None, options: dict,
             *, baud: int = 115200, icount: bool = False, qemu_cpu_hz: int | None = None,
             on_close=None, start=None) -> Session:
    """Opens the port, starts a paused machine (``start``), then handshakes.

    With ``on_close`` the session owns the device: closing it sends SHUTDOWN first.
    """
    client_options = {k: options.pop(k) for k in _CLIENT_OPTIONS if k in options}
    if options:
        raise ValueError(f"unknown options for {spec}: {', '.join(sorted(options))}")
    try:
        port = serial.serial_for_url(port_url, baudrate=baud, timeout=0.05)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise DeviceDisconnectedError(f"{spec}: cannot open port {port_url!r} ({exc})") \
            from None
    client = Client(port, expected_hash=expected_hash, **client_options)
    try:
        if start is not None:
            start()
        # QEMU's pty passes host -> guest bytes only about 1 s after QEMU started;
        # short attempts (the client's retries) get through as soon as it does.
        client.handshake(timeout=0.25)
        return Session(spec, client, layers, icount=icount, qemu_cpu_hz=qemu_cpu_hz,
                       on_close=on_close)
    except BaseException:
        port.close()
        raise


def _open_native(spec: str, t: TargetSpec, layers, options: dict) -> Session:
    image, expected = _firmware(t.board, "generic", layers, options)
    proc = PtyProcess([str(image)])

    def finish() -> None:
        proc.wait(2.0)  # the harness exits by itself after SHUTDOWN
        proc.stop()

    try:
        session = _connect(spec, proc.wait_pty(), layers, expected, options, on_close=finish)
    except BaseException:
        proc.stop()
        raise
    session.process = proc
    session.image = image
    return session


def _open_qemu(spec: str, t: TargetSpec, layers, options: dict) -> Session:
    cpu = t.board.check_cpu(options.pop("cpu", None) or t.cpu)
    image, expected = _firmware(t.board, cpu, layers, options)
    machine = QemuMachine(t.board, image, qemu=options.pop("qemu", "qemu-system-arm"),
                          icount=options.pop("icount", None))
    try:
        session = _connect(spec, machine.pty, layers, expected, options,
                           icount=machine.icount, qemu_cpu_hz=t.board.qemu_cpu_hz,
                           on_close=machine.stop, start=machine.start)
    except BaseException:
        machine.stop(grace=0)
        raise
    session.machine = machine
    session.image = image
    return session


def _open_serial(spec: str, t: TargetSpec, layers, options: dict) -> Session:
    layers = list(layers)
    cpu = options.pop("cpu", None)
    build.check_opt(options.pop("opt", build.DEFAULT_OPT))  # the board's firmware is built
    expected = options.pop("expected_hash", None)
    codegen_options = {k: options.pop(k) for k in _CODEGEN_OPTIONS if k in options}
    icount = bool(options.pop("icount", False))
    session = _connect(spec, t.port, layers, None, options, baud=t.baud, icount=icount)
    try:
        if expected is None:
            expected = _layer_hash(layers, cpu or session.hello.cpu, codegen_options)
        session.client.expected_hash = expected
        session.client.handshake()
    except BaseException:
        session.close()
        raise
    return session


def open(spec: str, layers, **options) -> Session:  # noqa: A001 - the documented API name
    """Opens a session running ``layers`` on ``spec`` (see the module docstring).

    ``layers`` may also be an ``edgeconv.Model`` or a :class:`edgeconv.codegen.Network`:
    the firmware then holds the network's node layers and ``net_run``; ``session.run(x)``
    runs the whole network, ``session.trace(x)`` every node on its own (option
    ``nodes=False``: the whole network only, for boards whose RAM does not hold the
    largest node's buffers besides the arena)."""
    from edgeconv.codegen import Network, registry_layers

    t = parse_spec(spec)
    nodes = options.pop("nodes", True)
    if hasattr(layers, "nodes") and hasattr(layers, "tensors"):  # an edgeconv.Model
        layers = [Network(layers, nodes=nodes)]
    elif nodes is not True:
        raise ValueError("nodes: only with a model (a Network states its own)")
    if isinstance(layers, Network):
        layers = [layers]
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
        raise ValueError(f"layers={layers!r}: must be an iterable of layers, or a model")
    layers = registry_layers(list(layers))
    if t.kind == "native":
        if options.pop("cpu", None) not in (None, "generic"):
            raise ValueError("cpu: the native target builds generic code only")
        return _open_native(spec, t, layers, options)
    if t.kind == "qemu":
        return _open_qemu(spec, t, layers, options)
    return _open_serial(spec, t, layers, options)
