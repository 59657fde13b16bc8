"""Progress bars (issue 14, Deliver 3): drawn on stderr when it is a terminal (or when
EDGECONV_PROGRESS=1 forces them), never under --json nor when stderr is a pipe."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from edgeconv import progress

VERIFY = ["verify", "--layers", "seed", "--target", "native"]
BAR_TEXT = "native: verifying"  # the bar's description over the layers


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != progress.ENV}
    return {**env, **extra}


def _on_a_terminal(*argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, what reached the terminal on stderr) of ``edgeconv argv``."""
    master, slave = pty.openpty()
    # A terminal 24 rows by 100 columns (a fresh pty says 0 x 0, and a bar fits in none).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "edgeconv.cli", *argv], env=_env(),
                            stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read()
    proc.wait(timeout=120)
    os.close(master)
    return proc.returncode, out, seen.decode(errors="replace")


def _piped(*argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeconv.cli", *argv], env=_env(**env),
                          capture_output=True, text=True, timeout=120)


def test_bars_on_a_terminal_and_none_under_json(tmp_path):
    code, out, err = _on_a_terminal(*VERIFY)
    assert code == 0, err
    assert BAR_TEXT in err and "/4 [" in err, err  # e.g. "native: verifying: 0%| | 0/4 [..."
    assert "4/4 layers bit-exact" in out and BAR_TEXT not in out
    code, out, err = _on_a_terminal(*VERIFY, "--json", str(tmp_path / "v.json"))
    assert code == 0 and BAR_TEXT not in err and "%|" not in err, err


def test_bars_forced_by_the_environment_and_none_when_piped():
    forced = _piped(*VERIFY, **{progress.ENV: "1"})
    assert forced.returncode == 0 and BAR_TEXT in forced.stderr, forced.stderr
    piped = _piped(*VERIFY)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
    assert "4/4 layers bit-exact" in piped.stdout


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty, env, quiet, shown", [
    (True, None, False, True), (False, None, False, False), (False, "1", False, True),
    (True, "0", False, False), (True, None, True, False), (True, "1", True, False),
])
def test_when_bars_are_drawn(monkeypatch, tty, env, quiet, shown):
    stream = _Stream(tty)
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.delenv(progress.ENV, raising=False)
    if env is not None:
        monkeypatch.setenv(progress.ENV, env)
    with progress.quiet(quiet):
        assert progress.enabled() is shown
        assert list(progress.bar(range(3), desc="counting")) == [0, 1, 2]
        with progress.working("one long step"):
            pass
    assert progress.enabled() is (env == "1" or (env is None and tty))  # state restored
    assert ("counting" in stream.getvalue()) is shown
    assert ("one long step" in stream.getvalue()) is shown
