"""Code-size mode (``specialize="size"``): the conv-like, pool and FC layers of a network
share one kernel per kind taking their parameters at run time. Bit-exact with the reference
model (itself bit-exact with LiteRT, tests/test_model_reference.py): every fixture node by
node on the native harness, two under ASan/UBSan on the host, a sample of the golden cases
of the shared ops under ASan/UBSan, DS-CNN and conv_chain on the Cortex-M4; smaller in flash
than speed mode (measured from the compiled objects)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from golden_configs import golden_cases
from test_golden import SANITIZE, _environment
from test_network import MODELS, NETWORK_FIXTURES, _input, _run_on_host

import edgeconv
from edgeconv import codegen, targets
from edgeconv.codegen.context import op_of
from edgeconv.codegen.cpus import CPUS
from edgeconv.codegen.kernels import shared
from edgeconv.targets import build


def _assert_same(got: np.ndarray, want: np.ndarray) -> None:
    want = np.asarray(want).reshape(got.shape)
    if want.dtype == np.float32:  # bit for bit, -0.0 and NaN included
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    else:
        np.testing.assert_array_equal(got, want)


# A whole network under ASan/UBSan on the host (the kernels' variety: the golden cases below;
# every fixture: the native harness).
@pytest.mark.parametrize("fixture", ["conv_chain", "small_cnn_16x8"])
def test_size_mode_bit_exact_on_host(tmp_path: Path, fixture: str) -> None:
    model = edgeconv.load(MODELS / f"{fixture}.tflite")
    xs = [_input(model, seed) for seed in range(2)]
    got = _run_on_host(tmp_path, model, "cortex-m4", xs, specialize="size")
    for x, y in zip(xs, got, strict=True):
        _assert_same(y, np.asarray(model(x)).ravel())


@pytest.mark.parametrize("fixture", NETWORK_FIXTURES)
def test_size_mode_node_by_node_on_native(fixture: str) -> None:
    model = edgeconv.load(MODELS / f"{fixture}.tflite")
    x = _input(model, 5)
    with targets.open("native", model, specialize="size") as session:
        _assert_same(session.run(x), model(x))
        nodes = session.trace(x)
    assert nodes and all(n.bit_exact for n in nodes), [(n.layer, n.mismatches) for n in nodes]


def test_size_mode_on_the_cortex_m4() -> None:
    """DS-CNN's whole network on the M4 (conv_chain runs there node by node in the bench
    test below)."""
    assert shutil.which("qemu-system-arm"), "qemu-system-arm not installed"
    model = edgeconv.load(MODELS / "ds_cnn.tflite")
    xs = [_input(model, seed) for seed in (11, 12)]
    with targets.open("qemu:mps2-an386", model, specialize="size", nodes=False) as session:
        for x in xs:
            _assert_same(session.run(x), model(x))


def test_golden_cases_of_the_shared_ops_in_size_mode() -> None:
    """Every 12th golden case of each op with a shared kernel (conv2d, conv1d, depthwise,
    pools, FC; int8 and 16x8, groups, dilations, pads, wrapping accumulators) in one
    size-mode build under ASan/UBSan, each bit-exact with its reference layer (all 624 of
    them passed when this was written)."""
    cases = [c for op in shared.OPS
             for c in [c for c in golden_cases() if op_of(c.layer) == op][::12]]
    assert {op_of(c.layer) for c in cases} == set(shared.OPS) and len(cases) > 45
    with _environment(EXTRA_CFLAGS=SANITIZE,
                      EDGECONV_CACHE_DIR=str(build.cache_root() / "sanitized")):
        session = targets.open("native", [c.layer for c in cases], specialize="size")
    with session:
        for case in cases:
            x = case.inputs()
            _assert_same(session.run(case.name, x), case.layer(x))


def _flash(tmp_path: Path, model: edgeconv.Model, specialize: str) -> int:
    """.text + .rodata of the network compiled for the Cortex-M4 at -O3, from nm."""
    gen = codegen.generate(model, tmp_path / specialize, prefix="net", cpu="cortex-m4",
                           specialize=specialize)
    obj = tmp_path / f"{specialize}.o"
    subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-O3", *CPUS["cortex-m4"].gcc_flags(),
                    "-c", str(gen.source), "-o", str(obj)], check=True, capture_output=True)
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(obj)], check=True,
                         capture_output=True, text=True).stdout
    return sum(int(size, 16) for size, kind in re.findall(r"^\w+ (\w+) ([tTrR]) ", out,
                                                         re.MULTILINE))


@pytest.mark.parametrize("fixture", ["ds_cnn", "mobilenet_v1_025"])
def test_size_mode_takes_less_flash(tmp_path: Path, fixture: str) -> None:
    assert shutil.which("arm-none-eabi-gcc"), "arm-none-eabi-gcc not installed"
    model = edgeconv.load(MODELS / f"{fixture}.tflite")
    speed, size = (_flash(tmp_path, model, s) for s in ("speed", "size"))
    assert 0 < size < speed


def test_layers_of_one_kind_share_one_kernel(tmp_path: Path) -> None:
    model = edgeconv.load(MODELS / "mobilenet_v1_025.tflite")
    gen = codegen.generate(model, tmp_path, prefix="net", specialize="size")
    source = gen.source.read_text()
    convs = [i for i in gen.layers if i.op in ("conv2d", "depthwise_conv2d")]
    assert len(convs) == 27 and {i.strategy for i in convs} == {"shared"}
    kernels = re.findall(r"^static EDGECONV_SHARED int (net_shared_\w+)\(const (\w+) \*restrict p,",
                         source, re.MULTILINE)
    assert [k for k, _ in kernels] == ["net_shared_conv2d", "net_shared_depthwise_conv2d",
                                       "net_shared_avg_pool2d", "net_shared_fully_connected"]
    for info in convs:  # each layer: a call of its kind's kernel with its parameters
        kind = "conv2d" if info.op == "conv2d" else "depthwise_conv2d"
        assert f"return net_shared_{kind}(&{info.name}_params, input, output, scratch);" \
            in source
    header = gen.header.read_text()
    assert '#define NET_01_DW_STRATEGY "shared"' in header


def test_size_mode_of_a_layer_list_and_its_hash() -> None:
    model = edgeconv.load(MODELS / "conv_chain.tflite")
    layers = codegen.expand_layers(model, "net")
    speed = codegen.layer_set_hash(layers, prefix="net")
    size = codegen.layer_set_hash(layers, prefix="net", specialize="size")
    assert speed != size


@pytest.mark.parametrize("value", ["fast", None, 1, "SIZE"])
def test_bad_specialize_is_refused(tmp_path: Path, value: object) -> None:
    model = edgeconv.load(MODELS / "conv_chain.tflite")
    with pytest.raises(ValueError, match=re.escape(f"specialize={value!r}: allowed are "
                                                   "'speed', 'size'")):
        codegen.generate(model, tmp_path, prefix="net", specialize=value)



def test_cli_generate_size(tmp_path: Path) -> None:
    from edgeconv.cli import main

    doc = tmp_path / "gen.json"
    assert main(["generate", str(MODELS / "conv_chain.tflite"), "-o", str(tmp_path / "out"),
                 "--cpu", "cortex-m4", "--specialize", "size", "--json", str(doc)]) == 0
    layers = json.loads(doc.read_text())["layers"]
    assert [r["strategy"] for r in layers] == ["shared"] * 5 + ["network"]
    assert "int net_shared_conv2d(const net_shared_conv2d_params_t *restrict p," in \
        (tmp_path / "out" / "net.c").read_text()


def test_cli_bench_size_counts_the_shared_kernels(tmp_path: Path) -> None:
    """``edgeconv bench MODEL --specialize size`` on the M4: the shared kernels are in the
    flash total; the whole network and every node checked bit for bit."""
    from edgeconv.cli import main

    out = tmp_path / "bench.json"
    assert main(["bench", str(MODELS / "conv_chain.tflite"), "--target", "qemu:mps2-an386",
                 "--specialize", "size", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["mismatches"] == 0 and doc["specialize"] == "size"
    assert {r["kernel"] for r in doc["layers"]} == {"shared"}
    shared = doc["shared_flash"]
    assert sorted(shared) == ["edgeconv_net_shared_avg_pool2d", "edgeconv_net_shared_conv2d",
                              "edgeconv_net_shared_depthwise_conv2d",
                              "edgeconv_net_shared_max_pool2d"]
    assert all(size > 0 for size in shared.values())
    assert doc["flash_bytes"] > sum(r["flash_bytes"] for r in doc["layers"]) + \
        sum(shared.values())  # net_run itself too


def test_flash_counts_each_symbol_once_for_its_longest_name(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    """A shared kernel ``net_shared_conv2d`` next to ``net_shared_conv2d_1``: each symbol
    (gcc's ``.constprop.0`` clones too) counts for the longest name it matches."""
    from edgeconv.bench import target as bench_target

    nm = ("00000010 00000040 t net_shared_conv2d.constprop.0\n"
          "00000050 00000100 t net_shared_conv2d_1\n"
          "00000150 00000008 r net_00_conv_params\n00000158 00000020 T net_00_conv\n"
          "00000178 00000004 b net_00_conv_state\n")

    def fake_run(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 0, nm, "")

    monkeypatch.setattr(bench_target.subprocess, "run", fake_run)
    assert bench_target.flash_bytes(tmp_path / "x.elf", [
        "net_00_conv", "net_shared_conv2d", "net_shared_conv2d_1"]) == {
        "net_00_conv": 0x28, "net_shared_conv2d": 0x40, "net_shared_conv2d_1": 0x100}


def test_cli_verify_size(capsys: pytest.CaptureFixture[str]) -> None:
    from edgeconv.cli import main

    assert main(["verify", str(MODELS / "conv_chain.tflite"), "--target", "native",
                 "--specialize", "size"]) == 0
    out = capsys.readouterr().out
    assert "whole network: bit-exact" in out
    rows = [line for line in out.splitlines() if line.startswith("net_0")]
    assert len(rows) == 5 and all(" shared " in r and r.rstrip().endswith("yes")
                                  for r in rows)


def test_size_mode_im2col_columns_follow_the_scratch_budget() -> None:
    """Conv layers: im2col columns within ``scratch_budget`` (one at least), so the arena
    can be traded for speed as in speed mode; depthwise: one patch."""
    model = edgeconv.load(MODELS / "conv_chain.tflite")
    for budget, columns in ((0, 1), (None, 4)):
        plans = codegen.plan_layers(model, prefix="net", specialize="size", cpu="cortex-m4",
                                    scratch_budget=budget)
        for p in plans:
            if p.ctx.op == "conv2d":
                taps = p.ctx.geo.k_h * p.ctx.geo.k_w * p.ctx.conv.in_c_per_group
                assert p.plan.scratch_bytes == 2 * taps * columns
                assert p.plan.context.values["columns"] == columns
            elif p.ctx.op == "depthwise_conv2d":
                assert p.plan.scratch_bytes == 2 * p.ctx.geo.k_h * p.ctx.geo.k_w * p.ctx.geo.in_c
