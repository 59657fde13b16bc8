"""The pytest plugin: --edgeconv-target parametrization and the hardware marker."""

from __future__ import annotations

TEST_FILE = """
import pytest

def test_spec(edgeconv_target):
    assert isinstance(edgeconv_target, str)

@pytest.mark.hardware
def test_board(edgeconv_target):
    assert edgeconv_target.startswith("serial:")

@pytest.mark.hardware
def test_board_without_target():
    pass
"""


def test_default_target_is_native(pytester):
    pytester.makepyfile(TEST_FILE)
    result = pytester.runpytest("-v", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*test_spec[[]native[]] PASSED*",
                                 "*needs a real board: run with --edgeconv-target serial:*"])


def test_targets_parametrize_and_serial_enables_hardware(pytester):
    pytester.makepyfile(TEST_FILE)
    result = pytester.runpytest("-v", "--edgeconv-target", "qemu:microbit",
                                "--edgeconv-target", "serial:/dev/ttyACM0@115200")
    result.assert_outcomes(passed=4, skipped=1)
    result.stdout.fnmatch_lines(["*test_spec[[]qemu:microbit[]] PASSED*",
                                 "*test_board[[]qemu:microbit[]] SKIPPED*",
                                 "*test_board[[]serial:/dev/ttyACM0@115200[]] PASSED*",
                                 "*test_board_without_target PASSED*"])


def test_bad_target_is_a_usage_error(pytester):
    pytester.makepyfile(TEST_FILE)
    result = pytester.runpytest("--edgeconv-target", "qemu:pdp11")
    assert result.ret == 4  # pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edgeconv-target: board='pdp11' unknown*"])
