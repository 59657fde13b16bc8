"""Firmware build cache: a failed build leaves nothing behind (issue 11, item 7), and cache
and generated-code paths with spaces and non-ASCII characters work (item 4)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import FIXTURE_DIR, FIXTURE_HASH, fixture_layers

import edgeconv.targets as targets
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


ODD = "a b/\u00fc"  # a space and a non-ASCII letter


def test_native_firmware_builds_and_runs_from_a_cache_path_with_a_space(tmp_path, monkeypatch):
    cache = tmp_path / ODD
    monkeypatch.setenv("EDGECONV_CACHE_DIR", str(cache))
    layer = benchmark_layers()["L7"]
    x = np.arange(75, dtype=np.int8).reshape(layer.input_shape)
    with targets.open("native", [layer]) as session:
        assert str(cache) in session.process.argv[0]
        np.testing.assert_array_equal(session.run("L7", x), layer(x))
    assert [p.name for p in (cache / "firmware").iterdir()][0].startswith("native-generic-")


@pytest.mark.parametrize("spec", ["native", "qemu:mps2-an386"])
def test_gen_dir_and_cache_with_a_space_and_non_ascii(tmp_path, monkeypatch, spec):
    monkeypatch.setenv("EDGECONV_CACHE_DIR", str(tmp_path / "cache" / ODD))
    gen = tmp_path / "gen" / ODD
    shutil.copytree(FIXTURE_DIR, gen, ignore=shutil.ignore_patterns("build"))
    layer = fixture_layers()[0]  # add_one
    x = (np.arange(1000) % 256 - 128).astype(np.int8)
    with targets.open(spec, fixture_layers(), gen_dir=gen, expected_hash=FIXTURE_HASH) as session:
        np.testing.assert_array_equal(session.run(layer.name, x), layer.expected(x))
    assert not (gen / "build").exists()  # objects went to the cache


def test_firmware_sources_under_a_path_with_a_space(tmp_path, monkeypatch):
    """An installed package can live under such a path too (the firmware folder)."""
    from edgeconv import resources

    firmware = tmp_path / "site packages" / ODD / "firmware"
    shutil.copytree(resources.firmware_dir(), firmware)
    monkeypatch.setattr(resources, "firmware_dir", lambda: firmware)
    monkeypatch.setenv("EDGECONV_CACHE_DIR", str(tmp_path / "cache"))  # a fresh build
    layer = fixture_layers()[2]  # sum8
    x = np.arange(16, dtype=np.int8)
    with targets.open("native", fixture_layers(), gen_dir=FIXTURE_DIR,
                      expected_hash=FIXTURE_HASH) as session:
        np.testing.assert_array_equal(session.run(layer.name, x), layer.expected(x))
