"""A verification session: named layers run on one device through a Client."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from edgeconv.targets.client import Client, ClientError, MalformedReplyError
from edgeconv.targets.process import PtyProcess
from edgeconv.targets.protocol import CounterKind, Hello, LayerInfo, crc32
from edgeconv.targets.qemu import QemuMachine

_SIGNED = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}


ICOUNT_NS_PER_INSTRUCTION = 8  # QEMU -icount shift=3


def count_unit_for(hello: Hello, icount: bool,
                   qemu_cpu_hz: int | None = None) -> tuple[str | None, Fraction]:
    """(unit, scale): the kernel count is the firmware's raw count times ``scale``.

    Under QEMU ``-icount shift=3`` every instruction takes 8 ns of virtual time, so a
    timer of known rate counts instructions: 5 per tick at 25 MHz (MPS2 FPGAIO), 7.8125
    at 16 MHz (nRF51 TIMER0); so does SysTick on the processor clock when QEMU's clock for
    the machine is known (``qemu_cpu_hz``: 168 MHz on netduinoplus2, 1.344 ticks per
    instruction). Without ``-icount`` a QEMU timer follows the host's clock.
    """
    kind = hello.counter_kind
    if icount and hello.counter_hz and kind in (CounterKind.FPGAIO, CounterKind.TIMER):
        return "instructions", Fraction(10**9, hello.counter_hz * ICOUNT_NS_PER_INSTRUCTION)
    if icount and qemu_cpu_hz and kind == CounterKind.SYSTICK_CPU:
        return "instructions", Fraction(10**9, qemu_cpu_hz * ICOUNT_NS_PER_INSTRUCTION)
    if kind in (CounterKind.SYSTICK_CPU, CounterKind.DWT_CYCCNT):
        return "cycles", Fraction(1)
    if kind == CounterKind.NS:
        return "ns", Fraction(1)
    if kind in (CounterKind.FPGAIO, CounterKind.TIMER):
        return "ticks", Fraction(1)
    return None, Fraction(1)


class Session:
    """Runs the layers a firmware was built with; use as a context manager.

    ``run(name, x)`` returns the layer output; ``last_count`` and ``count_unit`` tell how
    long the kernel took; ``hello`` is the firmware's HELLO. ``on_close`` (given when
    the session owns the device: native process, QEMU) runs after SHUTDOWN on close;
    ``process`` / ``machine`` hold the native process or the QEMU machine, if any.
    """

    def __init__(self, spec: str, client: Client, layers: Iterable, *, icount: bool = False,
                 qemu_cpu_hz: int | None = None,
                 on_close: Callable[[], None] | None = None) -> None:
        self.spec = spec
        self.client = client
        self._layers = {}
        for index, layer in enumerate(layers):
            if layer.name in self._layers:
                raise ValueError(f"layers: duplicate name {layer.name!r}")
            self._layers[layer.name] = (index, layer)
        self._info: dict[str, LayerInfo] = {}
        self._on_close = on_close
        self.process: PtyProcess | None = None
        self.machine: QemuMachine | None = None
        self.image: Path | None = None  # the firmware image, where this session built one
        self.count_unit, self._count_scale = count_unit_for(self.hello, icount, qemu_cpu_hz)
        self.last_count: int | None = None
        self.last_fetched = True
        self.closed = False

    @property
    def hello(self) -> Hello:
        """The firmware's HELLO (board, cpu, layer-set hash, frame size...)."""
        assert self.client.hello is not None
        return self.client.hello

    def _layer_info(self, name: str, layer) -> LayerInfo:
        """The firmware's registry entry for ``name``, checked against the host's layer."""
        if name not in self._info:
            index = self._layers[name][0]
            info = self.client.info(index)
            want = (name, int(np.prod(layer.input_shape)), int(np.prod(layer.output_shape)))
            got = (info.name, info.input_count, info.output_count)
            if got != want:
                raise ClientError(f"firmware layer {index} is {got}, the host expects {want}")
            self._info[name] = info
        return self._info[name]

    @property
    def network(self):
        """The network (``edgeconv.codegen.Network``) this session runs, or None."""
        nets = [layer for _, layer in self._layers.values() if getattr(layer, "op", None)
                == "Network"]
        return nets[0] if len(nets) == 1 else None

    def trace(self, x, *, crc: bool = False) -> list:
        """Every node of the session's network run on the device on the reference model's
        inputs for ``x``: a list of :class:`edgeconv.targets.network_run.NodeResult`.
        ``crc=True`` (for a slow link): each node's output is fetched only when its CRC-32
        differs from the reference tensor's."""
        from edgeconv.targets.network_run import trace

        if self.network is None:
            raise ValueError("trace: this session runs no network (open it with a model)")
        if not isinstance(crc, bool):
            raise ValueError(f"crc={crc!r}: allowed are True, False")
        return trace(self, self.network, x, crc=crc)

    def run(self, name, x=None, *, expected=None) -> np.ndarray:
        """Output of layer ``name`` for input ``x`` (shape ``input_shape``, or batched);
        ``run(x)`` runs the session's network.  ``expected`` (one item: an array of the
        layer's output shape): the device's output CRC-32 is compared with the CRC-32 of
        ``expected`` and the output is read only when they differ; on a match ``expected``
        is returned (a copy).  ``last_fetched`` tells whether the output was read."""
        if x is None and not isinstance(name, str) and self.network is not None:
            name, x = self.network.name, name
        if self.closed:
            raise ClientError(f"session on {self.spec} is closed")
        if not isinstance(name, str) or name not in self._layers:
            raise ValueError(f"name={name!r} is not a layer of this session; "
                             f"known: {', '.join(self._layers)}")
        layer = self._layers[name][1]
        info = self._layer_info(name, layer)
        in_type = _elem_type(getattr(layer, "activation_dtype", None), info.input_elem_bytes)
        out_type = _elem_type(getattr(layer, "output_dtype", None), info.output_elem_bytes)
        x = _as_input(x, tuple(layer.input_shape), in_type)
        batch = x.reshape((-1, *layer.input_shape))
        expected_crc = None
        if expected is not None:
            expected = np.asarray(expected)
            if batch.shape[0] != 1 or x.ndim > len(layer.input_shape) or \
                    expected.shape != tuple(layer.output_shape):
                raise ValueError(f"expected: shape {expected.shape} with input shape "
                                 f"{x.shape}; allowed is one item, expected shaped "
                                 f"{tuple(layer.output_shape)}")
            expected = expected.astype(out_type)
            expected_crc = crc32(_wire_bytes(expected))
        outs, total = [], 0
        self.last_fetched = True
        for item in batch:
            result = self.client.run(info.index, _wire_bytes(item), expected_crc=expected_crc)
            if result.status != 0:
                raise ClientError(f"layer {name} returned status {result.status} on the device")
            total += result.count
            if not result.fetched:  # equal to ``expected`` by its CRC-32
                self.last_fetched = False
                outs.append(expected.copy())
                continue
            if len(result.output) != info.output_count * info.output_elem_bytes:
                raise MalformedReplyError(
                    f"OUTPUT frame: layer {name} sent {len(result.output)} bytes, its INFO "
                    f"says {info.output_count} x {info.output_elem_bytes}")
            outs.append(np.frombuffer(result.output, dtype=np.dtype(out_type).newbyteorder("<"))
                        .astype(out_type).reshape(layer.output_shape))
        self.last_count = None if self.count_unit is None else round(total * self._count_scale)
        out = np.stack(outs)
        return out if x.ndim > len(layer.input_shape) else out[0]

    def close(self) -> None:
        """Shuts the device or process down and releases the port."""
        if self.closed:
            return
        self.closed = True
        try:
            if self._on_close is not None:
                try:
                    self.client.shutdown(0)
                finally:
                    self._on_close()
        finally:
            self.client.port.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _wire_bytes(a: np.ndarray) -> bytes:
    """An array's elements as the protocol carries them: little-endian, C order."""
    return a.astype("<" + a.dtype.str[1:], copy=False).tobytes()


def _elem_type(declared, elem_bytes: int) -> type:
    """The element type on the wire: float32 where the layer declares it (QUANTIZE input,
    DEQUANTIZE output), else the signed integer of ``elem_bytes``."""
    if declared is not None and np.dtype(declared) == np.float32 and elem_bytes == 4:
        return np.float32
    return _SIGNED[elem_bytes]


def _as_input(x, shape: tuple[int, ...], dtype) -> np.ndarray:
    """``x`` as an array of ``dtype``; ValueError if its shape or values do not fit."""
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged nesting, unconvertible objects
        raise ValueError(f"x: not convertible to an array ({exc})") from None
    if (arr.shape != shape and arr.shape[1:] != shape) or arr.size == 0:
        raise ValueError(f"x.shape={arr.shape} must be {shape} or (batch, *{shape}) with "
                         "batch >= 1")
    if arr.dtype == dtype:
        return arr
    if np.dtype(dtype).kind == "f":
        raise ValueError(f"x.dtype={arr.dtype} must be float32")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"x.dtype={arr.dtype} must be an integer type ({np.dtype(dtype)})")
    info = np.iinfo(dtype)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise ValueError(f"x values {arr.min()}..{arr.max()} outside {np.dtype(dtype)} range "
                         f"{info.min}..{info.max}")
    return arr.astype(dtype)
