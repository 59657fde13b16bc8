"""Shared fixtures for the firmware/protocol/target tests: a hand-written registry
(tests/firmware_fixture) whose layers have trivially computable outputs."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

FIXTURE_DIR = Path(__file__).parent / "firmware_fixture"
FIXTURE_HASH = "f1f2f3f4f5f6f7f8"


def fixture_layers() -> list[SimpleNamespace]:
    """Host descriptions of the fixture registry's layers (same order as in C)."""
    return [
        SimpleNamespace(name="add_one", input_shape=(1000,), output_shape=(1000,),
                        expected=lambda x: (x.astype(np.int16) + 1).astype(np.int8)),
        SimpleNamespace(name="negate16", input_shape=(600,), output_shape=(600,),
                        expected=lambda x: np.clip(-x.astype(np.int32), -32768, 32767)
                        .astype(np.int16)),
        SimpleNamespace(name="sum8", input_shape=(16,), output_shape=(1,),
                        expected=lambda x: x.astype(np.int32).sum(axis=-1, keepdims=True)),
        SimpleNamespace(name="spin", input_shape=(1,), output_shape=(1,), expected=lambda x: x),
        SimpleNamespace(name="crash", input_shape=(1,), output_shape=(1,), expected=None),
    ]


def open_fixture(spec: str = "native", **options):
    """A session on the fixture firmware (make rebuilds it when sources change)."""
    import edgeconv.targets

    options.setdefault("expected_hash", FIXTURE_HASH)
    return edgeconv.targets.open(spec, fixture_layers(), gen_dir=FIXTURE_DIR, **options)


@pytest.fixture(scope="module")
def native_session():
    """One native fixture session shared by a test module."""
    with open_fixture() as session:
        yield session


pytest_plugins = ["pytester"]

# Skip reasons that mean "a tool or package is missing" (pytest.skip messages in these
# tests, and importorskip's wording).
_MISSING_TOOL = re.compile(r"not installed|could not import", re.IGNORECASE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect parametrized golden cases that a target does not run (its RAM-fitting
    subset, see ``selected_for_target`` in test_golden.py)."""
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        selector = getattr(getattr(item, "module", None), "selected_for_target", None)
        if selector and "case" in params and "edgeconv_target" in params \
                and not selector(params["case"], params["edgeconv_target"]):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _fail_missing_tool(report: pytest.TestReport | pytest.CollectReport) -> None:
    """In CI (CI=true) a skip for a missing tool becomes a failure."""
    if os.environ.get("CI") == "true" and report.skipped and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2]
        if _MISSING_TOOL.search(reason):
            report.outcome = "failed"
            report.longrepr = f"CI=true: a required tool is missing ({reason})"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A test skipped for a missing tool (pytest.skip, skipif, importorskip in a test)."""
    outcome = yield
    _fail_missing_tool(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """A whole module skipped while importing (module-level importorskip)."""
    outcome = yield
    _fail_missing_tool(outcome.get_result())
