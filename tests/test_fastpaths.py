"""Fast kernels: plan selection, warning-clean C, bit-exact results on the host (the
portable fallback) and on QEMU (the DSP and Thumb-1 code)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from edgeconv import Conv2D, DepthwiseConv2D, codegen
from edgeconv.bench import target as bench_target
from edgeconv.codegen import kernels
from edgeconv.codegen.context import layer_context
from edgeconv.codegen.cpus import CPUS
from edgeconv.codegen.geometry import geometry
from edgeconv.codegen.kernels import dsp, m0, mve
from edgeconv.codegen.kernels import packing as pk
from edgeconv.codegen.plan import KernelPlan
from edgeconv.fixedpoint import quantize_multiplier_array

WARNINGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion",
            "-Wsign-conversion", "-Wshadow", "-Wcast-align", "-Werror"]
ARM_FLAGS = {c: CPUS[c].gcc_flags()
             for c in ("cortex-m4", "cortex-m7", "cortex-m0", "cortex-m3", "cortex-m55")}


def make_layer(name: str, shape: tuple[int, int, int], out_c: int, kernel: tuple[int, int], *,
               depthwise: bool = False, stride: int = 1, padding: object = "same",
               dilation: int = 1, dtype: type = np.int8, zp: int = 0, ozp: int = 0,
               scale: tuple[float, float] = (0.0005, 0.004), relu: bool = False,
               rounding: str = "double", neg_taps: int = 0, bias_max: int = 20000,
               act_max: int | None = None, seed: int = 0) -> Conv2D | DepthwiseConv2D:
    """A random quantized layer; ``scale`` bounds the per-channel real multipliers, the
    first ``neg_taps`` taps of the first channel (depthwise) or input channel are -128,
    the bias lies in [-bias_max, bias_max); ``act_max`` (default the dtype's maximum)."""
    rng = np.random.default_rng(seed)
    channels = shape[2] if depthwise else out_c
    w_shape = (1, *kernel, shape[2]) if depthwise else (out_c, *kernel, shape[2])
    weights = rng.integers(-128, 128, w_shape).astype(np.int8)
    weights.reshape(w_shape[0], -1, shape[2])[0, :neg_taps, 0] = -128
    mult, shift = quantize_multiplier_array(rng.uniform(*scale, channels))
    int16 = dtype == np.int16
    bias = rng.integers(-bias_max, bias_max, channels).astype(np.int64 if int16 else np.int32)
    if int16:
        zp = ozp = 0
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    common = dict(weights=weights, bias=bias, output_multiplier=mult, output_shift=shift,
                  stride=stride, padding=padding, dilation=dilation, input_zero_point=zp,
                  output_zero_point=ozp, activation_min=max(lo, ozp) if relu else lo,
                  activation_max=hi if act_max is None else act_max, activation_dtype=dtype,
                  rounding=rounding, name=name, input_shape=shape)
    return DepthwiseConv2D(**common) if depthwise else Conv2D(**common)


def cases() -> list[Conv2D | DepthwiseConv2D]:
    """Shapes and numerics that reach every branch of the fast kernels."""
    return [
        # im2col conv: SXTB16 fill, channel tail, odd pixel count, zero points, relu
        make_layer("c_sx", (5, 5, 8), 6, (3, 3), zp=-7, ozp=4, relu=True, seed=1),
        # bytes fill (3 channels), stride 2, dilation 2, explicit pads, 2 channels only
        make_layer("c_by", (7, 6, 3), 2, (3, 2), stride=2, dilation=2,
                   padding=((2, 1), (1, 2)), zp=5, seed=2),
        # dsp_conv's column asm: passes of 24 pair steps and a remainder of 10 (58 pairs),
        # two pixels in the only column (nv = 2), negative act_min and positive act_max;
        # two looped passes of 18 (36 pairs), act_max below 0, last column of two pixels
        make_layer("c_rem", (2, 4, 116), 5, (1, 1), padding="valid", zp=-3, ozp=-5,
                   relu=True, act_max=90, seed=31),
        make_layer("c_pass", (5, 4, 8), 4, (3, 3), zp=6, ozp=-50, relu=True, act_max=-20,
                   scale=(0.005, 0.02), seed=32),
        # fewer taps than one unrolled step (6), one input channel
        make_layer("c_tiny", (6, 5, 1), 3, (2, 3), zp=-1, seed=13),
        # one output pixel (as a fully connected layer): eight-channel groups, one more
        # block of two and a last channel
        make_layer("c_one", (3, 3, 5), 19, (3, 3), padding="valid", zp=2, ozp=-1, seed=30),
        # 1x1 GEMM with a channel tail and an odd pixel count; 1x1 strided (not a GEMM)
        make_layer("c_pw", (3, 3, 12), 5, (1, 1), zp=-3, ozp=-2, seed=3),
        make_layer("c_pws", (5, 4, 8), 8, (1, 1), stride=2, padding="valid", zp=9, seed=4),
        # whole Helium chunks only (16 taps), even pixel count
        make_layer("c_pw16", (3, 4, 16), 8, (1, 1), zp=4, seed=17),
        # left shifts (real multipliers > 1): the exact general requantization
        make_layer("c_left", (4, 4, 4), 4, (3, 3), scale=(1.5, 3.0), zp=2, seed=5),
        # single rounding: the shared helper
        make_layer("c_single", (4, 5, 4), 5, (3, 3), rounding="single", zp=1, seed=6),
        # 16x8: words fill (even channels) and bytes fill (odd channels)
        make_layer("c_i16", (4, 4, 6), 7, (3, 3), dtype=np.int16, scale=(0.00002, 0.0002),
                   seed=7),
        make_layer("c_i16b", (5, 3, 3), 4, (2, 3), dtype=np.int16, stride=2,
                   scale=(0.00002, 0.0002), seed=8),
        # 16x8 with every shift -17 (the last of dsp's one-SMMULR requantization) and with
        # every shift -18 (the int64 helper again)
        make_layer("c_i16s", (4, 5, 4), 3, (3, 3), dtype=np.int16, scale=(4.0e-6, 7.5e-6),
                   seed=28),
        make_layer("c_i16h", (4, 5, 4), 3, (3, 3), dtype=np.int16, scale=(2.0e-6, 3.7e-6),
                   seed=29),
        # Helium: a column long enough for the unrolled loop (216 taps); real multipliers
        # in [0.25, 0.5) (shift -1), where single rounding and 16x8 have no vector form
        make_layer("c_long", (4, 4, 24), 5, (3, 3), zp=3, relu=True, seed=24),
        make_layer("c_round1", (6, 6, 1), 3, (1, 2), rounding="single", zp=-2,
                   scale=(0.2, 0.45), bias_max=300, seed=25),
        make_layer("c_i16r", (6, 6, 1), 4, (1, 1), dtype=np.int16, scale=(0.3, 0.45),
                   bias_max=1000, seed=26),
        # depthwise: 3x3 same, strided dilated valid, 5x5 with relu
        make_layer("d_3", (5, 6, 8), 8, (3, 3), depthwise=True, zp=-4, ozp=3, seed=9),
        make_layer("d_sd", (9, 8, 4), 4, (3, 3), depthwise=True, stride=2, dilation=2,
                   padding="valid", zp=6, seed=10),
        make_layer("d_5", (6, 6, 4), 4, (5, 5), depthwise=True, relu=True, ozp=-6, seed=11),
        # depthwise: channel tails (6 = 4 + 2, 3 = 0 + 3), 16x8 with a tail
        make_layer("d_tail", (5, 4, 6), 6, (3, 3), depthwise=True, zp=3, seed=14),
        make_layer("d_c3", (4, 4, 3), 3, (2, 2), depthwise=True, stride=2, zp=-2, seed=15),
        make_layer("d_i16", (5, 5, 5), 5, (3, 3), depthwise=True, dtype=np.int16,
                   scale=(0.00002, 0.0002), seed=16),
        # 16x8 with whole groups: the interior pixel-pair path
        make_layer("d_i16p", (4, 7, 8), 8, (3, 3), depthwise=True, dtype=np.int16,
                   scale=(0.00002, 0.0002), seed=27),
        # depthwise, 16 channels or more: Helium groups of 16 (3x3 with a predicated tail;
        # 1x1 unpadded, two groups); groups of four for 5x5 (too many taps), single
        # rounding (padding at the bottom and right only) and 16x8
        make_layer("d_blk", (5, 6, 20), 20, (3, 3), depthwise=True, zp=-5, ozp=2, relu=True,
                   seed=18),
        make_layer("d_1x1", (3, 4, 32), 32, (1, 1), depthwise=True, padding="valid", zp=1,
                   seed=20),
        make_layer("d_5w", (5, 5, 18), 18, (5, 5), depthwise=True, stride=2, zp=7, seed=19),
        make_layer("d_single", (6, 6, 17), 17, (3, 3), depthwise=True, stride=2,
                   rounding="single", zp=-3, seed=21),
        make_layer("d_i16w", (3, 4, 29), 29, (3, 2), depthwise=True, dtype=np.int16,
                   scale=(0.00002, 0.0002), seed=22),
        # the block with taps 0 and 1 not summed in int16: -128 weights there, and the top
        # row reads -128 (the zero point) at both, so a sum would overflow
        make_layer("d_pair", (4, 5, 16), 16, (3, 3), depthwise=True, zp=-128, neg_taps=3,
                   seed=23),
    ]


EXPECTED = {  # layer name -> strategy on (cortex-m4, cortex-m0, cortex-m55)
    "c_sx": ("dsp_conv", "m0_conv", "mve_conv"), "c_by": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_tiny": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_rem": ("dsp_conv", "m0_conv", "mve_conv"), "c_pass": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_pw": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_pws": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_one": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_pw16": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_left": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_single": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_i16": ("dsp_conv", "m0_conv", "mve_conv"), "c_i16b": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_i16s": ("dsp_conv", "m0_conv", "mve_conv"), "c_i16h": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_long": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_round1": ("dsp_conv", "m0_conv", "mve_conv"),
    "c_i16r": ("dsp_conv", "m0_conv", "mve_conv"),
    "d_3": ("dsp_dw", "m0_dw", "mve_dw"), "d_sd": ("dsp_dw", "m0_dw", "mve_dw"),
    "d_5": ("dsp_dw", "m0_dw", "mve_dw"), "d_tail": ("dsp_dw", "m0_dw", "mve_dw"),
    "d_c3": ("dsp_dw", "m0_dw", "mve_dw"), "d_i16": ("dsp_dw", "m0_dw", "mve_dw"),
    "d_i16p": ("dsp_dw", "m0_dw", "mve_dw"),
    "d_blk": ("dsp_dw", "m0_dw", "mve_dw16"), "d_1x1": ("dsp_dw", "m0_dw", "mve_dw16"),
    "d_5w": ("dsp_dw", "m0_dw", "mve_dw"), "d_single": ("dsp_dw", "m0_dw", "mve_dw"),
    "d_i16w": ("dsp_dw", "m0_dw", "mve_dw"), "d_pair": ("dsp_dw", "m0_dw", "mve_dw16"),
}


def _plan(layer: Conv2D | DepthwiseConv2D, cpu: str) -> KernelPlan | None:
    return kernels.fast_plan(layer, cpu)


@pytest.mark.parametrize("cpu,column", [("cortex-m4", 0), ("cortex-m0", 1), ("cortex-m55", 2)])
def test_select_strategies(cpu: str, column: int) -> None:
    for layer in cases():
        plan = _plan(layer, cpu)
        assert plan is not None and plan.strategy == EXPECTED[layer.name][column], layer.name


def test_select_scratch_and_requant_modes() -> None:
    by_name = {layer.name: layer for layer in cases()}
    # three int16 columns of the (even-padded) taps, 1x1 included; none for depthwise
    assert _plan(by_name["c_sx"], "cortex-m4").scratch_bytes == 3 * 2 * 72
    # int8 with in_c % 4 != 0: 18 taps gathered as bytes, padded to 20 for SXTAB16
    assert _plan(by_name["c_by"], "cortex-m4").scratch_bytes == 3 * 2 * 20
    assert [_plan(by_name[n], "cortex-m4").context.fill for n in ("c_sx", "c_by", "c_i16",
                                                                   "c_i16b")] \
        == ["sxtb16", "bytes8", "words", "bytes"]
    assert _plan(by_name["c_pw"], "cortex-m4").scratch_bytes == 3 * 2 * 12
    # one output pixel: one column (45 taps padded to 48)
    assert _plan(by_name["c_one"], "cortex-m4").scratch_bytes == 2 * 48
    assert _plan(by_name["d_3"], "cortex-m4").scratch_bytes == 0
    # M0: one column of bytes (int16: halfwords), none when reading in place
    assert _plan(by_name["c_sx"], "cortex-m0").scratch_bytes == 72
    assert _plan(by_name["c_i16"], "cortex-m0").scratch_bytes == 2 * 54
    assert _plan(by_name["c_pw"], "cortex-m0").scratch_bytes == 0
    modes = {name: _plan(layer, "cortex-m4").context.requant
             for name, layer in by_name.items()}
    assert modes["c_sx"] == "r1" and modes["c_left"] == "double"
    assert modes["c_single"] == "helper"
    # 16x8: one SMMULR where every shift lies in [-17, -1], the int64 helper elsewhere
    assert modes["c_i16"] == "r16" and modes["c_i16r"] == "r16" and modes["d_i16"] == "r16"
    assert set(by_name["c_i16s"].output_shift) == {-17} and modes["c_i16s"] == "r16"
    assert set(by_name["c_i16h"].output_shift) == {-18} and modes["c_i16h"] == "helper"


def test_dsp_conv_column_asm() -> None:
    """int8 layers requantized by r1 with three pixel slots run every block of a column in
    one asm statement (requantization and stores included); the others keep the loop
    over blocks. Columns of at most COLUMN_UNROLL pairs take no loop."""
    by_name = {layer.name: layer for layer in cases()}
    plans = {name: _plan(layer, "cortex-m4") for name, layer in by_name.items()}
    column = {name for name, p in plans.items()
              if p.strategy == "dsp_conv" and p.context.column_asm}
    assert column == {"c_sx", "c_by", "c_rem", "c_pass", "c_tiny", "c_pw", "c_pws", "c_pw16",
                      "c_long"}
    assert [(plans[n].context.kp // 2, plans[n].context.pass_pairs)
            for n in ("c_rem", "c_pass", "c_by")] == [(58, 24), (36, 18), (10, 10)]
    # the column pointer is rewound by SUBW #(12 * pairs); no block: no asm
    assert dsp._column_asm(3, 341, 1, "r1") and not dsp._column_asm(3, 342, 1, "r1")
    assert not dsp._column_asm(3, 10, 0, "r1") and not dsp._column_asm(1, 10, 4, "r1")
    assert not dsp._column_asm(3, 10, 4, "double")


def test_mve_conv_plans() -> None:
    """Helium conv: columns padded to 16 taps in the scratch, pointwise read in place from
    16 input channels, the loop of four chunks, and the vector requantization modes."""
    by_name = {layer.name: layer for layer in cases()}
    plans = {name: _plan(layer, "cortex-m55") for name, layer in by_name.items()
             if name.startswith("c_")}
    fast = {name: asdict(plan.context) for name, plan in plans.items()}
    scratch = {name: plans[name].scratch_bytes for name in ("c_sx", "c_tiny", "c_pw", "c_pw16")}
    assert scratch == {"c_sx": 2 * 72, "c_tiny": 2 * 16, "c_pw": 2 * 16, "c_pw16": 0}
    assert fast["c_long"]["chunks"] == {"count": 14, "back": 8, "loops": 3, "unroll": 4,
                                        "straight": 0}
    assert fast["c_sx"]["chunks"] == {"count": 5, "back": 8, "loops": 0, "unroll": 0,
                                      "straight": 3}
    modes = {name: (f["vreq"], f["left"], f["all_right"]) for name, f in fast.items()}
    assert modes["c_sx"] == ("double", False, True)
    assert modes["c_left"] == ("double", True, False)
    assert modes["c_single"] == modes["c_i16"] == ("mulh", False, True)
    assert modes["c_round1"][0] is None and modes["c_i16r"][0] is None
    assert fast["c_by"]["interior"] == [1, 2, 1, 2] and fast["c_i16b"]["interior"] is None


def test_mve_weights_layout() -> None:
    """Chunk 1 of a 20-tap column reads taps 4..19; taps 4..15 weigh 0 there. The second
    block holds the fifth channel and three zero rows."""
    w = np.arange(1, 101).reshape(5, 20)
    got = np.array(mve.conv_weights(w, 16, 2)).reshape(2, 2, 4, 16)  # block, chunk, ch
    np.testing.assert_array_equal(got[0, 0], w[:4, :16])
    np.testing.assert_array_equal(got[0, 1, :, :12], 0)
    np.testing.assert_array_equal(got[0, 1, :, 12:], w[:4, 16:])
    np.testing.assert_array_equal(got[1, 1, 0, 12:], w[4, 16:])
    np.testing.assert_array_equal(got[1, :, 1:], 0)


def test_mve_dw16_paths(tmp_path: Path) -> None:
    """The Helium groups of 16 (int8, r1 mode, at most nine taps, 16 channels or more)
    with the pixel of zero points where taps leave the input, and the int16 tap pairs."""
    by_name = {layer.name: layer for layer in cases()}
    fast = {name: plan.context for name, layer in by_name.items()
            if (plan := _plan(layer, "cortex-m55")).strategy == "mve_dw16"}
    assert set(fast) == {"d_blk", "d_1x1", "d_pair"}
    assert [fast[n].needs_pad for n in ("d_blk", "d_1x1", "d_pair")] == [True, False, True]
    assert fast["d_blk"].pairs == [[0, 1], [2, 3], [4, 5], [6, 7], [8]]
    assert fast["d_pair"].pairs == [[0], [1], [2, 3], [4, 5], [6, 7], [8]]
    assert fast["d_1x1"].pairs == [[0]]
    # padding at the bottom and right only; none where the output shrinks
    pads = {name: geometry(by_name[name], "depthwise_conv2d", by_name[name].input_shape).needs_pad
            for name in ("d_single", "d_c3", "d_sd")}
    assert pads == {"d_single": True, "d_c3": False, "d_sd": False}
    source = codegen.generate([by_name["d_blk"]], tmp_path, cpu="cortex-m55").source
    assert "le lr,1b" in source.read_text()


def test_select_declines() -> None:
    layer = cases()[0]
    assert kernels.fast_plan(layer, "generic", layer.input_shape) is None
    dm2 = DepthwiseConv2D(weights=np.ones((1, 3, 3, 8), np.int8), depth_multiplier=2,
                          output_multiplier=np.full(8, 1 << 30, np.int32),
                          output_shift=np.full(8, -3, np.int32), input_shape=(4, 4, 4))
    assert kernels.fast_plan(dm2, "cortex-m4", (4, 4, 4)) is None
    with pytest.raises(ValueError, match="cpu='cortex-m85'"):
        kernels.fast_plan(layer, "cortex-m85", layer.input_shape)


def test_select_declines_int32_overflow() -> None:
    """16x8 products of 2**15 * 127 over 1024 taps can leave int32: no fast path."""
    layer = make_layer("big", (4, 4, 128), 4, (3, 3), dtype=np.int16, seed=12)
    big = Conv2D(weights=np.full((4, 3, 3, 128), 127, np.int8), bias=layer.bias,
                 output_multiplier=layer.output_multiplier, output_shift=layer.output_shift,
                 padding="same", activation_dtype=np.int16, input_shape=(4, 4, 128))
    assert kernels.fast_plan(big, "cortex-m4", (4, 4, 128)) is None
    assert kernels.fast_plan(big, "cortex-m0", (4, 4, 128)) is None


def _generate(cpu: str, out: Path, layers: list[Conv2D | DepthwiseConv2D] | None = None
              ) -> tuple[Path, list[Conv2D | DepthwiseConv2D], list]:
    layers = cases() if layers is None else layers
    gen = codegen.generate(layers, out, "fastnet", cpu=cpu)
    return gen.source, layers, list(gen.layers)


def _host_bit_exact(cpu: str, column: int, tmp_path: Path,
                    layers: list[Conv2D | DepthwiseConv2D] | None = None) -> None:
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("host gcc not installed")
    source, layers, infos = _generate(cpu, tmp_path, layers)
    lib = tmp_path / "fastnet.so"
    proc = subprocess.run([cc, *WARNINGS, "-fPIC", "-shared", str(source), "-o", str(lib)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    dll = ctypes.CDLL(str(lib))
    rng = np.random.default_rng(99)
    for layer, info in zip(layers, infos, strict=True):
        assert info.strategy == EXPECTED[layer.name][column]
        lo, hi = np.iinfo(layer.activation_dtype).min, np.iinfo(layer.activation_dtype).max
        x = rng.integers(lo, hi, layer.input_shape, endpoint=True).astype(layer.activation_dtype)
        y = np.full(layer.output_shape, 77, layer.activation_dtype)
        scratch = np.zeros(max(1, info.scratch_bytes // 4 + 1), np.uint32)
        rc = getattr(dll, layer.name)(ctypes.c_void_p(x.ctypes.data),
                                      ctypes.c_void_p(y.ctypes.data),
                                      ctypes.c_void_p(scratch.ctypes.data))
        assert rc == 0
        np.testing.assert_array_equal(y, layer(x), err_msg=layer.name)


@pytest.mark.parametrize("cpu,column", [("cortex-m4", 0), ("cortex-m0", 1), ("cortex-m55", 2)])
def test_host_fallback_bit_exact(cpu: str, column: int, tmp_path: Path) -> None:
    """The portable C of every fast kernel, built for the host with the codegen warning
    flags, gives the reference output on random input."""
    _host_bit_exact(cpu, column, tmp_path)


@pytest.mark.parametrize("cpu,source_cpu,opts", [
    ("cortex-m4", "cortex-m4", ["-O2"]),
    ("cortex-m4", "cortex-m4", ["-O0"]),
    ("cortex-m4", "cortex-m4", ["-Os", "-fno-omit-frame-pointer"]),
    ("cortex-m7", "cortex-m4", ["-O3", "-fno-omit-frame-pointer", "-ffixed-r9"]),
    ("cortex-m55", "cortex-m4", ["-O2", "-fno-omit-frame-pointer"]),
    ("cortex-m55", "cortex-m55", ["-O3"]),
    ("cortex-m55", "cortex-m55", ["-O0"]),
    ("cortex-m0", "cortex-m0", ["-O2"]),
    ("cortex-m0", "cortex-m0", ["-Os", "-fno-omit-frame-pointer"]),
    ("cortex-m3", "cortex-m0", ["-O1"]),
])
def test_arm_builds_warning_clean(cpu: str, source_cpu: str, opts: list[str],
                                  tmp_path: Path) -> None:
    """The intrinsics and inline assembly compile cleanly for the Arm cores, also where
    registers are scarce (frame pointer, fixed r9) and at -O0 (the C forms)."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    source, _, _ = _generate(source_cpu, tmp_path)
    proc = subprocess.run(["arm-none-eabi-gcc", *ARM_FLAGS[cpu], *WARNINGS, *opts, "-c",
                           str(source), "-o", str(tmp_path / "fastnet.o")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("target,column", [("qemu:mps2-an386", 0), ("qemu:mps2-an385", 1),
                                           ("qemu:mps3-an547", 2)])
def test_on_target_bit_exact(target: str, column: int) -> None:
    """Every fast kernel on the emulated core matches the reference element for element."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed")
    layers = cases()
    results = bench_target.run(layers, target, "O3")
    for layer, r in zip(layers, results, strict=True):
        assert r.strategy == EXPECTED[layer.name][column]
        assert r.mismatches == 0, r


def test_pack_bytes_is_little_endian_int8() -> None:
    """Four int8 a word, byte 0 lowest (checked against numpy's own int8 -> int32 view)."""
    values = np.array([-128, 127, -1, 0, 5, -6, 7], np.int64)
    padded = np.zeros(8, np.int8)
    padded[:7] = values
    assert pk.pack_bytes(values) == padded.view("<i4").tolist()
    with pytest.raises(ValueError, match="values"):
        pk.pack_bytes(np.array([128]))


def test_dsp_dw_int16_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """dsp_dw with the int16 weight pairs (the option against the int8 default: two
    words a tap and group where int8 takes one): bit-exact in the portable C on the host
    and on the emulated M4."""
    layers, int8 = _dw_weight_option(dsp, "cortex-m4", "int16", monkeypatch)
    for layer in layers:
        k = _plan(layer, "cortex-m4").context
        c = layer.input_shape[2]
        taps_groups = int(np.prod(layer.weights.shape[:3])) * (c // 4)
        assert k.weights == "int16" and int8[layer.name].weights == "int8"
        assert len(k.wwords) == len(int8[layer.name].wwords) + taps_groups, layer.name
    _host_bit_exact("cortex-m4", 0, tmp_path, layers)
    _emulated_bit_exact(layers, "qemu:mps2-an386", "dsp_dw")


def _dw_weight_option(module: object, cpu: str, option: str,
                      monkeypatch: pytest.MonkeyPatch) -> tuple[list[DepthwiseConv2D], dict]:
    """The depthwise cases and the contexts of their default plans on ``cpu``, after
    checking that ``module._depthwise`` refuses weights='int4' and setting
    ``module.DW_WEIGHTS`` to ``option``."""
    layers = [layer for layer in cases() if layer.name.startswith("d_")]
    with pytest.raises(ValueError, match="weights='int4'"):
        module._depthwise(layer_context(layers[0], "d", cpu), weights="int4")
    default = {layer.name: _plan(layer, cpu).context for layer in layers}
    monkeypatch.setattr(module, "DW_WEIGHTS", option)
    return layers, default


def _emulated_bit_exact(layers: list[Conv2D | DepthwiseConv2D], target: str,
                        strategy: str) -> None:
    """Every layer planned as ``strategy`` and bit-exact on the emulated ``target``."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed")
    for r in bench_target.run(layers, target, "O3"):
        assert r.strategy == strategy and r.mismatches == 0, r


def test_m0_dw_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """m0_dw (int8 weights, its interior taps in Thumb-1 assembly) on the emulated M0, and
    the int32 option m0_dw32 (four times the weight bytes) on the host and the M0."""
    layers, int8 = _dw_weight_option(m0, "cortex-m0", "int32", monkeypatch)
    for layer in layers:
        dsp_name, _, mve_name = EXPECTED[layer.name]
        monkeypatch.setitem(EXPECTED, layer.name, (dsp_name, "m0_dw32", mve_name))
        plan = _plan(layer, "cortex-m0")
        assert plan.strategy == "m0_dw32", layer.name
        assert len(plan.context.wwords) == len(int8[layer.name].wvals), layer.name
    _host_bit_exact("cortex-m0", 1, tmp_path, layers)
    _emulated_bit_exact(layers, "qemu:mps2-an385:cortex-m0", "m0_dw32")
    monkeypatch.undo()
    _emulated_bit_exact(layers, "qemu:mps2-an385:cortex-m0", "m0_dw")
