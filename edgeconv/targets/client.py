"""Request/reply client for the edgeconv firmware protocol over any pyserial port.

Every request gets exactly one reply carrying its sequence number. Requests are
idempotent, so the client resends on a timeout, on a reply that fails its CRC or on the
device's "bad frame" notice; stale or duplicated replies are recognised by their
sequence number and dropped. A BOOT message after the handshake means the device
restarted: :meth:`Client.run` and :meth:`Client.info` then repeat the handshake and the
whole request sequence.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import serial

try:
    import termios

    _PORT_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError,
                                                     termios.error)
except ImportError:  # not POSIX
    _PORT_ERRORS = (serial.SerialException, OSError)

from edgeconv.targets import protocol as p
from edgeconv.targets.protocol import ErrorCode, Frame, Hello, LayerInfo, Msg

T = TypeVar("T")


def _name(msg_type: int) -> str:
    return Msg(msg_type).name if msg_type in Msg._value2member_map_ else f"0x{msg_type:02x}"


class ClientError(RuntimeError):
    """The device could not be driven to a correct answer."""


class DeviceTimeoutError(ClientError):
    """No valid reply within the timeout, after all retries."""


class DeviceResetError(ClientError):
    """The device announced a (re)boot in the middle of a conversation."""

    def __init__(self, hello: Hello) -> None:
        super().__init__(f"device reset: unexpected BOOT from {hello.board} mid-run")
        self.hello = hello


class DeviceFaultError(ClientError):
    """The device reported a HardFault."""

    def __init__(self, registers: dict[str, int]) -> None:
        regs = ", ".join(f"{k}=0x{v:08x}" for k, v in registers.items())
        super().__init__(f"device HardFault: {regs}")
        self.registers = registers


class DeviceError(ClientError):
    """The device answered a request with ERROR."""

    def __init__(self, code: int, detail: str) -> None:
        name = ErrorCode(code).name if code in ErrorCode._value2member_map_ else str(code)
        super().__init__(f"device error {name}: {detail}")
        self.code = code
        self.detail = detail


class BufferOverrunError(DeviceError):
    """The kernel wrote outside the bytes its layer states (a GUARD error to RUN).

    ``buffer`` is ``'input'``, ``'output'`` or ``'scratch'``; ``offset`` the first changed
    guard byte counted from the start of the layer's data (``>= size``: after it, ``< 0``:
    before it), None when the kernel changed its own input; ``size`` the layer's byte
    count of that buffer (None likewise). Not resent: the same kernel overruns again.
    """

    _DETAIL = re.compile(r"(input|output|scratch) overrun at byte (-?\d+) of (\d+)")

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code, detail)
        match = self._DETAIL.fullmatch(detail)
        if match is not None:
            self.buffer = match[1]
            self.offset: int | None = int(match[2])
            self.size: int | None = int(match[3])
        else:  # "input changed by the kernel"
            self.buffer = detail.split(" ", 1)[0] if detail else "unknown"
            self.offset = self.size = None


def _device_error(code: int, detail: str) -> DeviceError:
    """The exception for an ERROR reply: BufferOverrunError for GUARD, else DeviceError."""
    return (BufferOverrunError if code == ErrorCode.GUARD else DeviceError)(code, detail)


class DeviceDisconnectedError(ClientError):
    """The port went away (the device or emulator exited, the cable was pulled)."""


class MalformedReplyError(ClientError):
    """A frame with a valid CRC whose body does not fit its message type (a firmware
    defect or a protocol mismatch, not link damage: it is not resent)."""


def _parsed(frame: Frame, parse: Callable[..., T], *args) -> T:
    """``parse(frame.body, *args)``; a malformed body raises MalformedReplyError."""
    try:
        return parse(frame.body, *args)
    except p.FrameError as exc:
        raise MalformedReplyError(f"{_name(frame.type)} frame (seq {frame.seq}): {exc}") \
            from None


class StaleFirmwareError(ClientError):
    """The firmware was built for another layer set than the host expects."""


@dataclass(frozen=True)
class RunResult:
    """Output bytes of one kernel run, its status and raw counter value; ``crc`` is the
    CRC-32 the device sent for its whole output, ``fetched`` False when the output was not
    read because that CRC equals the one the caller expected (``output`` is then empty)."""

    output: bytes
    status: int
    count: int
    crc: int = 0
    fetched: bool = True


@dataclass
class ClientStats:
    """What went wrong on the link and was recovered."""

    resends: int = 0
    bad_frames: int = 0
    stale_replies: int = 0
    resets: int = 0


class Client:
    """Talks to one device through ``port`` (a ``serial.Serial``-like object).

    ``expected_hash``: the layer-set hash the firmware must report; ``timeout``: seconds
    to wait for a reply before resending; ``run_timeout``: seconds to wait for OUTPUT once
    the device said RUN_STARTED (kernels can be slow under emulation); ``retries``:
    resends per request; ``reset_retries``: how many device resets one :meth:`run`
    survives.
    """

    def __init__(self, port, *, expected_hash: str | None = None, timeout: float = 2.0,
                 run_timeout: float = 120.0, retries: int = 8, reset_retries: int = 2) -> None:
        for name, value in (("timeout", timeout), ("run_timeout", run_timeout)):
            if not value > 0:
                raise ValueError(f"{name}={value!r} must be > 0 seconds")
        if retries < 0 or reset_retries < 0:
            raise ValueError(f"retries={retries}, reset_retries={reset_retries} must be >= 0")
        self.port = port
        self.expected_hash = expected_hash
        self.timeout = timeout
        self.run_timeout = run_timeout
        self.retries = retries
        self.reset_retries = reset_retries
        self.stats = ClientStats()
        self.hello: Hello | None = None
        self._splitter = p.FrameSplitter()
        self._pending: list[bytes] = []
        self._seq = 0
        self._chunk = 0
        self._last_rx = time.monotonic()

    # -- link layer -------------------------------------------------------------------
    def _next_frame(self, deadline: float) -> Frame | None:
        """The next valid frame, or None at the deadline or when damage was seen.

        Damage (counted in ``stats.bad_frames``): a frame failing COBS/CRC, or a partial
        frame that stayed without its delimiter for ``timeout`` seconds.
        """
        bad = self.stats.bad_frames
        while True:
            while self._pending:
                try:
                    return p.decode_frame(self._pending.pop(0))
                except p.FrameError:
                    self.stats.bad_frames += 1
            now = time.monotonic()
            if now >= deadline or self.stats.bad_frames != bad:
                return None
            try:
                self.port.timeout = min(deadline - now, 0.05)
                data = self.port.read(max(1, self.port.in_waiting))
            except _PORT_ERRORS as exc:
                raise DeviceDisconnectedError(f"port {self.port.name}: {exc}") from None
            if data:
                self._last_rx = time.monotonic()
                self._pending += self._splitter.feed(data)
            elif self._splitter.partial and time.monotonic() - self._last_rx > self.timeout:
                self._splitter.clear()
                self.stats.bad_frames += 1

    def _send(self, msg_type: int, seq: int, body: bytes) -> None:
        # The leading delimiter ends any garbage the device may hold in its frame buffer.
        try:
            self.port.write(b"\x00" + p.encode_frame(msg_type, seq, body))
            self.port.flush()
        except _PORT_ERRORS as exc:
            raise DeviceDisconnectedError(f"port {self.port.name}: {exc}") from None

    def _answer_fault(self) -> None:
        """Any byte tells a faulted device that its report arrived (it then stops)."""
        try:
            self.port.write(b"\x00")
        except _PORT_ERRORS:
            pass  # it has stopped already

    def request(self, msg_type: int, body: bytes = b"", *, timeout: float | None = None,
                during_handshake: bool = False) -> Frame:
        """Sends one request and returns its reply (ERROR replies raise DeviceError).

        Resends after ``timeout`` without a reply, or at once when damage is seen. A
        RUN_STARTED reply extends the wait for OUTPUT to ``run_timeout``.
        """
        self._seq = (self._seq + 1) % 0xFFFF
        seq = self._seq
        wait = self.timeout if timeout is None else timeout
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.resends += 1
            self._send(msg_type, seq, body)
            deadline = time.monotonic() + wait
            while (reply := self._await_reply(seq, deadline, during_handshake)) is not None:
                if reply.type == Msg.RUN_STARTED:
                    deadline = time.monotonic() + self.run_timeout
                    continue
                if reply.type == Msg.ERROR:
                    raise _device_error(*_parsed(reply, p.parse_error))
                if reply.type != (msg_type | 0x80):
                    raise MalformedReplyError(
                        f"{_name(reply.type)} frame (type 0x{reply.type:02x}) in reply to "
                        f"request {_name(msg_type)}")
                return reply
        raise DeviceTimeoutError(
            f"no valid reply to {_name(msg_type)} after {self.retries + 1} attempts of {wait} s "
            f"({self.stats.bad_frames} bad frames seen): is the device running this firmware?"
        )

    def _await_reply(self, seq: int, deadline: float, during_handshake: bool) -> Frame | None:
        """A frame with ``seq``; None to make the caller resend (timeout, damage, a NAK)."""
        while (frame := self._next_frame(deadline)) is not None:
            if frame.seq == seq:
                return frame
            if frame.type == Msg.BOOT:
                if not during_handshake:
                    self.stats.resets += 1
                    raise DeviceResetError(_parsed(frame, Hello.parse))
            elif frame.type == Msg.FAULT:
                self._answer_fault()
                raise DeviceFaultError(_parsed(frame, p.parse_fault))
            elif frame.type == Msg.ERROR and frame.seq == p.SEQ_UNSOLICITED:
                self.stats.bad_frames += 1  # the device received a damaged request
                return None
            else:
                self.stats.stale_replies += 1
        return None

    # -- messages ---------------------------------------------------------------------
    def handshake(self, timeout: float = 0.5) -> Hello:
        """HELLO exchange; checks the layer-set hash against ``expected_hash``."""
        hello = _parsed(self.request(Msg.HELLO, timeout=timeout, during_handshake=True),
                        Hello.parse)
        if self.expected_hash is not None and hello.layer_hash != self.expected_hash:
            raise StaleFirmwareError(
                f"firmware on {hello.board} reports layer-set hash {hello.layer_hash}, the host "
                f"expects {self.expected_hash}: the firmware is stale, rebuild and reflash it "
                f"for these layers"
            )
        self.hello = hello
        # Largest data chunk in WRITE/DATA: header and a 4-byte offset take the rest.
        self._chunk = hello.max_payload - p.HEADER.size - p.OFFSET.size
        return hello

    def _surviving_resets(self, action: Callable[[], T]) -> T:
        """``action()``, repeated after the handshake when the device restarts during it.

        A restart shows as a BOOT frame, or as an INPUT_CRC error to RUN (the device
        holds another input than the one written: it restarted and its BOOT frame was
        lost). Every request is idempotent, so repeating the whole action is safe; at
        most ``reset_retries`` restarts are survived, then DeviceResetError is raised.
        """
        for attempt in range(self.reset_retries + 1):
            try:
                return action()
            except (DeviceResetError, DeviceError) as exc:
                lost_input = isinstance(exc, DeviceError) and exc.code == ErrorCode.INPUT_CRC
                if attempt == self.reset_retries or not (
                        lost_input or isinstance(exc, DeviceResetError)):
                    raise
                self.handshake(timeout=self.timeout)
        raise AssertionError("unreachable")

    def info(self, index: int) -> LayerInfo:
        """The registry entry at ``index`` (survives device restarts like :meth:`run`)."""
        return self._surviving_resets(lambda: _parsed(
            self.request(Msg.INFO, p.OFFSET.pack(index)), LayerInfo.parse))

    def run(self, index: int, data: bytes, *, expected_crc: int | None = None) -> RunResult:
        """Runs layer ``index`` on ``data``; repeats the handshake and the whole run after
        a device restart (see :meth:`_surviving_resets`).  With ``expected_crc`` (the
        CRC-32 of the output the caller expects) the output is read only when the
        device's CRC differs (or the run failed): on a slow link a match costs the
        OUTPUT frame alone, not the READs of the rest."""
        return self._surviving_resets(lambda: self._run_once(index, data, expected_crc))

    def _run_once(self, index: int, data: bytes,
                  expected_crc: int | None = None) -> RunResult:
        if self.hello is None:
            raise ClientError("handshake() first")
        for offset in range(0, len(data), self._chunk):
            piece = data[offset : offset + self._chunk]
            ack = _parsed(self.request(Msg.WRITE, p.OFFSET.pack(offset) + piece), p.parse_ack)
            if ack != (offset, len(piece)):
                raise MalformedReplyError(f"WRITE_ACK frame: acknowledges {ack} for offset "
                                          f"{offset} length {len(piece)}")
        reply = self.request(Msg.RUN, p.RUN_BODY.pack(index, len(data), p.crc32(data)))
        status, count, out_bytes, out_crc, chunk = _parsed(reply, p.parse_output)
        if status == 0 and expected_crc is not None and out_crc == expected_crc:
            return RunResult(b"", status, count, out_crc, fetched=False)
        out = bytearray(chunk)
        while len(out) < out_bytes:
            length = min(self._chunk, out_bytes - len(out))
            out += _parsed(self.request(Msg.READ, p.READ_BODY.pack(len(out), length)),
                           p.parse_data, len(out), length)
        if p.crc32(bytes(out)) != out_crc:
            raise ClientError("output CRC mismatch after reassembly: output discarded")
        return RunResult(bytes(out), status, count, out_crc)

    def shutdown(self, code: int = 0) -> bool:
        """Asks the firmware to exit (QEMU ends with ``code``); True if it acknowledged.

        Sent once: the firmware may exit before its acknowledgement leaves the UART.
        """
        if not 0 <= code <= 255:
            raise ValueError(f"code={code} out of range 0..255")
        self._seq = (self._seq + 1) % 0xFFFF
        try:
            self._send(Msg.SHUTDOWN, self._seq, bytes([code]))
            reply = self._await_reply(self._seq, time.monotonic() + self.timeout, True)
        except ClientError:
            return False
        return reply is not None and reply.type == Msg.SHUTDOWN_ACK
