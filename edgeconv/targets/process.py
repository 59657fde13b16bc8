"""A child process (QEMU or the native harness) that announces its pty.

QEMU 7.2 prints ``char device redirected to /dev/pts/N (label serial0)`` on stdout, the
native harness on stderr: both streams are read, merged.
"""

from __future__ import annotations

import ctypes
import re
import signal
import subprocess
import sys
import threading
from collections import deque

_PTY_LINE = re.compile(rb"char device redirected to (\S+)")
_PR_SET_PDEATHSIG = 1
# Resolved in the parent: the forked child only makes the call (no dlopen after fork).
_prctl = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the parent dies (Linux), so nothing is left behind."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


class PtyProcess:
    """Starts ``argv``, keeps its output, and finds the pty path it announces."""

    def __init__(self, argv: list[str], *, cwd: str | None = None) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
        )
        self._output: deque[bytes] = deque(maxlen=200)
        self._pty: str | None = None
        self._pty_seen = threading.Event()
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()

    def _read_output(self) -> None:
        for line in self.proc.stdout:
            self._output.append(line)
            m = _PTY_LINE.search(line)
            if m and self._pty is None:
                self._pty = m.group(1).decode()
                self._pty_seen.set()
        self._pty_seen.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_text(self) -> str:
        """The last lines the process printed (stderr, with stdout merged in)."""
        return b"".join(self._output).decode("utf-8", "replace")

    def wait_pty(self, timeout: float = 10.0) -> str:
        """The announced pty path; RuntimeError if the process exits or stays silent."""
        self._pty_seen.wait(timeout)
        if self._pty is None:
            self.stop()
            raise RuntimeError(
                f"{self.argv[0]} announced no pty within {timeout} s "
                f"(exit code {self.proc.returncode}); output:\n{self.stderr_text()}"
            )
        return self._pty

    def wait(self, timeout: float) -> int | None:
        """Exit code, or None if still running after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 2.0) -> int:
        """Terminates (then kills) the process if it still runs; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            if self.wait(grace) is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=1.0)
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode
