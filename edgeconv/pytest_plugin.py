"""pytest plugin: run a test suite against one or more edgeconv targets.

``--edgeconv-target SPEC`` (repeatable; default ``native``) chooses the targets; tests
that take the ``edgeconv_target`` fixture run once per target (the fixture value is the
spec string, parametrized at session scope so session fixtures can open one
``edgeconv.targets.open`` session per target). Tests marked ``hardware`` need a real
board and are skipped unless the run targets a ``serial:`` spec.
"""

from __future__ import annotations

import pytest

from edgeconv.targets import parse_spec

DEFAULT_TARGET = "native"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgeconv")
    group.addoption(
        "--edgeconv-target", action="append", dest="edgeconv_targets", default=None,
        metavar="SPEC",
        help="edgeconv target to run on: native, qemu:<board>[:<cpu>], serial:<port>[@baud]; "
             f"repeatable (default: {DEFAULT_TARGET})",
    )


def _targets(config: pytest.Config) -> list[str]:
    targets = config.getoption("edgeconv_targets") or [DEFAULT_TARGET]
    for spec in targets:
        try:
            parse_spec(spec)
        except ValueError as exc:
            raise pytest.UsageError(f"--edgeconv-target: {exc}") from None
    return list(dict.fromkeys(targets))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hardware: needs a real board; runs only with --edgeconv-target serial:<port>"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "edgeconv_target" in metafunc.fixturenames:
        targets = _targets(metafunc.config)
        metafunc.parametrize("edgeconv_target", targets, ids=targets, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    serial_given = any(t.startswith("serial:") for t in _targets(config))
    reason = "needs a real board: run with --edgeconv-target serial:<port>[@baud]"
    for item in items:
        if item.get_closest_marker("hardware") is None:
            continue
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("edgeconv_target") if callspec else None
        if (target is not None and not target.startswith("serial:")) or not serial_given:
            item.add_marker(pytest.mark.skip(reason=reason))
