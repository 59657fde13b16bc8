"""Whole models as one generated C network: net_run over one planned arena, bit-exact with
the reference model (itself bit-exact with LiteRT, tests/test_model_reference.py) on the
host under ASan/UBSan for every CPU's code and on the emulated boards, node by node too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edgeconv
from edgeconv import codegen, targets
from edgeconv.codegen import Network

MODELS = Path(__file__).parent / "models"
# Fixtures whose every op has a C kernel.
NETWORK_FIXTURES = ["conv_chain"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


def _input(model: edgeconv.Model, seed: int) -> np.ndarray:
    t = model.inputs[0]
    info = np.iinfo(t.dtype)
    rng = np.random.default_rng(seed)
    return rng.integers(info.min, int(info.max) + 1, t.shape[1:]).astype(t.dtype)


def _run_on_host(tmp_path: Path, model: edgeconv.Model, cpu: str,
                 xs: list[np.ndarray]) -> list[np.ndarray]:
    """Generate ``model`` for ``cpu``, compile its portable C for the host with ASan and
    UBSan, and run ``net_run`` on every input."""
    gen = codegen.generate(model, tmp_path, prefix="net", cpu=cpu)
    t_in, t_out = model.inputs[0], model.outputs[0]
    cin, cout = f"{t_in.dtype.name}_t", f"{t_out.dtype.name}_t"
    main = tmp_path / "main.c"
    main.write_text(f"""#include <stdio.h>
#include <stdint.h>
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
            input[i] = ({cin})v;
        }}
        if (net_run(input, output, arena) != 0) return 1;
        for (i = 0; i < NET_OUTPUT_COUNT; ++i) printf("%ld ", (long)output[i]);
        printf("\\n");
    }}
}}
""")
    exe = tmp_path / "net"
    subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", *SANITIZE,
                    "-I", str(tmp_path), str(gen.source), str(main), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    text = "\n".join(" ".join(map(str, x.ravel())) for x in xs) + "\n"
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    return [np.array(line.split(), np.int64) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("cpu", ["generic", "cortex-m0", "cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("fixture", NETWORK_FIXTURES)
def test_network_bit_exact_on_host(tmp_path: Path, fixture: str, cpu: str) -> None:
    model = edgeconv.load(MODELS / f"{fixture}.tflite")
    xs = [_input(model, seed) for seed in range(4)]
    got = _run_on_host(tmp_path, model, cpu, xs)
    for x, y in zip(xs, got, strict=True):
        np.testing.assert_array_equal(y, np.asarray(model(x)).ravel())


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
def test_network_on_targets_whole_and_node_by_node(spec: str) -> None:
    if spec != "native":
        assert shutil.which("qemu-system-arm"), "qemu-system-arm not installed"
    model = edgeconv.load(MODELS / "conv_chain.tflite")
    x = _input(model, 7)
    with targets.open(spec, model) as session:
        y = session.run(x)
        np.testing.assert_array_equal(y, np.asarray(model(x)).reshape(y.shape))
        if session.count_unit == "instructions":
            assert session.last_count > 0
        nodes = session.trace(x)
    assert [n.opcode for n in nodes] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D",
                                         "MAX_POOL_2D", "AVERAGE_POOL_2D"]
    assert all(n.bit_exact for n in nodes), [(n.layer, n.mismatches) for n in nodes]
