"""The rule of tests/conftest.py: under CI=true a skip for a missing tool is a failure,
whether the test skips itself or its whole module skips while importing."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

TESTS = '''
import pytest

@pytest.mark.skipif(True, reason="gcc not installed")
def test_skipif():
    pass

def test_skip():
    pytest.skip("clang not installed")

def test_importorskip():
    pytest.importorskip("edgeconv_no_such_module")

def test_other_reason():
    pytest.skip("needs a real board")
'''
MODULE_SKIP = '''
import pytest

pytest.importorskip("edgeconv_no_such_module")

def test_never_runs():
    pass
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text())
    return pytester


@pytest.mark.parametrize("ci", [True, False])
def test_missing_tool_in_a_test(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                ci: bool) -> None:
    monkeypatch.setenv("CI", "true" if ci else "false")
    suite.makepyfile(test_tools=TESTS)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    if ci:  # the skipif fails in setup (an error), the other two in the call
        result.assert_outcomes(failed=2, errors=1, skipped=1)
        result.stdout.fnmatch_lines(["*CI=true: a required tool is missing*"])
    else:
        result.assert_outcomes(skipped=4)


@pytest.mark.parametrize("ci", [True, False])
def test_missing_tool_for_a_module(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                   ci: bool) -> None:
    monkeypatch.setenv("CI", "true" if ci else "false")
    suite.makepyfile(test_module=MODULE_SKIP)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    if ci:
        result.assert_outcomes(errors=1)
        assert result.ret != 0
        result.stdout.fnmatch_lines(["*CI=true: a required tool is missing*edgeconv_no_such*"])
    else:
        result.assert_outcomes(skipped=1)
        assert result.ret == 5  # no test ran
