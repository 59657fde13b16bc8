"""Whole models as one generated C network: net_run over one planned arena, bit-exact with
the reference model (itself bit-exact with LiteRT, tests/test_model_reference.py) on the
host under ASan/UBSan for every CPU's code and on the emulated boards, node by node too."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edgeconv
from edgeconv import codegen, targets
from edgeconv.codegen import Network

MODELS = Path(__file__).parent / "models"
# Every fixture model of tests/models/generate_models.py that holds only supported ops.
NETWORK_FIXTURES = ["conv_chain", "ds_cnn", "resnet8", "mobilenet_v1_025", "fc_autoencoder",
                    "misc_ops", "small_cnn_16x8", "small_cnn_float_io", "concat_requantize"]
# The host build of the Cortex-M code paths: the fixtures with the most fast kernels.
CPU_FIXTURES = ["conv_chain", "ds_cnn", "resnet8", "small_cnn_16x8"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
_CTYPE = {"int8": "int8_t", "int16": "int16_t", "float32": "float"}


def _input(model: edgeconv.Model, seed: int) -> np.ndarray:
    t = model.inputs[0]
    rng = np.random.default_rng(seed)
    if t.dtype == np.float32:
        return rng.normal(scale=2.0, size=t.shape[1:]).astype(np.float32)
    info = np.iinfo(t.dtype)
    return rng.integers(info.min, int(info.max) + 1, t.shape[1:]).astype(t.dtype)


def _run_on_host(tmp_path: Path, model: edgeconv.Model, cpu: str,
                 xs: list[np.ndarray], *, specialize: str = "speed") -> list[np.ndarray]:
    """Generate ``model`` for ``cpu``, compile its portable C for the host with ASan and
    UBSan, and run ``net_run`` on every input."""
    gen = codegen.generate(model, tmp_path, prefix="net", cpu=cpu, specialize=specialize)
    t_in, t_out = model.inputs[0], model.outputs[0]
    cin, cout = _CTYPE[t_in.dtype.name], _CTYPE[t_out.dtype.name]
    # floats travel as their bit patterns (exact), integers as decimal numbers
    fin, fout = (t.dtype == np.float32 for t in (t_in, t_out))
    read = ("{ uint32_t u = (uint32_t)v; memcpy(&input[i], &u, 4); }" if fin
            else f"input[i] = ({cin})v;")
    write = ('{ uint32_t u; memcpy(&u, &output[i], 4); printf("%lu ", (unsigned long)u); }'
             if fout else 'printf("%ld ", (long)output[i]);')
    main = tmp_path / "main.c"
    main.write_text(f"""#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "net.h"
static uint32_t arena[(NET_ARENA_BYTES + 3u) / 4u];
static {cin} input[NET_INPUT_COUNT];
static {cout} output[NET_OUTPUT_COUNT];
int main(void)
{{
    for (;;) {{
        unsigned i;
        long v;
        for (i = 0; i < NET_INPUT_COUNT; ++i) {{
            if (scanf("%ld", &v) != 1) return 0;
            {read}
        }}
        if (net_run(input, output, arena) != 0) return 1;
        for (i = 0; i < NET_OUTPUT_COUNT; ++i) {{
            {write}
        }}
        printf("\\n");
    }}
}}
""")
    exe = tmp_path / "net"
    subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", *SANITIZE,
                    "-I", str(tmp_path), str(gen.source), str(main), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    bits = [x.view(np.uint32) if fin else x for x in xs]
    text = "\n".join(" ".join(map(str, b.ravel())) for b in bits) + "\n"
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    rows = [np.array(line.split(), np.int64) for line in out.stdout.splitlines()]
    return [r.astype(np.uint32).view(np.float32) for r in rows] if fout else rows


@pytest.mark.parametrize("fixture, cpu", [
    *((f, "generic") for f in NETWORK_FIXTURES),
    *((f, cpu) for f in CPU_FIXTURES for cpu in ("cortex-m0", "cortex-m4", "cortex-m55"))])
def test_network_bit_exact_on_host(tmp_path: Path, fixture: str, cpu: str) -> None:
    model = edgeconv.load(MODELS / f"{fixture}.tflite")
    xs = [_input(model, seed) for seed in range(3)]
    got = _run_on_host(tmp_path, model, cpu, xs)
    for x, y in zip(xs, got, strict=True):
        want = np.asarray(model(x)).ravel()
        if want.dtype == np.float32:  # bit for bit, -0.0 and NaN included
            np.testing.assert_array_equal(y.view(np.uint32), want.view(np.uint32))
        else:
            np.testing.assert_array_equal(y, want)


def test_network_header_states_the_arena(tmp_path: Path) -> None:
    model = edgeconv.load(MODELS / "conv_chain.tflite")
    net = Network(model, name="kws")
    gen = codegen.generate([net], tmp_path, prefix="kws")
    header = gen.header.read_text()
    info = gen.layers[-1]
    assert info.name == "kws_run" and info.op == "network"
    assert f"#define KWS_ARENA_BYTES {info.scratch_bytes}u" in header
    assert "int kws_run(const int8_t *input, int8_t *output, void *arena);" in header
    assert "#define KWS_INPUT_COUNT 768u" in header and "#define KWS_OUTPUT_COUNT 64u" in header
    plan = net.plan({i.name: i.scratch_bytes for i in gen.layers[:-1]})
    plan.check()
    assert plan.size == info.scratch_bytes
    # chain of 5 kernels: the arena holds the largest neighbours plus a scratch, far less
    # than every tensor at once
    assert plan.peak_live_bytes() <= plan.size < sum(b.size for b in plan.buffers)
    assert [i.name for i in gen.layers] == ["kws_00_conv", "kws_01_dw", "kws_02_conv",
                                            "kws_03_maxpool", "kws_04_avgpool", "kws_run"]


def test_reshape_into_the_output_is_a_copy(tmp_path: Path) -> None:
    net = Network(edgeconv.load(MODELS / "conv_chain.tflite"))
    assert [s.kind for s in net.steps] == ["kernel"] * 5 + ["copy"]
    source = codegen.generate([net], tmp_path, prefix="net").source.read_text()
    assert "memcpy(output," in source


@pytest.mark.parametrize("name, message", [
    ("1net", "name='1net'"), ("n" * 25, "length 25"), ("edgeconv", "reserved")])
def test_bad_network_names(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Network(edgeconv.load(MODELS / "conv_chain.tflite"), name=name)


TARGETS = ["native", "qemu:mps2-an386", "qemu:mps2-an385:cortex-m0", "qemu:mps3-an547"]


@pytest.mark.parametrize("spec", TARGETS)
@pytest.mark.parametrize("fixture", NETWORK_FIXTURES)
def test_fixture_models_on_targets(spec: str, fixture: str) -> None:
    """The whole network (``net_run``), then every node on its own, on every target: each
    tensor equal to the reference model's (itself equal to LiteRT's, tensor by tensor:
    test_model_reference). On the boards a node's output is compared by its CRC-32 and
    fetched only on a mismatch."""
    if spec != "native":
        assert shutil.which("qemu-system-arm"), "qemu-system-arm not installed"
    model = edgeconv.load(MODELS / f"{fixture}.tflite")
    x = _input(model, 7)
    want = np.asarray(model(x))
    with targets.open(spec, model, nodes=True) as session:
        y = session.run(x)
        if want.dtype == np.float32:
            np.testing.assert_array_equal(y.view(np.uint32), want.reshape(y.shape).view(
                np.uint32))
        else:
            np.testing.assert_array_equal(y, want.reshape(y.shape))
        if session.count_unit == "instructions":
            assert session.last_count > int(np.prod(y.shape))  # at least one per output
        nodes = session.trace(x, crc=spec != "native")
    kernels = [s for s in session.network.steps if s.kind == "kernel"]
    assert [n.layer for n in nodes] == [s.layer.name for s in kernels]
    assert all(n.bit_exact for n in nodes), [(n.layer, n.mismatches) for n in nodes]


def test_conv_chain_node_by_node_names() -> None:
    model = edgeconv.load(MODELS / "conv_chain.tflite")
    with targets.open("native", model) as session:
        nodes = session.trace(_input(model, 1))
    assert [n.opcode for n in nodes] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D",
                                         "MAX_POOL_2D", "AVERAGE_POOL_2D"]


@pytest.mark.parametrize("fixture", ["ds_cnn", "small_cnn_16x8"])
def test_fixture_models_on_the_stm32_board(fixture: str) -> None:
    """netduinoplus2 (STM32F405, 96 KB for the harness' buffers): the models that fit, the
    whole network and then node by node (CRC per tensor)."""
    model = edgeconv.load(MODELS / f"{fixture}.tflite")
    x = _input(model, 3)
    with targets.open("qemu:netduinoplus2", model, nodes=True) as session:
        y = session.run(x)
        nodes = session.trace(x, crc=True)
    np.testing.assert_array_equal(y, np.asarray(model(x)).reshape(y.shape))
    assert len(nodes) == len([s for s in session.network.steps if s.kind == "kernel"])
    assert all(n.bit_exact for n in nodes), [(n.layer, n.mismatches) for n in nodes]


def test_a_model_too_large_for_the_board_is_refused_in_one_line(capsys) -> None:
    from edgeconv.cli import main

    model = MODELS / "mobilenet_v1_025.tflite"
    assert main(["verify", str(model), "--target", "qemu:microbit"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model does not fit qemu:microbit" in err[0]
    assert "microbit leaves 10,240 B" in err[0]
    net = Network(edgeconv.load(model), nodes=False)
    kept, skipped = targets.fitting_layers("qemu:microbit", [net])
    assert kept == [] and skipped == [net]


def test_model_bench_json(tmp_path: Path) -> None:
    """``edgeconv bench MODEL.tflite``: totals and one row per node, checked outputs."""
    from edgeconv.cli import main

    out = tmp_path / "bench.json"
    assert main(["bench", str(MODELS / "conv_chain.tflite"), "--target", "qemu:mps2-an386",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["mismatches"] == 0 and doc["count_unit"] == "instructions"
    assert doc["macs"] == 69376 and doc["instructions"] > doc["macs"]
    assert doc["instructions_per_mac"] == pytest.approx(doc["instructions"] / doc["macs"])
    assert doc["arena_bytes"] == 2560 and doc["io_bytes"] == 768 + 64
    rows = doc["layers"]
    assert [r["op"] for r in rows] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D",
                                       "MAX_POOL_2D", "AVERAGE_POOL_2D"]
    assert all(r["flash_bytes"] > 0 and r["instructions"] > 0 for r in rows)
    assert doc["flash_bytes"] > sum(r["flash_bytes"] for r in rows)  # net_run itself too


# ------------------------------------------------------------------ in-place ADD / MUL

def _arena_bytes(tmp_path: Path, net: Network, cpu: str) -> int:
    gen = codegen.generate([net], tmp_path, prefix="net", cpu=cpu)
    plan = net.plan({i.name: i.scratch_bytes for i in gen.layers[:-1]})
    plan.check()
    assert plan.size == gen.layers[-1].scratch_bytes
    return plan.size


def test_add_and_mul_write_in_place_of_a_dying_input(tmp_path: Path, monkeypatch) -> None:
    """Every in-place ADD / MUL output takes the storage of a same-sized input that no
    later step reads (through RESHAPE aliases too); the arena shrinks where the ADD was the
    peak (the 16x8 CNN: 6,912 -> 4,608 B) and stays where a conv is (ResNet-8: the second
    conv of the first block holds three 16 KB tensors). The outputs stay bit-exact: the
    host and board tests above run these plans."""
    from edgeconv.codegen import network

    aliased: dict[str, list[str]] = {}
    for fixture in NETWORK_FIXTURES:
        net = Network(edgeconv.load(MODELS / f"{fixture}.tflite"))
        tensors = net.model.tensors
        bufs = {b.name: b for b in net.buffers({})}
        for s in net.steps:
            b = bufs.get(f"t{s.output}")
            if b is None or b.alias_of is None or s.kind == "alias":
                continue
            assert s.opcode in ("ADD", "MUL")
            src = int(b.alias_of[1:])
            assert src in s.inputs and tensors[src].dtype == tensors[s.output].dtype
            assert np.prod(tensors[src].shape) == np.prod(tensors[s.output].shape)
            storage = {t for t in range(len(tensors)) if f"t{t}" in bufs
                       and net._root(t) == net._root(src)}
            assert not any(t in later.inputs for later in net.steps[s.index + 1:]
                           for t in storage)
            aliased.setdefault(fixture, []).append(s.opcode)
    assert aliased == {"resnet8": ["ADD"] * 3, "misc_ops": ["MUL", "MUL"],
                       "small_cnn_16x8": ["ADD"], "small_cnn_float_io": ["ADD"]}
    sizes = {}
    for in_place in (True, False):
        if not in_place:
            monkeypatch.setattr(network, "IN_PLACE_OPS", ())
        for fixture in ("resnet8", "small_cnn_16x8"):
            net = Network(edgeconv.load(MODELS / f"{fixture}.tflite"))
            sizes[fixture, in_place] = _arena_bytes(tmp_path / f"{fixture}{in_place}", net,
                                                    "cortex-m4")
    assert sizes["small_cnn_16x8", True] == 4608 < sizes["small_cnn_16x8", False] == 6912
    assert sizes["resnet8", True] == sizes["resnet8", False] == 50016


def test_in_place_needs_a_dying_unbroadcast_input() -> None:
    """The rules on misc_ops's tensors: t22 (8x8x10) and t24 (8x8x10) feed a MUL into t25."""
    from edgeconv.codegen.network import Step

    net = Network(edgeconv.load(MODELS / "misc_ops.tflite"))
    mul = Step(9, "MUL", "kernel", (22, 24), 25)
    assert net._in_place_input(mul, {22: 9, 24: 9}) == "t22"
    assert net._in_place_input(mul, {22: 10, 24: 9}) == "t24"  # t22 is read later
    assert net._in_place_input(mul, {22: 10, 24: 11}) is None
    # t19 (8x8x6, 384 B) is smaller than the output: a broadcast operand is never reused
    assert net._in_place_input(Step(9, "MUL", "kernel", (19,), 25), {19: 9}) is None
    # t28 dies here but its RESHAPE alias t29 is read at step 14: the storage lives on
    assert net._in_place_input(Step(12, "ADD", "kernel", (28,), 29),
                               {28: 12, 29: 14}) is None
