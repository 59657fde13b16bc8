"""Progress on stderr for the runs that take more than a couple of seconds: firmware
builds, benchmark sweeps, runs on a board or under QEMU, layer-by-layer verification.

Bars are drawn with ``tqdm`` on stderr, and only where a person watches: when stderr is a
terminal. ``EDGECONV_PROGRESS=1`` forces them on (``0`` off) whatever stderr is; the
command line turns them off under ``--json`` (:func:`quiet`), so the output a CI tool
reads holds nothing else.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, TypeVar

from tqdm import tqdm

ENV = "EDGECONV_PROGRESS"
REFRESH_S = 0.5  # how often a single long step redraws its elapsed time

T = TypeVar("T")
_quiet = False


@contextmanager
def quiet(on: bool = True) -> Iterator[None]:
    """No bars inside the block when ``on`` (a command run with ``--json``); the previous
    state comes back after it."""
    global _quiet
    before, _quiet = _quiet, _quiet or bool(on)
    try:
        yield
    finally:
        _quiet = before


def enabled() -> bool:
    """Whether bars are drawn: not quiet, and ``EDGECONV_PROGRESS=1`` or, unset, stderr is a
    terminal."""
    if _quiet:
        return False
    forced = os.environ.get(ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def bar(items: Iterable[T], *, desc: str, total: int | None = None,
        unit: str = "step") -> Iterator[T]:
    """``items`` with a bar counting them (``desc`` names the run; the bar is gone once
    the run ends, so tables printed after it stay clean)."""
    return iter(tqdm(items, desc=desc, total=total, unit=unit, leave=False,
                     file=sys.stderr, disable=not enabled(), dynamic_ncols=True))


def write(line: str, *, file: IO[str] | None = None) -> None:
    """Prints ``line`` to ``file`` (stdout by default) without tearing a bar being drawn."""
    out = sys.stdout if file is None else file
    if enabled():
        tqdm.write(line, file=out)
    else:
        print(line, file=out)


@contextmanager
def working(desc: str) -> Iterator[None]:
    """One long step with no count to show (a firmware build, a QEMU run): ``desc`` and
    the elapsed time, redrawn every ``REFRESH_S`` s until the step ends."""
    if not enabled():
        yield
        return
    shown = tqdm(total=None, desc=desc, bar_format="{desc}: {elapsed}", leave=False,
                 file=sys.stderr, dynamic_ncols=True)
    done = threading.Event()

    def tick() -> None:
        while not done.wait(REFRESH_S):
            shown.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        shown.close()
