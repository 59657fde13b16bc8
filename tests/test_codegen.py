"""Code generator: API, strategy choice, names, header contents, hash (no compiler; the
numbers are checked by tests/test_golden.py, the warnings by test_codegen_warnings.py)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgeconv import codegen
from edgeconv.codegen import kernels
from edgeconv.codegen.names import c_comment, c_int
from edgeconv.codegen.plan import Kernel
from edgeconv.layers import AvgPool2D, Conv2D, DepthwiseConv2D, MaxPool2D
from edgeconv.resources import templates_dir
from edgeconv.signal import SignalFilter


def conv(name: str = "conv", *, out: int = 4, cin: int = 2, k: int = 3, groups: int = 1,
         shape: tuple[int, int] = (5, 5), dtype: type = np.int8, **kwargs) -> Conv2D:
    rng = np.random.default_rng(0)
    weights = rng.integers(-128, 128, size=(out, k, k, cin // groups)).astype(np.int8)
    return Conv2D(weights=weights, output_multiplier=np.full(out, 1 << 30, np.int32),
                  output_shift=np.full(out, -8, np.int32), groups=groups, name=name,
                  input_shape=(*shape, cin), activation_dtype=dtype, **kwargs)


def depthwise(name: str = "dw") -> DepthwiseConv2D:
    return DepthwiseConv2D(weights=np.ones((1, 3, 3, 6), np.int8), depth_multiplier=2,
                           output_multiplier=np.full(6, 1 << 30, np.int32),
                           output_shift=np.full(6, -4, np.int32), padding="same",
                           activation_dtype=np.int16, name=name, input_shape=(4, 4, 3))


def signal(name: str = "sig") -> SignalFilter:
    return SignalFilter(np.array([1, -2, 3], np.int32), fmt="q31", kind="correlate",
                        input_length=10, name=name)


def pool(name: str = "pool") -> MaxPool2D:
    return MaxPool2D(pool_size=2, name=name, input_shape=(4, 6, 3))


def read(path: Path) -> str:
    return path.read_text()


# --------------------------------------------------------------------------- generate

def test_generate_files_info_and_header(tmp_path: Path) -> None:
    layers = [conv(), depthwise(), pool(), signal()]
    gen = codegen.generate(layers, tmp_path, prefix="net", registry=True)
    assert gen.header == tmp_path / "net.h" and gen.source == tmp_path / "net.c"
    assert gen.sources == (tmp_path / "net.c", tmp_path / "edgeconv_registry.c")
    assert re.fullmatch(r"[0-9a-f]{16}", gen.hash)
    info = {i.name: i for i in gen.layers}
    assert [i.name for i in gen.layers] == ["conv", "dw", "pool", "sig"]
    assert (info["conv"].input_count, info["conv"].output_count) == (50, 36)  # 3x3x4 out
    assert (info["dw"].input_dtype, info["dw"].output_count) == ("int16", 96)
    assert (info["pool"].output_shape, info["pool"].strategy) == ((2, 3, 3), "direct")
    assert (info["sig"].input_dtype, info["sig"].output_count) == ("int32", 19)  # 2*10-1
    header = read(gen.header)
    for i in gen.layers:
        n = i.name.upper()
        assert f"#define {n}_INPUT_COUNT {i.input_count}u" in header
        assert f"#define {n}_OUTPUT_COUNT {i.output_count}u" in header
        assert f"#define {n}_SCRATCH_BYTES {i.scratch_bytes}u" in header
        assert f'#define {n}_STRATEGY "{i.strategy}"' in header
    assert "int conv(const int8_t *input, int8_t *output, void *scratch);" in header
    assert "int sig(const int32_t *input, int32_t *output, void *scratch);" in header
    assert "output_multiplier [1073741824, 1073741824" in header  # quantization comment
    config = read(gen.registry_config)
    assert f"#define EDGECONV_MAX_INPUT_BYTES {max(50, 48 * 2, 72, 40)}u" in config
    assert f"#define EDGECONV_MAX_OUTPUT_BYTES {max(36, 96 * 2, 18, 19 * 4)}u" in config
    assert f"#define EDGECONV_MAX_SCRATCH_BYTES {info['conv'].scratch_bytes}u" in config
    registry = read(gen.registry_source)
    assert f'edgeconv_registry_hash[] = "{gen.hash}";' in registry
    assert '{"dw", edgeconv_thunk_dw, 48u, 96u, 2u, 2u, 0u},' in registry


def test_generated_c_uses_only_allowed_headers_and_no_float_or_heap(tmp_path: Path) -> None:
    layers = [conv(), conv("c16", dtype=np.int16, padding="same"), depthwise(), pool(),
              AvgPool2D(pool_size=3, padding="same", name="avg", input_shape=(3, 3, 1)),
              signal(), SignalFilter(np.array([3], np.int8), fmt="q7", accumulator=100,
                                     input_length=4, name="wide")]
    gen = codegen.generate(layers, tmp_path, registry=True)
    for path in (gen.header, *gen.sources, gen.registry_config):
        text = read(path)
        code = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        includes = set(re.findall(r"#include\s+(\S+)", code))
        assert includes <= {"<stdint.h>", "<stddef.h>", "<string.h>",
                            '"edgeconv_net.h"', '"edgeconv_registry.h"'}
        for token in ("float", "double", "malloc", "calloc", "alloca", "free", "__int128"):
            assert not re.search(rf"\b{token}\b", code), (path.name, token)
    source = read(gen.source)
    arrays = re.findall(r"^(.*)\b\w+_(?:weights|bias|mult|shift|kernel)\[\d+\] =", source,
                        re.M)
    assert len(arrays) == 3 * 3 + 2 and all(a.startswith("static const int") for a in arrays)
    assert "typedef char edgeconv_check_asr32[" in source


def test_only_used_helpers_are_emitted(tmp_path: Path) -> None:
    source = read(codegen.generate([pool()], tmp_path).source)
    assert "edgeconv_clamp(" in source
    assert "edgeconv_mbqm" not in source and "edgeconv_acc128" not in source


def test_helper_dependencies_match_the_template() -> None:
    """HELPER_DEPS lists exactly the helpers each helper in _helpers.c.j2 calls."""
    text = (templates_dir() / "_helpers.c.j2").read_text()
    blocks = re.findall(r"\{% if '(\w+)' in helpers %\}(.*?)\{% endif %\}", text, re.S)
    assert {name for name, _ in blocks} == set(codegen.HELPER_DEPS)
    for name, body in blocks:
        called = set(re.findall(r"\b(edgeconv_\w+)\(", body)) - {name}
        assert called == set(codegen.HELPER_DEPS[name]), name


# --------------------------------------------------------------------------- strategies

def test_default_rule_and_scratch(tmp_path: Path) -> None:
    # One im2col column: 3*3 taps * 2 channels * 2 bytes = 36; 9 output pixels, so the
    # default budget holds the maximum of 4 columns.
    layers = [conv(), conv("one_out", out=1), depthwise(), conv("grp", out=2, groups=2)]
    info = {i.name: i for i in codegen.generate(layers, tmp_path).layers}
    assert (info["conv"].strategy, info["conv"].scratch_bytes) == ("im2col", 4 * 36)
    assert (info["one_out"].strategy, info["one_out"].scratch_bytes) == ("direct", 0)
    assert info["dw"].strategy == "direct"
    assert info["grp"].strategy == "direct"  # one output channel per group
    small = {i.name: i for i in codegen.generate(layers, tmp_path, scratch_budget=80).layers}
    assert (small["conv"].strategy, small["conv"].scratch_bytes) == ("im2col", 2 * 36)
    none = codegen.generate(layers, tmp_path, scratch_budget=35).layers[0]
    assert (none.strategy, none.scratch_bytes) == ("direct", 0)


def test_forced_strategies(tmp_path: Path) -> None:
    layers = [conv(), depthwise(), pool()]
    forced = codegen.generate(layers, tmp_path, strategy="im2col", scratch_budget=0).layers
    # Forced im2col ignores the budget (one column); depthwise column = 3*3*3 ch * 2 bytes.
    assert [(i.strategy, i.scratch_bytes) for i in forced] == [
        ("im2col", 36), ("im2col", 54), ("direct", 0)]
    direct = codegen.generate(layers, tmp_path, strategy="direct").layers
    assert {i.strategy for i in direct} == {"direct"}
    mixed = codegen.generate(layers, tmp_path, strategy={"conv": "direct", "dw": "im2col"})
    assert [i.strategy for i in mixed.layers] == ["direct", "im2col", "direct"]
    header = read(mixed.header)
    assert '#define CONV_STRATEGY "direct"' in header and "#define DW_SCRATCH_BYTES 216u" in header


@pytest.mark.parametrize("strategy, message", [
    ("fast", "strategy='fast'"), ({"nope": "direct"}, "'nope' is not among"),
    ({"pool": "im2col"}, "strategy['pool']='im2col'"), (3, "strategy=3")])
def test_bad_strategy(tmp_path: Path, strategy: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        codegen.generate([conv(), pool()], tmp_path, strategy=strategy)


def test_fastpaths_asked_first_unless_forced(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def select(ctx):
        calls.append((ctx.name, ctx.input_shape, ctx.cpu))
        custom = Kernel("custom_fast", "kernels/generic/conv_direct.c.j2", ())
        return custom.plan(12) if ctx.name == "conv" else None

    monkeypatch.setattr(kernels, "select_fast", select)
    gen = codegen.generate([conv(), pool()], tmp_path, cpu="cortex-m4")
    assert calls == [("conv", (5, 5, 2), "cortex-m4"), ("pool", (4, 6, 3), "cortex-m4")]
    assert (gen.layers[0].strategy, gen.layers[0].scratch_bytes) == ("custom_fast", 12)
    assert '#define CONV_STRATEGY "custom_fast"' in read(gen.header)
    calls.clear()
    codegen.generate([conv(), pool()], tmp_path, strategy="direct")
    assert calls == []


# -------------------------------------------------------------------------- validation

@pytest.mark.parametrize("name", [
    None, "", "1conv", "a-b", "a b", "x*/", "int", "while", "_Bool", "_Static_assert",
    "__x", "_Xy", "a" * 32, "edgeconv_x", "EdgeConv", "main", "memcpy", "strlen",
    "size_t", "my_t", "INT8_MAX", "UINT32_C", "NULL", "conv\u00e9", "_x"])
def test_bad_layer_names(tmp_path: Path, name: object) -> None:
    layer = pool()
    layer.name = name
    with pytest.raises(ValueError, match="layer name"):
        codegen.generate([layer], tmp_path)


@pytest.mark.parametrize("name", ["a" * 31, "conv1", "x__y", "Stride"])
def test_good_layer_names(tmp_path: Path, name: str) -> None:
    assert codegen.generate([pool(name)], tmp_path).layers[0].name == name


@pytest.mark.parametrize("names", [("a", "a"), ("a", "A"), ("conv", "conv_weights"),
                                   ("conv", "CONV_INPUT_COUNT"), ("x", "x_bias")])
def test_colliding_names(tmp_path: Path, names: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="collides"):
        codegen.generate([pool(names[0]), pool(names[1])], tmp_path)


@pytest.mark.parametrize("prefix", ["edgeconv_registry", "1net", "net-1", "int", "__net",
                                    "n" * 32])
def test_bad_prefix(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        codegen.generate([pool()], tmp_path, prefix=prefix)


@pytest.mark.parametrize("kwargs, message", [
    ({"cpu": "cortex-m99"}, "cpu='cortex-m99'"), ({"scratch_budget": -1}, "scratch_budget=-1"),
    ({"scratch_budget": 1.5}, "scratch_budget=1.5")])
def test_bad_options(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        codegen.generate([pool()], tmp_path, **kwargs)


def test_bad_layer_sets(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="layers=\\[\\]"):
        codegen.generate([], tmp_path)
    with pytest.raises(ValueError, match="input_shape=None"):
        codegen.generate([MaxPool2D(pool_size=2, name="p")], tmp_path)
    with pytest.raises(ValueError, match="not a supported layer type"):
        codegen.generate([SimpleNamespace(name="x")], tmp_path)


def test_16x8_accumulator_beyond_the_requantization_domain(tmp_path: Path) -> None:
    layer = conv("big", dtype=np.int16, bias=np.full(4, 1 << 47, np.int64))
    with pytest.raises(ValueError, match="outside the 16x8 requantization domain"):
        codegen.generate([layer], tmp_path)


def test_int8_accumulator_that_can_wrap_sums_in_int64(tmp_path: Path) -> None:
    wraps = conv("wraps", bias=np.full(4, (1 << 31) - 1, np.int32))
    source = read(codegen.generate([wraps, conv("fits")], tmp_path).source)
    assert "edgeconv_wrap32(acc)" in source.split("int fits(")[0].split("int wraps(")[1]
    assert "edgeconv_wrap32(acc)" not in source.split("int fits(")[1]


# ---------------------------------------------------------------------- hash, literals

def test_layer_set_hash() -> None:
    layers = [conv(), pool()]
    base = codegen.layer_set_hash(layers)
    assert re.fullmatch(r"[0-9a-f]{16}", base)
    assert codegen.layer_set_hash([conv(), pool()]) == base
    assert codegen.layer_set_hash(layers, strategy="direct") != base
    assert codegen.layer_set_hash(layers, cpu="cortex-m4") != base
    assert codegen.layer_set_hash(layers, scratch_budget=40) != base  # fewer columns
    assert codegen.layer_set_hash([conv("conv2"), pool()]) != base
    assert codegen.layer_set_hash([conv(padding="same"), pool()]) != base


def test_hash_matches_generate(tmp_path: Path) -> None:
    layers = [conv(), signal()]
    gen = codegen.generate(layers, tmp_path, strategy={"conv": "direct"})
    assert gen.hash == codegen.layer_set_hash(layers, strategy={"conv": "direct"})


def test_c_literals_and_comments() -> None:
    assert c_int(-(1 << 31)) == "(-2147483647 - 1)"
    assert c_int(-(1 << 63), "int64_t") == "(-INT64_C(9223372036854775807) - 1)"
    assert c_int(5, "int64_t") == "INT64_C(5)" and c_int(-128, "int8_t") == "-128"
    with pytest.raises(ValueError, match="value=128"):
        c_int(128, "int8_t")
    text = c_comment("a */ b /* c\n d ??/ e \\ \u00e9")
    assert not any(bad in text for bad in ("*/", "/*", "\n", "??", "\\"))
    assert text.isascii()


def test_sizes_beyond_32_bit_index_arithmetic(tmp_path: Path) -> None:
    huge = SignalFilter(np.array([1], np.int16), input_length=1 << 30, name="huge")
    with pytest.raises(ValueError, match="32-bit index arithmetic"):
        codegen.generate([huge], tmp_path)


@pytest.mark.parametrize("kwargs, message", [
    ({"strategy": "dsp-conv"}, "strategy='dsp-conv'"), ({"strategy": ""}, "strategy=''"),
    ({"scratch_bytes": -4}, "scratch_bytes=-4"), ({"scratch_bytes": 2.0}, "scratch_bytes=2.0")])
def test_kernel_plan_validation(kwargs: dict, message: str) -> None:
    args = {"strategy": "direct", "scratch_bytes": 0, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        Kernel(args["strategy"], "kernels/generic/conv_direct.c.j2", ()).plan(
            args["scratch_bytes"])
