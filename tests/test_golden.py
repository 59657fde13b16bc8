"""Golden suite: every op's generated C, run on the target, equals the reference model
bit for bit.

All cases (tests/golden_configs.py) go into ONE firmware build per target. On ``native``
the build carries ``-fsanitize=address,undefined -fno-sanitize-recover=all`` (passed to
the firmware Makefile as EXTRA_CFLAGS, with its own build cache since the cache key does
not cover compiler flags), so undefined behaviour or an out-of-bounds access kills the
harness and fails the test. Smaller targets run a subset that fits their RAM.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from golden_configs import GoldenCase, golden_cases, select_for

import edgeconv.targets
from edgeconv.targets import build
from edgeconv.targets.client import ClientError

SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=all"
SMALL_FLASH_BYTES = 512 << 10  # below: one firmware image holds fewer cases
SMALL_TARGET_CASES = 120
ALL_CASES = golden_cases()
_BY_NAME = {c.name: c for c in ALL_CASES}


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@functools.cache
def cases_for(spec: str) -> list[GoldenCase]:
    """Every case on native; a RAM-fitting subset elsewhere."""
    if spec == "native":
        return ALL_CASES
    limits = edgeconv.targets.limits(spec)
    board = edgeconv.targets.boards.board(limits.board)
    compact = board.flash is not None and board.flash[1] < SMALL_FLASH_BYTES
    return select_for(ALL_CASES, limits.ram_bytes, limits.cpu, SMALL_TARGET_CASES,
                      compact=compact)


@functools.cache
def _names_for(spec: str) -> frozenset[str]:
    return frozenset(c.name for c in cases_for(spec))


def selected_for_target(case: GoldenCase, spec: str) -> bool:
    """Whether ``case`` runs on ``spec``; tests/conftest.py deselects the others at
    collection, so they are neither run nor reported as skipped."""
    return case.name in _names_for(spec)


@pytest.fixture(scope="module")
def golden_session(edgeconv_target: str):
    """(session, names of the cases built into it) for one target."""
    cases = cases_for(edgeconv_target)
    layers = [c.layer for c in cases]
    strategy = {c.name: c.strategy for c in cases if c.strategy is not None}
    if edgeconv_target == "native":
        env = dict(EXTRA_CFLAGS=SANITIZE,
                   EDGECONV_CACHE_DIR=str(build.cache_root() / "sanitized"))
    else:
        env = {}
    with _environment(**env):
        session = edgeconv.targets.open(edgeconv_target, layers, strategy=strategy)
    with session:
        yield session, {c.name for c in cases}


def test_golden_inventory() -> None:
    """The suite covers >= 500 cases, every op family, both forced strategies and the
    automatic choice."""
    assert len(ALL_CASES) >= 500
    families = Counter(c.family for c in ALL_CASES)
    assert set(families) == {"conv2d", "conv2d16", "depthwise", "depthwise16", "conv1d",
                             "conv1d16", "pool", "pool16", "signal", "signal2d", "match",
                             "backward", "fc", "fc16", "add", "add16", "mul", "mul16", "mean",
                             "mean16", "softmax",
                             "softmax16", "logistic", "logistic16", "movement",
                             "requantize", "float"}
    # every whole-model op has cases (tests/golden_configs.py, _nn_cases)
    ops = {type(c.layer).__name__ for c in ALL_CASES}
    assert {"FullyConnected", "Add", "Mul", "Mean", "Softmax", "Logistic", "Pad",
            "Concatenation", "Requantize", "Quantize", "Dequantize"} <= ops
    assert Counter(c.strategy for c in ALL_CASES).keys() == {"direct", "im2col", None}
    signals = {(c.layer.fmt, c.layer.kind, c.layer.mode) for c in ALL_CASES
               if c.family == "signal"}
    assert len(signals) == 3 * 2 * 3


def test_native_build_is_sanitized(golden_session, edgeconv_target: str) -> None:
    if edgeconv_target != "native":
        pytest.skip("sanitizers apply to the native build only")
    session, _ = golden_session
    image = Path(session.process.argv[0]).read_bytes()
    assert b"__asan_init" in image and b"__ubsan_handle" in image


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_golden(golden_session, case: GoldenCase, edgeconv_target: str) -> None:
    session, built = golden_session
    assert case.name in built, f"{case.name} was collected but not built for {edgeconv_target}"
    x = case.inputs()
    want = case.layer(x)
    try:
        got = session.run(case.name, x)
    except ClientError as exc:
        process = getattr(session, "process", None)
        detail = process.stderr_text()[-3000:] if process is not None else ""
        raise AssertionError(f"{case.name}: {exc}\n{detail}") from exc
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype == np.float32:  # bit-exact: compare the bits (0.0 vs -0.0, NaN)
        got, want = got.view(np.int32), want.view(np.int32)
    diff = np.flatnonzero(got != want)
    if diff.size:
        first = np.unravel_index(diff[0], want.shape)
        worst = int(np.abs(got.astype(np.int64) - want.astype(np.int64)).max())
        pytest.fail(f"{case.name} ({case.family}, strategy {case.strategy or 'auto'}): "
                    f"{diff.size} of {want.size} elements differ, first at {first}: got "
                    f"{got[first]}, want {want[first]}; max |diff| {worst}")
