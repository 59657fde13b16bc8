"""Generate TFLite golden vectors for the edgeconv layer ops.

Run by hand with a TensorFlow venv (TensorFlow is not a test dependency):

    /tmp/tfvenv/bin/python tests/golden/generate_tflite.py [--out tests/golden]

Each configuration is one single-layer Keras model, converted with full-integer
quantization (int8, or 16x8 with int16 IO and an int64 or, with ``bias_type: int32``, an
int32 bias), run with TFLite's reference kernels
(``BUILTIN_REF``, one thread, no XNNPACK) on integer inputs that cover the full range.
The model parameters are read back from the converted flatbuffer and the
interpreter's tensor details, so each ``<id>.npz`` holds exactly what the runtime used.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.lite.python import schema_py_generated as schema  # noqa: E402

SCRIPT_VERSION = "2"  # 2: bias_type int32 and depthwise_as_groups configurations
N_CALIBRATION = 16

# TFLite schema enums (tflite/schema.fbs).
_PADDING = {schema.Padding.SAME: "same", schema.Padding.VALID: "valid"}
_ACTIVATION = {
    schema.ActivationFunctionType.NONE: "none",
    schema.ActivationFunctionType.RELU: "relu",
    schema.ActivationFunctionType.RELU_N1_TO_1: "relu_n1_to_1",
    schema.ActivationFunctionType.RELU6: "relu6",
}
_EXPECTED_OP = {
    "conv2d": "CONV_2D",
    "depthwise": "DEPTHWISE_CONV_2D",
    "depthwise_as_groups": "CONV_2D",
    "maxpool": "MAX_POOL_2D",
    "avgpool": "AVERAGE_POOL_2D",
}


def _cfg(cid: str, op: str, dtype: str, shape: tuple[int, int, int], **kw: Any) -> dict:
    """One golden configuration with defaults filled in."""
    cfg = {
        "id": cid, "op": op, "dtype": dtype, "input_shape": list(shape),
        "kernel": [3, 3], "strides": [1, 1], "padding": "same", "dilation": [1, 1],
        "filters": None, "groups": 1, "depth_multiplier": 1, "activation": None, "use_bias": True,
        "saturate": False, "conv1d_equivalent": False, "n_samples": 3,
        "input_range": [-1.0, 1.0], "bias_type": None, "depthwise_as_groups": False,
    }
    unknown = set(kw) - set(cfg)
    if unknown:
        raise ValueError(f"config {cid}: unknown keys {sorted(unknown)}")
    cfg.update({k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()})
    return cfg


CONFIGS: list[dict] = [
    # Conv2D int8
    _cfg("conv2d_i8_k3s1_same_relu", "conv2d", "int8", (8, 8, 3), filters=5, activation="relu"),
    _cfg("conv2d_i8_k3s2_valid_sat", "conv2d", "int8", (9, 9, 5), filters=7, strides=(2, 2),
         padding="valid", saturate=True, input_range=(-0.3, 1.0)),
    _cfg("conv2d_i8_k5s3_same_sat", "conv2d", "int8", (11, 10, 3), filters=4, kernel=(5, 5),
         strides=(3, 3), saturate=True),
    _cfg("conv2d_i8_k3d2_same", "conv2d", "int8", (10, 10, 3), filters=6, dilation=(2, 2),
         input_range=(0.0, 2.0)),
    _cfg("conv2d_i8_k3d2_valid_relu6", "conv2d", "int8", (12, 9, 5), filters=3, dilation=(2, 2),
         padding="valid", activation="relu6"),
    _cfg("conv2d_i8_k1x5_same_sat", "conv2d", "int8", (6, 12, 7), filters=5, kernel=(1, 5),
         saturate=True),
    _cfg("conv2d_i8_k5x1_s2x1_valid", "conv2d", "int8", (12, 6, 3), filters=7, kernel=(5, 1),
         strides=(2, 1), padding="valid"),
    _cfg("conv2d_i8_k1_sat", "conv2d", "int8", (7, 7, 7), filters=9, kernel=(1, 1),
         saturate=True),
    _cfg("conv2d_i8_k2x3_s2x3_same", "conv2d", "int8", (9, 11, 4), filters=6, kernel=(2, 3),
         strides=(2, 3)),
    _cfg("conv2d_i8_nobias", "conv2d", "int8", (6, 6, 3), filters=4, use_bias=False),
    _cfg("conv2d_i8_k3_relu6_sat", "conv2d", "int8", (8, 8, 5), filters=6, activation="relu6",
         saturate=True),
    _cfg("conv2d_i8_1d_k5_same", "conv2d", "int8", (1, 20, 5), filters=7, kernel=(1, 5),
         conv1d_equivalent=True, input_range=(-0.5, 1.5)),
    _cfg("conv2d_i8_1d_k3s2_valid_sat", "conv2d", "int8", (1, 17, 3), filters=4, kernel=(1, 3),
         strides=(1, 2), padding="valid", saturate=True, conv1d_equivalent=True),
    _cfg("conv2d_i8_groups3_sat", "conv2d", "int8", (7, 7, 6), filters=9, groups=3,
         saturate=True),
    _cfg("conv2d_i8_L2", "conv2d", "int8", (16, 16, 32), filters=32, n_samples=2),
    # Conv2D 16x8
    _cfg("conv2d_i16_k3s1_same", "conv2d", "int16", (8, 8, 3), filters=5),
    _cfg("conv2d_i16_k3s2_valid_relu_sat", "conv2d", "int16", (9, 9, 5), filters=7,
         strides=(2, 2), padding="valid", activation="relu", saturate=True),
    _cfg("conv2d_i16_k5s3_same_relu6", "conv2d", "int16", (11, 10, 3), filters=4, kernel=(5, 5),
         strides=(3, 3), activation="relu6"),
    _cfg("conv2d_i16_k3d2_same_sat", "conv2d", "int16", (10, 10, 7), filters=3, dilation=(2, 2),
         saturate=True),
    _cfg("conv2d_i16_k1x5_same", "conv2d", "int16", (6, 12, 5), filters=3, kernel=(1, 5)),
    _cfg("conv2d_i16_k5x1_s2_valid_sat", "conv2d", "int16", (12, 6, 3), filters=5,
         kernel=(5, 1), strides=(2, 2), padding="valid", saturate=True),
    _cfg("conv2d_i16_1d_k7s3_same", "conv2d", "int16", (1, 20, 3), filters=5, kernel=(1, 7),
         strides=(1, 3), conv1d_equivalent=True),
    _cfg("conv2d_i16_groups2_s2_valid", "conv2d", "int16", (8, 8, 6), filters=4, groups=2,
         strides=(2, 2), padding="valid"),
    _cfg("conv2d_i16_L2", "conv2d", "int16", (16, 16, 32), filters=32, n_samples=2),
    # DepthwiseConv2D int8
    _cfg("dw_i8_k3s1_same", "depthwise", "int8", (8, 8, 5)),
    _cfg("dw_i8_k3s2_valid_dm2_relu", "depthwise", "int8", (9, 9, 3), strides=(2, 2),
         padding="valid", depth_multiplier=2, activation="relu", input_range=(-1.0, 3.0)),
    _cfg("dw_i8_k5s3_same_dm3_sat", "depthwise", "int8", (11, 11, 3), kernel=(5, 5),
         strides=(3, 3), depth_multiplier=3, saturate=True),
    _cfg("dw_i8_k3d2_same_dm2_relu6", "depthwise", "int8", (10, 10, 5), dilation=(2, 2),
         depth_multiplier=2, activation="relu6"),
    _cfg("dw_i8_k1x3_same_sat", "depthwise", "int8", (7, 9, 7), kernel=(1, 3), saturate=True,
         input_range=(-2.0, 0.5)),
    _cfg("dw_i8_L4", "depthwise", "int8", (16, 16, 64), n_samples=2),
    # DepthwiseConv2D 16x8
    _cfg("dw_i16_k3s1_same_dm2_relu", "depthwise", "int16", (8, 8, 3), depth_multiplier=2,
         activation="relu"),
    _cfg("dw_i16_k3s2_valid_sat", "depthwise", "int16", (9, 9, 5), strides=(2, 2),
         padding="valid", saturate=True),
    _cfg("dw_i16_k3d2_same_dm3", "depthwise", "int16", (10, 10, 3), dilation=(2, 2),
         depth_multiplier=3),
    _cfg("dw_i16_k3x1_s3_same_relu6", "depthwise", "int16", (12, 7, 5), kernel=(3, 1),
         strides=(3, 3), activation="relu6"),
    _cfg("dw_i16_L4", "depthwise", "int16", (16, 16, 64), n_samples=2),
    # 16x8 with an int32 bias (the converter's int32-bias option): TFLite's
    # ConvPerChannel<int32_t>, an int32 accumulator requantized by the 32-bit
    # MultiplyByQuantizedMultiplier. LiteRT's DEPTHWISE_CONV_2D refuses an int32 bias for
    # 16x8 (Prepare: "bias->type != kTfLiteInt64"), so the depthwise configurations are
    # the same computation as a grouped CONV_2D (groups = input channels, filters = C * M:
    # output channel c * M + m reads input channel c), stored in the depthwise layout.
    _cfg("conv2d_i16_b32_k3s1_same", "conv2d", "int16", (8, 8, 3), filters=5, bias_type="int32"),
    _cfg("conv2d_i16_b32_k3s2_valid_relu_sat", "conv2d", "int16", (9, 9, 5), filters=7,
         strides=(2, 2), padding="valid", activation="relu", saturate=True, bias_type="int32"),
    _cfg("conv2d_i16_b32_k5x1_d2_same_sat", "conv2d", "int16", (10, 6, 4), filters=6,
         kernel=(5, 1), dilation=(2, 1), saturate=True, bias_type="int32"),
    _cfg("dw_i16_b32_k3s1_same_dm2_sat", "depthwise", "int16", (8, 8, 3), depth_multiplier=2,
         saturate=True, bias_type="int32", depthwise_as_groups=True),
    _cfg("dw_i16_b32_k3s2_valid_relu6", "depthwise", "int16", (9, 9, 5), strides=(2, 2),
         padding="valid", activation="relu6", bias_type="int32", depthwise_as_groups=True),
    # Pooling
    _cfg("maxpool_i8_k2s2_valid", "maxpool", "int8", (8, 8, 5), kernel=(2, 2), strides=(2, 2),
         padding="valid"),
    _cfg("maxpool_i8_k3s2_same", "maxpool", "int8", (9, 9, 3), strides=(2, 2)),
    _cfg("avgpool_i8_k3s2_same", "avgpool", "int8", (9, 9, 3), strides=(2, 2),
         input_range=(-0.2, 1.0)),
    _cfg("avgpool_i8_k2x3_s1x2_valid", "avgpool", "int8", (8, 9, 5), kernel=(2, 3),
         strides=(1, 2), padding="valid"),
    _cfg("avgpool_i8_k5s3_same", "avgpool", "int8", (11, 11, 4), kernel=(5, 5), strides=(3, 3)),
    _cfg("maxpool_i16_k3s1_same", "maxpool", "int16", (7, 7, 3)),
    _cfg("avgpool_i16_k3s2_same", "avgpool", "int16", (9, 8, 5), strides=(2, 2)),
    _cfg("avgpool_i16_k2s2_valid", "avgpool", "int16", (8, 8, 7), kernel=(2, 2),
         strides=(2, 2), padding="valid"),
]


def _seed(cfg: dict) -> int:
    """Stable per-config seed (independent of list order and Python hash seed)."""
    return zlib.crc32(cfg["id"].encode())


def _build_model(cfg: dict, rng: np.random.Generator) -> keras.Model:
    """Single-layer Keras model with explicit, seeded weights."""
    h, w, c = cfg["input_shape"]
    inp = keras.Input((h, w, c), batch_size=1)
    common = {"strides": tuple(cfg["strides"]), "padding": cfg["padding"]}
    op = cfg["op"]
    if op == "depthwise" and cfg["depthwise_as_groups"]:
        layer = keras.layers.Conv2D(
            c * cfg["depth_multiplier"], tuple(cfg["kernel"]), groups=c,
            dilation_rate=tuple(cfg["dilation"]), activation=cfg["activation"],
            use_bias=cfg["use_bias"], **common)
    elif op == "conv2d":
        layer = keras.layers.Conv2D(
            cfg["filters"], tuple(cfg["kernel"]), dilation_rate=tuple(cfg["dilation"]),
            groups=cfg["groups"], activation=cfg["activation"], use_bias=cfg["use_bias"],
            **common)
    elif op == "depthwise":
        layer = keras.layers.DepthwiseConv2D(
            tuple(cfg["kernel"]), depth_multiplier=cfg["depth_multiplier"],
            dilation_rate=tuple(cfg["dilation"]), activation=cfg["activation"],
            use_bias=cfg["use_bias"], **common)
    elif op == "maxpool":
        layer = keras.layers.MaxPooling2D(tuple(cfg["kernel"]), **common)
    elif op == "avgpool":
        layer = keras.layers.AveragePooling2D(tuple(cfg["kernel"]), **common)
    else:
        raise ValueError(f"config {cfg['id']}: unknown op {op!r}")
    model = keras.Model(inp, layer(inp))
    if op in ("conv2d", "depthwise"):
        kernel = rng.normal(0.0, 0.3, layer.kernel.shape)
        # Spread the per-output-channel magnitudes so filter scales (and shifts) differ.
        # Keras depthwise kernels are (KH, KW, C, M); output channel c * M + m. Grouped
        # Conv2D kernels are (KH, KW, C / groups, filters), channel last either way.
        keras_dw = op == "depthwise" and not cfg["depthwise_as_groups"]
        out_ch = int(np.prod(kernel.shape[2:])) if keras_dw else kernel.shape[-1]
        gains = np.exp(rng.uniform(-1.5, 1.5, out_ch))
        if keras_dw:
            kernel = (kernel.reshape(*kernel.shape[:2], out_ch) * gains).reshape(kernel.shape)
        else:
            kernel = kernel * gains
        weights = [kernel.astype(np.float32)]
        if cfg["use_bias"]:
            weights.append(rng.normal(0.0, 0.5, out_ch).astype(np.float32))
        layer.set_weights(weights)
    return model


def _calibration(cfg: dict, rng: np.random.Generator) -> Iterator[list[np.ndarray]]:
    """Representative data spanning ``input_range`` (sets the input scale and zero point).

    With ``saturate`` the samples lie within a fiftieth of the range around its middle,
    except the first and last element, set to the ends: the input range is unchanged but
    the calibrated output range is much narrower than what full-range test inputs
    produce, so many outputs clip.
    """
    shape = (1, *cfg["input_shape"])
    lo, hi = cfg["input_range"]
    for _ in range(N_CALIBRATION):
        if cfg["saturate"]:
            mid, half = (lo + hi) / 2, (hi - lo) / 100
            x = rng.uniform(mid - half, mid + half, shape)
            x[0, 0, 0, 0], x[0, -1, -1, -1] = lo, hi
        else:
            x = rng.uniform(lo, hi, shape)
        yield [x.astype(np.float32)]


def _convert(model: keras.Model, cfg: dict, rng: np.random.Generator) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    calib = list(_calibration(cfg, rng))
    conv.representative_dataset = lambda: iter(calib)
    if cfg["dtype"] == "int8":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.int8
    else:
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        io_type = tf.int16
    if cfg["bias_type"] == "int32":
        # The converter's int32-bias option (16x8 only; the attribute is experimental).
        conv._experimental_full_integer_quantization_bias_type = tf.int32  # noqa: SLF001
    conv.inference_input_type = io_type
    conv.inference_output_type = io_type
    return conv.convert()


def _test_inputs(cfg: dict, rng: np.random.Generator, dtype: type) -> np.ndarray:
    """Full-range integer inputs: uniform, extremes only, and uniform with clipped blocks."""
    info = np.iinfo(dtype)
    shape = tuple(cfg["input_shape"])
    h, w = shape[:2]
    uniform = rng.integers(info.min, info.max, shape, endpoint=True)
    extremes = rng.choice(np.array([info.min, info.max]), shape)
    blocks = rng.integers(info.min, info.max, shape, endpoint=True)
    blocks[: (h + 1) // 2] = info.max
    blocks[h // 2:, : w // 2] = info.min
    samples = [uniform, extremes, blocks][: cfg["n_samples"]]
    return np.stack(samples).astype(dtype)


def _quant(detail: dict) -> tuple[np.ndarray, np.ndarray, int]:
    q = detail["quantization_parameters"]
    return (np.asarray(q["scales"], dtype=np.float32), np.asarray(q["zero_points"]),
            int(q["quantized_dimension"]))


def _scalar_quant(detail: dict) -> tuple[np.float32, int]:
    scales, zps, _ = _quant(detail)
    if scales.size != 1 or zps.size != 1:
        raise RuntimeError(f"tensor {detail['name']}: expected per-tensor quantization")
    return np.float32(scales[0]), int(zps[0])


def _options(model_bytes: bytes) -> tuple[str, Any]:
    """Builtin op name and options object of the model's single operator."""
    model = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    ops = model.subgraphs[0].operators
    if len(model.subgraphs) != 1 or len(ops) != 1:
        raise RuntimeError(f"expected exactly one operator, got {len(ops)}")
    code = model.operatorCodes[ops[0].opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return names[builtin], ops[0].builtinOptions


def _extract(cfg: dict, model_bytes: bytes, inputs: np.ndarray) -> dict[str, Any]:
    """Run the reference interpreter and collect every parameter the runtime uses."""
    op_name, opts = _options(model_bytes)
    as_groups = cfg["depthwise_as_groups"]
    if op_name != _EXPECTED_OP["depthwise_as_groups" if as_groups else cfg["op"]]:
        raise RuntimeError(f"config {cfg['id']}: got op {op_name}")
    interp = tf.lite.Interpreter(
        model_content=model_bytes, num_threads=1,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    ops = interp._get_ops_details()  # noqa: SLF001 - only public way to list the graph's ops
    if [o["op_name"] for o in ops] != [op_name]:
        raise RuntimeError(f"config {cfg['id']}: ops {[o['op_name'] for o in ops]}")
    details = {d["index"]: d for d in interp.get_tensor_details()}
    in_idx, out_idx = int(ops[0]["inputs"][0]), int(ops[0]["outputs"][0])
    dtype = np.int8 if cfg["dtype"] == "int8" else np.int16
    for idx in (in_idx, out_idx):
        if details[idx]["dtype"] != dtype:
            raise RuntimeError(f"config {cfg['id']}: tensor {idx} is {details[idx]['dtype']}")
    in_scale, in_zp = _scalar_quant(details[in_idx])
    out_scale, out_zp = _scalar_quant(details[out_idx])
    outputs = []
    for x in inputs:
        interp.set_tensor(in_idx, x[None])
        interp.invoke()
        outputs.append(interp.get_tensor(out_idx)[0].copy())
    rec: dict[str, Any] = {
        "input": inputs, "output": np.stack(outputs),
        "input_scale": in_scale, "input_zero_point": np.int32(in_zp),
        "output_scale": out_scale, "output_zero_point": np.int32(out_zp),
    }
    meta = {
        "tflite_op": op_name, "stride": [opts.strideH, opts.strideW],
        "padding": _PADDING[opts.padding],
        "fused_activation": _ACTIVATION[opts.fusedActivationFunction],
    }
    if cfg["op"] in ("maxpool", "avgpool"):
        meta["pool_size"] = [opts.filterHeight, opts.filterWidth]
        if (in_scale, in_zp) != (out_scale, out_zp):
            raise RuntimeError(f"config {cfg['id']}: pool rescales ({in_scale},{in_zp}) "
                               f"-> ({out_scale},{out_zp})")
        return rec | {"meta": meta}
    meta["dilation"] = [opts.dilationHFactor, opts.dilationWFactor]
    if cfg["op"] == "depthwise":
        meta["depth_multiplier"] = cfg["depth_multiplier"] if as_groups else opts.depthMultiplier
    w_idx = int(ops[0]["inputs"][1])
    b_idx = int(ops[0]["inputs"][2]) if len(ops[0]["inputs"]) > 2 else -1
    weights = interp.get_tensor(w_idx)
    f_scales, f_zps, qdim = _quant(details[w_idx])
    want_qdim = 3 if cfg["op"] == "depthwise" and not as_groups else 0
    if weights.dtype != np.int8 or qdim != want_qdim or np.any(f_zps != 0):
        raise RuntimeError(f"config {cfg['id']}: unexpected filter quantization")
    if f_scales.size != weights.shape[want_qdim]:
        raise RuntimeError(f"config {cfg['id']}: expected per-channel filter scales")
    if as_groups:  # grouped CONV_2D (C*M, KH, KW, 1) -> depthwise layout (1, KH, KW, C*M)
        if weights.shape[3] != 1 or weights.shape[0] != inputs.shape[-1] * meta[
                "depth_multiplier"]:
            raise RuntimeError(f"config {cfg['id']}: filter shape {weights.shape}")
        weights = weights.transpose(3, 1, 2, 0)
    rec |= {"weights": weights, "filter_scales": f_scales}
    if op_name == "CONV_2D":  # CONV_2D infers groups from the channel counts
        meta["groups"] = int(inputs.shape[-1]) // int(weights.shape[-1] if not as_groups else 1)
    if b_idx >= 0:
        rec["bias"] = interp.get_tensor(b_idx)
        want_bias = np.int32 if cfg["dtype"] == "int8" or cfg["bias_type"] == "int32" else (
            np.int64)
        if rec["bias"].dtype != want_bias:
            raise RuntimeError(f"config {cfg['id']}: bias is {rec['bias'].dtype}")
    return rec | {"meta": meta}


def _stamp() -> dict[str, str]:
    return {
        "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
        "script_version": SCRIPT_VERSION,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        "op_resolver": "BUILTIN_REF", "num_threads": "1",
    }


def generate(cfg: dict, out_dir: Path, stamp: dict[str, str]) -> Path:
    """Convert, run and save one configuration; returns the written path."""
    rng = np.random.default_rng(_seed(cfg))
    keras.utils.set_random_seed(_seed(cfg))
    model = _build_model(cfg, rng)
    model_bytes = _convert(model, cfg, rng)
    dtype = np.int8 if cfg["dtype"] == "int8" else np.int16
    rec = _extract(cfg, model_bytes, _test_inputs(cfg, rng, dtype))
    meta = {"config": cfg, "stamp": stamp, **rec.pop("meta")}
    path = out_dir / f"{cfg['id']}.npz"
    np.savez_compressed(path, meta=np.array(json.dumps(meta, sort_keys=True)), **rec)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--only", nargs="*", help="config ids to regenerate")
    args = parser.parse_args()
    ids = [c["id"] for c in CONFIGS]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate config ids")
    stamp = _stamp()
    for cfg in CONFIGS:
        if args.only and cfg["id"] not in args.only:
            continue
        path = generate(cfg, args.out, stamp)
        with np.load(path) as z:
            out = z["output"]
            info = np.iinfo(out.dtype)
            sat = np.mean((out == info.min) | (out == info.max))
        print(f"{cfg['id']:32s} {path.stat().st_size:8d} B  saturated {sat:5.1%}", flush=True)


if __name__ == "__main__":
    main()
