"""Boot firmware in qemu-system-arm: -S, QMP, -serial pty, semihosting exit."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import time
from pathlib import Path

from edgeconv.targets.boards import Board
from edgeconv.targets.process import PtyProcess


class Qmp:
    """Minimal QMP client over a unix socket (enough for cont/quit/system_reset)."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"QEMU's QMP socket {path} did not open") from None
                time.sleep(0.02)
        self.sock.settimeout(timeout)
        self._file = self.sock.makefile("rb")
        self._read()  # greeting
        self.command("qmp_capabilities")

    def _read(self) -> dict:
        while True:
            line = self._file.readline()
            if not line:
                raise RuntimeError("QMP connection closed by QEMU")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def command(self, name: str, **arguments) -> dict:
        """Executes one QMP command; RuntimeError on an error reply."""
        req = {"execute": name, **({"arguments": arguments} if arguments else {})}
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        reply = self._read()
        if "error" in reply:
            raise RuntimeError(f"QMP {name}: {reply['error']}")
        return reply.get("return", {})

    def close(self) -> None:
        self._file.close()
        self.sock.close()


class QemuMachine:
    """A paused QEMU with the firmware loaded; ``start()`` resumes it."""

    def __init__(self, board: Board, kernel: Path, *, qemu: str = "qemu-system-arm",
                 icount: bool | None = None, extra_args: tuple[str, ...] = ()) -> None:
        if shutil.which(qemu) is None:
            raise RuntimeError(f"{qemu} not found: install qemu-system-arm")
        self.icount = board.icount if icount is None else icount
        self._tmp = Path(tempfile.mkdtemp(prefix="edgeconv-qemu-"))
        qmp_path = self._tmp / "qmp.sock"
        argv = [qemu, "-M", board.machine, "-nodefaults", "-display", "none", "-S",
                "-qmp", f"unix:{qmp_path},server=on,wait=off", "-serial", "pty",
                "-semihosting-config", "enable=on,target=native", "-kernel", str(kernel)]
        if self.icount:
            argv += ["-icount", "shift=3"]
        argv += list(extra_args)
        self.argv = argv
        self.process = PtyProcess(argv)
        self.qmp: Qmp | None = None
        try:
            self.pty = self.process.wait_pty()
            self.qmp = Qmp(qmp_path)
        except BaseException:
            self.stop()
            raise

    def start(self) -> None:
        """Lets the guest run (call after the host opened the pty)."""
        assert self.qmp is not None
        self.qmp.command("cont")

    def reset(self) -> None:
        """A guest reset, as the reset button would do."""
        assert self.qmp is not None
        self.qmp.command("system_reset")

    def stop(self, grace: float = 3.0) -> int | None:
        """Waits up to ``grace`` s for the guest's own exit, then quits QEMU for sure."""
        code = self.process.wait(grace)
        if code is None and self.qmp is not None:
            try:
                self.qmp.command("quit")
            except (OSError, RuntimeError):
                pass
        if self.qmp is not None:
            self.qmp.close()
        code = self.process.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)
        return code
