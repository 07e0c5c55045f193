"""Fuzzing the front end: mutated ONNX files compile or fail with one clean message.

Valid seed models (the bundled digits CNN, small float models that use every
supported op, a hand-built QDQ int8 model, MLPerf KWS) are mutated by
hypothesis: raw bytes, protobuf fields, shapes, attributes (values and
types), data types, initializer sizes and data, dangling names, cycles,
duplicate producers, graph inputs/outputs, opsets, quantization parameters.
Every case runs `tinydeploy.api.compile` in a worker process (10 s limit,
bounded memory) and must end in success or a TinydeployError with a
non-empty message: never another exception, a crash of the process or a hang.

CI runs 500 cases (plus a few through the CLI); a longer campaign:
    TINYDEPLOY_FUZZ_CASES=10000 .venv/bin/python -m pytest -q -s tests/test_fuzz.py
Other knobs: TINYDEPLOY_FUZZ_SEED (a different deterministic stream),
TINYDEPLOY_FUZZ_OUT (directory that keeps every failing model and a summary).
"""
from __future__ import annotations

import collections
import json
import math
import multiprocessing
import os
import re
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper

from conftest import EXAMPLES, MODELS, cli

CASES = int(os.environ.get("TINYDEPLOY_FUZZ_CASES", "500"))
SEED = int(os.environ.get("TINYDEPLOY_FUZZ_SEED", "20240508"))
CASE_TIMEOUT = 10.0
MEMORY_LIMIT = 4 << 30


# --------------------------------------------------------------------------
# Seed models
# --------------------------------------------------------------------------
def _c(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def _rng_w(shape, seed_=0, scale=0.5):
    return (np.random.default_rng(seed_).standard_normal(shape) * scale).astype(np.float32)


def seed_ops_float() -> onnx.ModelProto:
    """Conv, depthwise conv, pools, element-wise ops, concat, pad, Gemm, MatMul, softmax."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"], name="relu1"),
        n("Add", ["r1", "k_add"], ["a1"], name="add1"),
        n("Mul", ["a1", "k_mul"], ["m1"], name="mul1"),
        n("Clip", ["m1", "k_lo", "k_hi"], ["cl"], name="clip1"),
        n("MaxPool", ["cl"], ["p1"], name="maxpool", kernel_shape=[2, 2], strides=[2, 2]),
        n("AveragePool", ["p1"], ["p2"], name="avgpool", kernel_shape=[2, 2], strides=[1, 1]),
        n("LeakyRelu", ["p2"], ["lr"], name="leaky", alpha=0.1),
        n("Concat", ["lr", "lr"], ["cat"], name="concat", axis=1),
        n("Pad", ["cat", "k_pads"], ["pd"], name="pad", mode="constant"),
        n("Sigmoid", ["pd"], ["sg"], name="sigmoid"),
        n("Conv", ["sg", "w_dw"], ["dw"], name="dwconv", group=16, kernel_shape=[3, 3]),
        n("HardSwish", ["dw"], ["hs"], name="hswish"),
        n("GlobalAveragePool", ["hs"], ["gp"], name="gap"),
        n("Flatten", ["gp"], ["fl"], name="flatten"),
        n("Gemm", ["fl", "w_fc", "b_fc"], ["g1"], name="fc", transB=1),
        n("Tanh", ["g1"], ["th"], name="tanh"),
        n("MatMul", ["th", "w_mm"], ["mm"], name="matmul"),
        n("Softmax", ["mm"], ["y"], name="softmax"),
    ]
    inits = [_c("w1", _rng_w((8, 4, 3, 3), 1)), _c("b1", _rng_w((8,), 2)),
             _c("k_add", _rng_w((1, 8, 1, 1), 3)), _c("k_mul", np.float32(0.7)),
             _c("k_lo", np.float32(0.0)), _c("k_hi", np.float32(6.0)),
             _c("k_pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
             _c("w_dw", _rng_w((16, 1, 3, 3), 4)), _c("w_fc", _rng_w((10, 16), 5)),
             _c("b_fc", _rng_w((10,), 6)), _c("w_mm", _rng_w((10, 6), 7))]
    g = helper.make_graph(nodes, "ops_float", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])


def seed_ops_float2() -> onnx.ModelProto:
    """Transpose, unary math, Sub/Div/Max/Min, Identity/Dropout/Cast, ReduceMean, Squeeze, Reshape."""
    n = helper.make_node
    nodes = [
        n("Transpose", ["x"], ["t"], name="to_nhwc", perm=[0, 2, 3, 1]),
        n("Abs", ["t"], ["ab"], name="abs"), n("Sqrt", ["ab"], ["sq"], name="sqrt"),
        n("Neg", ["sq"], ["ng"], name="neg"), n("Exp", ["ng"], ["ex"], name="exp"),
        n("HardSigmoid", ["ex"], ["hsg"], name="hsig", alpha=0.3, beta=0.4),
        n("Sub", ["hsg", "k1"], ["sb"], name="sub"), n("Div", ["sb", "k2"], ["dv"], name="div"),
        n("Max", ["dv", "k3"], ["mx"], name="max"), n("Min", ["mx", "k4"], ["mn"], name="min"),
        n("Identity", ["mn"], ["idn"], name="identity"), n("Dropout", ["idn"], ["dr"], name="dropout"),
        n("Cast", ["dr"], ["cs"], name="cast", to=TensorProto.FLOAT),
        n("Transpose", ["cs"], ["tb"], name="to_nchw", perm=[0, 3, 1, 2]),
        n("ReduceMean", ["tb"], ["rm"], name="mean", axes=[2, 3], keepdims=1),
        n("Squeeze", ["rm", "k_axes"], ["sqz"], name="squeeze"),
        n("Unsqueeze", ["sqz", "k_ax2"], ["usq"], name="unsqueeze"),
        n("Reshape", ["usq", "k_shape"], ["y"], name="reshape"),
    ]
    inits = [_c("k1", _rng_w((3,), 8)), _c("k2", np.float32(2.0)), _c("k3", np.float32(-0.5)),
             _c("k4", np.float32(0.9)), _c("k_axes", np.array([2, 3], np.int64)),
             _c("k_ax2", np.array([2], np.int64)), _c("k_shape", np.array([1, 3], np.int64))]
    g = helper.make_graph(nodes, "ops_float2", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def seed_qdq() -> onnx.ModelProto:
    """A pre-quantized (QDQ) int8 model: conv, residual add, mul, pool, FC, softmax."""
    n = helper.make_node
    rng = np.random.default_rng(11)
    sx, sw = np.float32(0.05), (rng.uniform(0.005, 0.02, 4)).astype(np.float32)
    nodes = []

    def qdq(src, dst, scale, zp):
        nodes.append(n("QuantizeLinear", [src, scale, zp], [dst + "_q"], name=dst + "_quant"))
        nodes.append(n("DequantizeLinear", [dst + "_q", scale, zp], [dst], name=dst + "_dequant"))

    qdq("x", "xq", "s_x", "z_x")
    nodes += [n("DequantizeLinear", ["w_q", "s_w", "z_w"], ["w"], name="w_dq", axis=0),
              n("DequantizeLinear", ["b_q", "s_b", "z_b"], ["b"], name="b_dq", axis=0),
              n("Conv", ["xq", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
              n("Relu", ["c"], ["r"], name="relu")]
    qdq("r", "rq", "s_r", "z_r")
    nodes.append(n("Add", ["rq", "rq"], ["ad"], name="residual_add"))
    qdq("ad", "adq", "s_a", "z_a")
    nodes.append(n("Mul", ["adq", "rq"], ["ml"], name="mul"))
    qdq("ml", "mlq", "s_m", "z_m")
    nodes.append(n("MaxPool", ["mlq"], ["mp"], name="pool", kernel_shape=[2, 2], strides=[2, 2]))
    qdq("mp", "mpq", "s_m", "z_m")
    nodes.append(n("GlobalAveragePool", ["mpq"], ["gp"], name="gap"))
    qdq("gp", "gpq", "s_g", "z_g")
    nodes += [n("Flatten", ["gpq"], ["fl"], name="flatten"),
              n("DequantizeLinear", ["wf_q", "s_wf", "z_wf"], ["wf"], name="wf_dq"),
              n("Gemm", ["fl", "wf"], ["fc"], name="fc", transB=1)]
    qdq("fc", "fcq", "s_f", "z_f")
    nodes.append(n("Softmax", ["fcq"], ["sm"], name="softmax"))
    qdq("sm", "y", "s_y", "z_y")
    i8 = lambda v: np.array(v, np.int8)  # noqa: E731
    inits = [_c("s_x", sx), _c("z_x", i8(-3)),
             _c("w_q", rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8)), _c("s_w", sw),
             _c("z_w", np.zeros(4, np.int8)),
             _c("b_q", rng.integers(-500, 500, 4).astype(np.int32)), _c("s_b", (sx * sw).astype(np.float32)),
             _c("z_b", np.zeros(4, np.int32)),
             _c("s_r", np.float32(0.04)), _c("z_r", i8(-128)), _c("s_a", np.float32(0.08)), _c("z_a", i8(-128)),
             _c("s_m", np.float32(0.1)), _c("z_m", i8(-100)), _c("s_g", np.float32(0.1)), _c("z_g", i8(-90)),
             _c("wf_q", rng.integers(-127, 128, (5, 4)).astype(np.int8)), _c("s_wf", np.float32(0.01)),
             _c("z_wf", i8(0)), _c("s_f", np.float32(0.02)), _c("z_f", i8(5)),
             _c("s_y", np.float32(1 / 256)), _c("z_y", i8(-128))]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _calib(shape):
    return np.random.default_rng(0).uniform(-1, 1, (3,) + tuple(shape[1:])).astype(np.float32)


# (name, serialized model, kind, input shape): "float" seeds compile both as float32 and as
# calibrated int8, "float32" ones as float32 only, "int8" (QDQ) ones as int8.
SEEDS = [
    ("digits", (EXAMPLES / "digits" / "digits_cnn.onnx").read_bytes(), "float", [1, 1, 8, 8]),
    ("ops_float", seed_ops_float().SerializeToString(), "float", [1, 4, 6, 6]),
    ("ops_float2", seed_ops_float2().SerializeToString(), "float32", [1, 3, 4, 4]),  # sub/div...: no int8
    ("qdq", seed_qdq().SerializeToString(), "int8", None),
]
if (MODELS / "kws" / "int8_qdq.onnx").exists():
    SEEDS.append(("kws", (MODELS / "kws" / "int8_qdq.onnx").read_bytes(), "int8", None))


# --------------------------------------------------------------------------
# Mutations (each takes the hypothesis `data`, and a ModelProto to edit in place)
# --------------------------------------------------------------------------
SUPPORTED = ["Conv", "Gemm", "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean",
             "Add", "Sub", "Mul", "Div", "Max", "Min", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh",
             "HardSigmoid", "HardSwish", "Exp", "Neg", "Abs", "Sqrt", "Softmax", "Concat", "Pad",
             "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "BatchNormalization",
             "Identity", "Dropout", "Cast", "DequantizeLinear", "QuantizeLinear", "Pow", "Elu", "Softplus"]
OTHER_OPS = ["Erf", "Loop", "If", "Shape", "Gather", "Slice", "Split", "Resize", "ConvTranspose",
             "Constant", "", "NotAnOp", "Conv\x00", "ÄÖÜ"]
DIM_VALUES = [0, -1, -7, 1, 2, 3, 5, 17, 1000, 65536, 1 << 20, (1 << 31) - 1, 1 << 31, 1 << 40, (1 << 62)]
INTS = [0, 1, -1, 2, 3, -2, 7, 100, -100, 1 << 31, -(1 << 31), 1 << 40, 1 << 62]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-30, 1e30, -1e30, 3.4e38, float("inf"), float("-inf"), float("nan")]
ATTR_NAMES = ["axis", "axes", "group", "strides", "kernel_shape", "pads", "dilations", "perm", "to",
              "alpha", "beta", "auto_pad", "ceil_mode", "count_include_pad", "keepdims", "transA",
              "transB", "epsilon", "mode", "value", "min", "max", "storage_order", "allowzero", "zzz"]
DTYPES = list(range(0, 29)) + [29, 99, 12345]


def _names(model) -> list:
    g = model.graph
    names = [i.name for i in g.input] + [i.name for i in g.initializer]
    for node in g.node:
        names += list(node.output)
    return names or ["x"]


def _pick(data, seq, label):
    seq = list(seq)
    return seq[data.draw(st.integers(0, len(seq) - 1), label=label)] if seq else None


def _random_attr_value(data, name):
    kind = data.draw(st.sampled_from(["int", "ints", "float", "floats", "string", "tensor", "empty_ints"]),
                     label="attr kind")
    if kind == "int":
        return helper.make_attribute(name, data.draw(st.sampled_from(INTS)))
    if kind == "ints":
        return helper.make_attribute(name, data.draw(st.lists(st.sampled_from(INTS), min_size=1, max_size=9)))
    if kind == "empty_ints":
        a = onnx.AttributeProto(name=name, type=onnx.AttributeProto.INTS)
        return a
    if kind == "float":
        return helper.make_attribute(name, data.draw(st.sampled_from(FLOATS)))
    if kind == "floats":
        return helper.make_attribute(name, data.draw(st.lists(st.sampled_from(FLOATS), min_size=1, max_size=4)))
    if kind == "string":
        return helper.make_attribute(name, data.draw(st.sampled_from(
            [b"SAME_UPPER", b"SAME_LOWER", b"VALID", b"NOTSET", b"reflect", b"edge", b"wrap", b"", b"\xff\xfe"])))
    return helper.make_attribute(name, _c(name, np.array(data.draw(st.sampled_from(INTS[:8])), np.int64)))


def m_attribute(data, model):
    nodes = list(model.graph.node)
    if not nodes:
        return
    node = _pick(data, nodes, "node")
    action = data.draw(st.sampled_from(["change", "retype", "delete", "add", "tweak", "tweak", "tweak"]),
                       label="attr action")
    attrs = list(node.attribute)
    if action == "delete" and attrs:
        del node.attribute[data.draw(st.integers(0, len(attrs) - 1), label="attr index")]
    elif action == "add" or not attrs:
        name = data.draw(st.sampled_from(ATTR_NAMES), label="attr name")
        keep = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend(keep + [_random_attr_value(data, name)])
    elif action == "retype":
        i = data.draw(st.integers(0, len(attrs) - 1), label="attr index")
        node.attribute[i].CopyFrom(_random_attr_value(data, attrs[i].name))
    elif action == "tweak":  # a small change of a valid value
        i = data.draw(st.integers(0, len(attrs) - 1), label="attr index")
        a = node.attribute[i]
        if a.type == onnx.AttributeProto.INTS and a.ints:
            j = data.draw(st.integers(0, len(a.ints) - 1), label="element")
            a.ints[j] = data.draw(st.sampled_from([0, -1, a.ints[j] + 1, a.ints[j] - 1, a.ints[j] * 3, 2, 1 << 40]))
        elif a.type == onnx.AttributeProto.INT:
            a.i = data.draw(st.sampled_from([0, -1, a.i + 1, -a.i, a.i * 5, 1 << 40]))
        elif a.type == onnx.AttributeProto.FLOAT:
            a.f = data.draw(st.sampled_from(FLOATS))
        else:
            node.attribute[i].CopyFrom(_random_attr_value(data, a.name))
    else:
        i = data.draw(st.integers(0, len(attrs) - 1), label="attr index")
        node.attribute[i].CopyFrom(_random_attr_value(data, attrs[i].name))


def m_op_type(data, model):
    if model.graph.node:
        node = _pick(data, model.graph.node, "node")
        node.op_type = data.draw(st.sampled_from(SUPPORTED + OTHER_OPS), label="op type")
        if data.draw(st.booleans(), label="domain"):
            node.domain = data.draw(st.sampled_from(["", "ai.onnx", "com.microsoft", "ai.onnx.ml", "x"]))


def m_rewire(data, model):
    """Dangling names, self loops, cycles, empty names, extra or missing inputs."""
    nodes = list(model.graph.node)
    if not nodes:
        return
    i = data.draw(st.integers(0, len(nodes) - 1), label="node index")
    node = nodes[i]
    action = data.draw(st.sampled_from(["dangling", "self", "cycle", "other", "empty", "drop", "extra",
                                        "out_dup", "out_rename", "out_input"]), label="rewire")
    later = [o for n in nodes[i:] for o in n.output]
    if action in ("dangling", "self", "cycle", "other", "empty") and node.input:
        j = data.draw(st.integers(0, len(node.input) - 1), label="input index")
        node.input[j] = {"dangling": "no_such_tensor", "self": node.output[0] if node.output else "",
                         "cycle": _pick(data, later, "later") or "", "empty": "",
                         "other": _pick(data, _names(model), "name")}[action]
    elif action == "drop" and node.input:
        del node.input[-1]
    elif action == "extra":
        node.input.append(_pick(data, _names(model), "name"))
    elif action == "out_dup" and node.output:  # two producers of one name
        node.output[0] = _pick(data, _names(model), "name")
    elif action == "out_rename" and node.output:
        node.output[0] = data.draw(st.sampled_from(["renamed", "", "y", "x"]), label="new name")
    elif action == "out_input" and node.output:
        node.output.append(_pick(data, _names(model), "name"))


def m_nodes(data, model):
    nodes = list(model.graph.node)
    if not nodes:
        return
    action = data.draw(st.sampled_from(["delete", "duplicate", "shuffle", "reverse", "clear"]), label="nodes")
    if action == "delete":
        del model.graph.node[data.draw(st.integers(0, len(nodes) - 1), label="delete index")]
    elif action == "duplicate":
        model.graph.node.append(_pick(data, nodes, "node"))
    elif action in ("shuffle", "reverse"):
        order = list(range(len(nodes)))
        if action == "reverse":
            order.reverse()
        else:
            order = data.draw(st.permutations(order), label="order")
        del model.graph.node[:]
        model.graph.node.extend([nodes[k] for k in order])
    else:
        del model.graph.node[:]


def _value_infos(model):
    g = model.graph
    return list(g.input) + list(g.output) + list(g.value_info)


def m_shape(data, model):
    vis = [v for v in _value_infos(model) if v.type.HasField("tensor_type")]
    if not vis:
        return
    vi = _pick(data, vis, "value info")
    shape = vi.type.tensor_type.shape
    action = data.draw(st.sampled_from(["dim", "param", "remove", "add", "clear", "unknown"]), label="shape")
    dims = list(shape.dim)
    if action == "dim" and dims:
        d = shape.dim[data.draw(st.integers(0, len(dims) - 1), label="axis")]
        d.dim_value = data.draw(st.sampled_from(DIM_VALUES + [2, 3, 4, 7, 8, 9, 16]), label="dim value")
    elif action == "param" and dims:
        shape.dim[data.draw(st.integers(0, len(dims) - 1), label="axis")].dim_param = "N"
    elif action == "remove" and dims:
        del shape.dim[data.draw(st.integers(0, len(dims) - 1), label="axis")]
    elif action == "add":
        shape.dim.add().dim_value = data.draw(st.sampled_from(DIM_VALUES), label="dim value")
    elif action == "clear":
        vi.type.tensor_type.ClearField("shape")
    elif action == "unknown":
        shape.dim.add()  # neither value nor param


def m_dtype(data, model):
    g = model.graph
    targets = [("vi", v) for v in _value_infos(model)] + [("init", t) for t in g.initializer]
    if not targets:
        return
    kind, obj = _pick(data, targets, "dtype target")
    new = data.draw(st.sampled_from(DTYPES), label="dtype")
    if kind == "vi":
        obj.type.tensor_type.elem_type = new
    else:
        obj.data_type = new


def m_initializer(data, model):
    inits = list(model.graph.initializer)
    if not inits:
        return
    t = _pick(data, inits, "initializer")
    action = data.draw(st.sampled_from(["truncate", "extend", "dims", "add_dim", "drop_dims", "no_data",
                                        "float_data", "external", "values", "scalar", "huge_dims",
                                        "zero_dim", "rename", "delete", "duplicate", "segment"]),
                       label="initializer")
    if action in ("truncate", "extend") and t.raw_data:
        n = len(t.raw_data)
        t.raw_data = t.raw_data[:data.draw(st.integers(0, max(0, n - 1)), label="cut")] if action == "truncate" \
            else t.raw_data + bytes(data.draw(st.integers(1, 64), label="grow"))
    elif action == "dims" and t.dims:
        t.dims[data.draw(st.integers(0, len(t.dims) - 1), label="axis")] = data.draw(st.sampled_from(DIM_VALUES))
    elif action == "add_dim":
        t.dims.append(data.draw(st.sampled_from([1, 2, 3, 0])))
    elif action == "drop_dims":
        del t.dims[:]
    elif action == "no_data":
        t.ClearField("raw_data")
        for f in ("float_data", "int32_data", "int64_data", "double_data"):
            t.ClearField(f)
    elif action == "float_data":
        t.ClearField("raw_data")
        t.float_data.extend(data.draw(st.lists(st.sampled_from(FLOATS), max_size=20), label="floats"))
    elif action == "external":
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        e = t.external_data.add()
        e.key, e.value = "location", data.draw(st.sampled_from(["weights.bin", "/etc/passwd", "../x", ""]))
    elif action == "values":
        try:
            arr = numpy_helper.to_array(t).copy() if t.data_type and t.raw_data else None
        except Exception:  # an earlier mutation broke this initializer
            arr = None
        if arr is not None and arr.size and arr.dtype.kind in "fiu":
            flat = arr.reshape(-1)
            k = data.draw(st.integers(0, flat.size - 1), label="element")
            if arr.dtype.kind == "f":
                flat[k] = data.draw(st.sampled_from(FLOATS), label="value")
            else:
                info = np.iinfo(arr.dtype)
                flat[k] = data.draw(st.sampled_from([info.min, info.max, 0, -1 if info.min < 0 else 1]))
            t.CopyFrom(numpy_helper.from_array(arr, t.name))
    elif action == "scalar":
        t.CopyFrom(numpy_helper.from_array(np.array(data.draw(st.sampled_from(FLOATS)), np.float32), t.name))
    elif action == "huge_dims":
        del t.dims[:]
        t.dims.extend([1 << 20, 1 << 20, 1 << 10])
    elif action == "zero_dim":
        t.CopyFrom(numpy_helper.from_array(np.zeros((0,) + tuple(t.dims[1:]), np.float32), t.name))
    elif action == "rename":
        t.name = data.draw(st.sampled_from(["x", "y", "", "renamed", _pick(data, _names(model), "name")]))
    elif action == "delete":
        model.graph.initializer.remove(t)
    elif action == "duplicate":
        model.graph.initializer.append(t)
    elif action == "segment":
        t.segment.begin, t.segment.end = 0, 1


def m_io(data, model):
    g = model.graph
    action = data.draw(st.sampled_from(["drop_input", "drop_output", "add_input", "add_output",
                                        "output_is_input", "output_is_init", "dup_output", "input_is_init",
                                        "rename_input"]), label="io")
    if action == "drop_input" and g.input:
        del g.input[0]
    elif action == "drop_output" and g.output:
        del g.output[0]
    elif action == "add_input":
        g.input.append(helper.make_tensor_value_info(
            data.draw(st.sampled_from(["x2", "x", "y"]), label="name"), TensorProto.FLOAT, [1, 3]))
    elif action == "add_output":
        g.output.append(helper.make_tensor_value_info(_pick(data, _names(model), "name"), TensorProto.FLOAT, None))
    elif action == "output_is_input" and g.output and g.input:
        g.output[0].name = g.input[0].name
    elif action == "output_is_init" and g.output and g.initializer:
        g.output[0].name = _pick(data, g.initializer, "initializer").name
    elif action == "dup_output" and g.output:
        g.output.append(g.output[0])
    elif action == "input_is_init" and g.input and g.initializer:
        g.input[0].name = _pick(data, g.initializer, "initializer").name
    elif action == "rename_input" and g.input:
        g.input[0].name = data.draw(st.sampled_from(["", "renamed", "y"]))


def m_opset(data, model):
    action = data.draw(st.sampled_from(["version", "domain", "clear", "dup", "ir"]), label="opset")
    if action == "version" and model.opset_import:
        model.opset_import[0].version = data.draw(st.sampled_from([0, 1, 7, 10, 11, 12, 15, 17, 18, 19, 21, 22,
                                                                   23, 100, 1 << 40, -1]))
    elif action == "domain" and model.opset_import:
        model.opset_import[0].domain = data.draw(st.sampled_from(["com.microsoft", "ai.onnx", "xyz"]))
    elif action == "clear":
        del model.opset_import[:]
    elif action == "dup":
        model.opset_import.append(helper.make_opsetid("", 9))
    else:
        model.ir_version = data.draw(st.sampled_from([0, 1, 3, 7, 10, 11, 100, -1]))


def m_quant(data, model):
    """Scales and zero points of QDQ nodes: zero, negative, non-finite, huge, per-channel, wrong types."""
    qnodes = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    inits = {t.name: t for t in model.graph.initializer}
    if not qnodes:
        return m_initializer(data, model)
    node = _pick(data, qnodes, "qdq node")
    which = data.draw(st.sampled_from([1, 2]), label="scale or zero point")
    if len(node.input) <= which or node.input[which] not in inits:
        return
    t = inits[node.input[which]]
    if which == 1:
        value = data.draw(st.sampled_from([0.0, -0.1, float("nan"), float("inf"), 1e-30, 1e30, 1e-45,
                                           3e38, 1.0, 256.0]), label="scale")
        shape = data.draw(st.sampled_from([(), (1,), (3,), (2, 2)]), label="scale shape")
        t.CopyFrom(numpy_helper.from_array(np.full(shape, value, np.float32), t.name))
    else:
        dtype = data.draw(st.sampled_from([np.int8, np.uint8, np.int16, np.int32, np.float32]), label="zp dtype")
        info = np.iinfo(dtype) if dtype != np.float32 else None
        value = data.draw(st.sampled_from([0, 1, -1, 127, -128, 255] if info is None else
                                          [0, int(info.min), int(info.max)]), label="zp")
        shape = data.draw(st.sampled_from([(), (1,), (4,)]), label="zp shape")
        t.CopyFrom(numpy_helper.from_array(np.full(shape, value, dtype), t.name))
    if data.draw(st.booleans(), label="axis"):
        node.attribute.append(helper.make_attribute("axis", data.draw(st.sampled_from([0, 1, 3, -1, 7]))))


def m_constant_node(data, model):
    """Replace an initializer by a Constant node (possibly broken)."""
    inits = list(model.graph.initializer)
    if not inits:
        return
    t = _pick(data, inits, "initializer")
    model.graph.initializer.remove(t)
    kind = data.draw(st.sampled_from(["value", "value_float", "value_ints", "none", "two"]), label="constant")
    attrs = {"value": {"value": t}, "value_float": {"value_float": 1.5}, "value_ints": {"value_ints": [1, 2]},
             "none": {}, "two": {"value": t, "value_float": 2.0}}[kind]
    model.graph.node.insert(0, helper.make_node("Constant", [], [t.name], name="const_" + t.name, **attrs))


def _shapes_of(model) -> dict:
    """Static shapes of float tensors (graph inputs and node outputs), by ONNX shape inference."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        return {}
    out = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        tt = vi.type.tensor_type
        if tt.elem_type == TensorProto.FLOAT and tt.HasField("shape") and len(tt.shape.dim) and \
                all(d.HasField("dim_value") and d.dim_value > 0 for d in tt.shape.dim):
            out[vi.name] = [d.dim_value for d in tt.shape.dim]
    out = {k: v for k, v in out.items() if math.prod(v) <= 1 << 20}  # (the inserted constants stay small)
    consts = {t.name for t in model.graph.initializer}
    for node in model.graph.node:  # values computed from constants only are folded away
        if all(i in consts for i in node.input if i):
            consts.update(node.output)
    return {k: v for k, v in out.items() if k not in consts}


_UNARY_INSERT = ["Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Sqrt", "LeakyRelu", "HardSigmoid",
                 "HardSwish", "Identity", "Dropout", "Clip"]  # (HardSwish: opset >= 14)
_INSERT_KINDS = _UNARY_INSERT + ["Softmax", "Transpose", "Reshape", "Flatten", "Binary", "BinarySelf",
                                 "Concat", "Pad", "ReduceMean", "Pool", "GlobalAveragePool", "Conv", "Gemm",
                                 "MatMul", "BatchNormalization", "Squeeze", "Unsqueeze", "QDQ"]


def m_insert(data, model):
    """Insert a new (mostly valid) node after a tensor of known shape: reaches the deep stages."""
    shapes = _shapes_of(model)
    if not shapes:
        return m_attribute(data, model)
    t = _pick(data, sorted(shapes), "tensor")
    shape = shapes[t]
    r = len(shape)
    kind = data.draw(st.sampled_from(_INSERT_KINDS), label="insert kind")
    k = len(model.graph.node)
    out = f"ins{k}_{kind}"
    inits, nodes, attrs, inputs = [], [], {}, [t]
    rng = np.random.default_rng(data.draw(st.integers(0, 1000), label="weights seed"))
    small = st.integers(1, 3)

    def const(name, arr):
        inits.append(_c(f"{out}_{name}", arr))
        return f"{out}_{name}"

    op = kind
    if kind == "HardSwish" and model.opset_import and model.opset_import[0].version < 14:
        model.opset_import[0].version = 14
    if kind in _UNARY_INSERT:
        if kind == "LeakyRelu":
            attrs["alpha"] = data.draw(st.sampled_from([0.01, 0.2, -0.5, 3.0]))
        elif kind == "HardSigmoid":
            attrs["alpha"], attrs["beta"] = 0.2, data.draw(st.sampled_from([0.5, 0.0, 1.5]))
        elif kind == "Clip":
            lo = data.draw(st.sampled_from([None, 0.0, -1.0, -6.0, 2.0]), label="clip min")
            hi = data.draw(st.sampled_from([None, 6.0, 1.0, 0.5, -2.0]), label="clip max")
            inputs += [const("lo", np.float32(lo)) if lo is not None else "",
                       const("hi", np.float32(hi)) if hi is not None else ""]
            while inputs and not inputs[-1]:
                inputs.pop()
    elif kind == "Softmax":
        attrs["axis"] = data.draw(st.integers(-r, r - 1), label="axis")
    elif kind == "Transpose":
        attrs["perm"] = list(data.draw(st.permutations(range(r)), label="perm"))
    elif kind == "Reshape":
        n = int(np.prod(shape))
        target = data.draw(st.sampled_from([[1, -1], [-1], [n], list(reversed(shape)), [1, n, 1, 1], [n, 1],
                                            [0, -1], [2, -1]]), label="target shape")
        inputs.append(const("shape", np.array(target, np.int64)))
    elif kind == "Flatten":
        attrs["axis"] = data.draw(st.integers(0, r), label="axis")
    elif kind == "Binary":
        op = data.draw(st.sampled_from(["Add", "Mul", "Sub", "Div", "Max", "Min"]), label="binary op")
        keep = data.draw(st.lists(st.booleans(), min_size=r, max_size=r), label="broadcast dims")
        cshape = [d if kp else 1 for d, kp in zip(shape, keep)]
        cshape = cshape[data.draw(st.integers(0, r), label="drop leading"):]
        inputs.append(const("k", (rng.standard_normal(cshape) + (2.0 if op == "Div" else 0.0)).astype(np.float32)))
        if data.draw(st.booleans(), label="swap"):
            inputs.reverse()
    elif kind == "BinarySelf":
        op = data.draw(st.sampled_from(["Add", "Mul", "Max"]), label="binary op")
        inputs.append(t)
    elif kind == "Concat":
        op = "Concat"
        inputs.append(t)
        attrs["axis"] = data.draw(st.integers(-r, r - 1), label="axis")
    elif kind == "Pad":
        pads = data.draw(st.lists(st.integers(-1, 2), min_size=2 * r, max_size=2 * r), label="pads")
        inputs.append(const("pads", np.array(pads, np.int64)))
        attrs["mode"] = data.draw(st.sampled_from(["constant", "reflect", "edge"]), label="mode")
    elif kind == "ReduceMean":
        axes = sorted(set(data.draw(st.lists(st.integers(-r, r - 1), min_size=1, max_size=r), label="axes")))
        attrs["axes"], attrs["keepdims"] = axes, data.draw(st.sampled_from([0, 1]), label="keepdims")
    elif kind == "Squeeze":
        ones = [i for i, d in enumerate(shape) if d == 1]
        axes = data.draw(st.lists(st.sampled_from(ones), min_size=1, unique=True), label="axes") if ones else [0]
        inputs.append(const("axes", np.array(axes, np.int64)))
    elif kind == "Unsqueeze":
        inputs.append(const("axes", np.array([data.draw(st.integers(-r - 1, r), label="axis")], np.int64)))
    elif kind in ("Pool", "GlobalAveragePool", "Conv") and r != 4:
        op = "Relu"
    elif kind == "Pool":
        op = data.draw(st.sampled_from(["MaxPool", "AveragePool"]), label="pool")
        kh, kw = data.draw(small, label="kh"), data.draw(small, label="kw")
        attrs.update(kernel_shape=[kh, kw], strides=[data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))],
                     pads=[data.draw(st.integers(0, max(0, kh - 1))), data.draw(st.integers(0, max(0, kw - 1)))] * 2,
                     ceil_mode=data.draw(st.sampled_from([0, 1]), label="ceil"))
        if op == "AveragePool":
            attrs["count_include_pad"] = data.draw(st.sampled_from([0, 1]), label="include pad")
    elif kind == "GlobalAveragePool":
        pass
    elif kind == "Conv":
        c = shape[1]
        group = data.draw(st.sampled_from([1, c] + ([2] if c % 2 == 0 else [])), label="group")
        m = data.draw(st.sampled_from([group, 2 * group, 8]), label="out channels")
        m = m if m % group == 0 else group
        kh = data.draw(small, label="k")
        inputs.append(const("w", rng.standard_normal((m, c // group, kh, kh)).astype(np.float32) * 0.3))
        if data.draw(st.booleans(), label="bias"):
            inputs.append(const("b", rng.standard_normal(m).astype(np.float32)))
        attrs.update(strides=[data.draw(st.integers(1, 2))] * 2, dilations=[data.draw(st.integers(1, 2))] * 2,
                     pads=[data.draw(st.integers(0, 2))] * 4, group=group)
    elif kind == "Gemm" and r == 2:
        n = data.draw(st.sampled_from([1, 3, 10]), label="n")
        trans = data.draw(st.sampled_from([0, 1]), label="transB")
        w = rng.standard_normal((shape[1], n) if not trans else (n, shape[1])).astype(np.float32)
        inputs += [const("w", w), const("b", rng.standard_normal(n).astype(np.float32))]
        attrs["transB"] = trans
    elif kind in ("Gemm", "MatMul"):
        op = "MatMul"
        inputs.append(const("w", rng.standard_normal((shape[-1], data.draw(st.sampled_from([1, 4, 7])))
                                                     ).astype(np.float32)))
    elif kind == "BatchNormalization" and r >= 2:
        c = shape[1]
        inputs += [const("s", rng.uniform(0.5, 2, c).astype(np.float32)), const("b", rng.standard_normal(c).astype(np.float32)),
                   const("m", rng.standard_normal(c).astype(np.float32)), const("v", rng.uniform(0.1, 2, c).astype(np.float32))]
    elif kind == "QDQ":
        scale = data.draw(st.sampled_from([0.01, 0.05, 0.5, 1e-4, 10.0]), label="scale")
        zp = data.draw(st.sampled_from([0, -128, 127, 10]), label="zp")
        sc, z = const("s", np.float32(scale)), const("z", np.int8(zp))
        nodes.append(helper.make_node("QuantizeLinear", [t, sc, z], [out + "_q"], name=out + "_quant"))
        op, inputs = "DequantizeLinear", [out + "_q", sc, z]
    else:
        op = "Relu"
    quantized = any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    if quantized and kind != "QDQ" and data.draw(st.integers(0, 3), label="requantize") > 0:
        # QDQ models: keep the new tensor quantized (an int8 kernel for the new op)
        scale, zp = data.draw(st.sampled_from([(0.05, -10), (1 / 256, -128), (0.2, 0), (0.01, 127)]),
                              label="output quantization")
        sc, z = const("ys", np.float32(scale)), const("yz", np.int8(zp))
        nodes.append(helper.make_node(op, inputs, [out + "_f"], name=out, **attrs))
        nodes.append(helper.make_node("QuantizeLinear", [out + "_f", sc, z], [out + "_q"], name=out + "_quant"))
        nodes.append(helper.make_node("DequantizeLinear", [out + "_q", sc, z], [out], name=out + "_dequant"))
    else:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
    # Insert after t's producer; later readers of t read the new tensor.
    g = model.graph
    pos = next((i + 1 for i, n in enumerate(g.node) if t in n.output), 0)
    for n in list(g.node)[pos:]:
        for j, name in enumerate(n.input):
            if name == t:
                n.input[j] = out
    for o in g.output:
        if o.name == t:
            o.name = out
            o.type.tensor_type.ClearField("shape")
    for offset, n in enumerate(nodes):
        g.node.insert(pos + offset, n)
    g.initializer.extend(inits)


STRUCTURED = [m_attribute, m_op_type, m_rewire, m_nodes, m_shape, m_dtype, m_initializer, m_io, m_opset,
              m_quant, m_constant_node, m_insert]
# How often each is drawn: inserted nodes and small changes of valid values reach the deep stages.
WEIGHTS = {m_insert: 8, m_attribute: 3, m_shape: 2, m_quant: 2, m_initializer: 2}
WEIGHTED = [m for m in STRUCTURED for _ in range(WEIGHTS.get(m, 1))]


def mutate_bytes(data, blob: bytes) -> bytes:
    b = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4), label="byte edits")):
        action = data.draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "dup"]), label="bytes")
        if not b:
            break
        pos = data.draw(st.integers(0, len(b) - 1), label="position")
        # Edits near the start hit the graph structure; weights are mostly further on.
        if data.draw(st.booleans(), label="early"):
            pos = pos % min(len(b), 2048)
        if action == "flip":
            b[pos] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        elif action == "set":
            b[pos] = data.draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, 0x08, 0x12, 0x1A]), label="byte")
        elif action == "truncate":
            del b[pos:]
        elif action == "insert":
            b[pos:pos] = data.draw(st.binary(min_size=1, max_size=8), label="inserted")
        elif action == "delete":
            del b[pos:pos + data.draw(st.integers(1, 16), label="length")]
        else:
            n = data.draw(st.integers(1, 64), label="length")
            b[pos:pos] = b[pos:pos + n]
    return bytes(b)


# Mostly the host; MCU targets select other kernel variants (and check flash/RAM).
TARGETS = ["host"] * 6 + ["stm32f746", "cortex-m55", "rp2040", "esp32-c3"]


def make_case(data):
    """(seed name, model bytes, compile kwargs, description of the mutations)."""
    name, blob, kind, in_shape = _pick(data, SEEDS, "seed")
    steps = []
    if data.draw(st.sampled_from(["bytes"] + ["structure"] * 9), label="bytes or structure") == "bytes":
        blob = mutate_bytes(data, blob)
        steps.append("bytes")
    else:
        model = onnx.ModelProto()
        model.ParseFromString(blob)
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            fn = _pick(data, WEIGHTED, "mutation")
            try:
                fn(data, model)
            except (ValueError, TypeError, IndexError, KeyError, OverflowError, MemoryError):
                continue  # the mutation does not apply to what earlier ones left (a bug of this test)
            steps.append(fn.__name__)
        blob = model.SerializeToString()
    kwargs = {"quantize": "float32"} if kind == "float32" else {}
    target = data.draw(st.sampled_from(TARGETS), label="target")
    if target != "host":
        kwargs["target"] = target
    if kind == "float":
        if data.draw(st.booleans(), label="int8"):
            kwargs["calib"] = {"input": _calib(in_shape)}
            kwargs["calib_method"] = data.draw(st.sampled_from(["minmax", "minmax", "percentile", "mse"]),
                                               label="calibration method")
        else:
            kwargs["quantize"] = "float32"
    if data.draw(st.sampled_from([False] * 9 + [True]), label="input shape option"):
        name_ = data.draw(st.sampled_from(["x", "input", "input_1", "nope"]), label="input name")
        dims = data.draw(st.lists(st.sampled_from([1, 2, 3, 4, 6, 8, 10, 16, 49, 1 << 16]), min_size=1,
                                  max_size=5), label="input dims")
        kwargs["input_shapes"] = {name_: dims}
    return name, blob, kwargs, steps


# --------------------------------------------------------------------------
# The worker: compiles one case at a time with a time and memory limit
# --------------------------------------------------------------------------
def _serve(conn):
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ValueError, OSError):
        pass
    from tinydeploy import api
    from tinydeploy.errors import TinydeployError
    work = Path(tempfile.mkdtemp(prefix="tinydeploy-fuzz-"))
    path = work / "model.onnx"
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        blob, kwargs = job
        path.write_bytes(blob)
        try:
            api.compile(str(path), out_dir=None, name="net", **{"target": "host", **kwargs})
            result = ("ok", "")
        except TinydeployError as exc:
            result = ("error", str(exc))
        except BaseException as exc:  # noqa: BLE001 - every other exception is a finding
            result = ("crash", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-6000:])
        conn.send(result)


class Worker:
    def __init__(self):
        self.ctx = multiprocessing.get_context("fork")
        self.proc = None
        self._start()

    def _start(self):
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_serve, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def _restart(self):
        self.proc.kill()
        self.proc.join()
        self._start()

    def run(self, blob: bytes, kwargs: dict, timeout: float = CASE_TIMEOUT):
        self.conn.send((blob, kwargs))
        if not self.conn.poll(timeout):
            self._restart()
            return "hang", f"no result after {timeout:g} s"
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            self.proc.join()
            code = self.proc.exitcode
            self._start()
            return "died", f"the compiling process died (exit code {code})"

    def close(self):
        self.conn.close()
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()


def _check_message(message: str) -> str | None:
    """A clean error: one non-empty message, no traceback, no Python repr noise."""
    if not message.strip():
        return "empty error message"
    if "Traceback" in message:
        return "traceback in the error message"
    return None


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


def test_seeds_compile(worker):
    """Every seed is valid: the fuzzer starts from models that compile."""
    for name, blob, kind, in_shape in SEEDS:
        options = {"float": [{"quantize": "float32"}, {"calib": {"input": _calib(in_shape or [1])}}],
                   "float32": [{"quantize": "float32"}], "int8": [{}]}[kind]
        for kwargs in options:
            assert worker.run(blob, kwargs, timeout=60) == ("ok", ""), name


def test_fuzz_front_end(worker, tmp_path):
    stats = collections.Counter()
    findings = []
    slowest = [0.0, ""]
    out_dir = Path(os.environ["TINYDEPLOY_FUZZ_OUT"]) if os.environ.get("TINYDEPLOY_FUZZ_OUT") else tmp_path
    out_dir.mkdir(parents=True, exist_ok=True)
    messages = collections.Counter()
    by_mutation = collections.defaultdict(collections.Counter)

    @seed(SEED)
    @settings(max_examples=CASES, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.data())
    def case(data):
        name, blob, kwargs, steps = make_case(data)
        t0 = time.monotonic()
        outcome, detail = worker.run(blob, kwargs)
        elapsed = time.monotonic() - t0
        if elapsed > slowest[0]:
            slowest[:] = [elapsed, f"{name} {steps}"]
        stats[outcome] += 1
        for step in set(steps):
            by_mutation[step][outcome] += 1
        if outcome == "error":
            problem = _check_message(detail)
            if problem is None:
                messages[re.sub(r"\S*/model\.onnx", "MODEL", detail).splitlines()[0][:70]] += 1
                return
            outcome, detail = "bad-message", f"{problem}: {detail!r}"
        elif outcome == "ok":
            return
        k = len(findings)
        (out_dir / f"finding_{k:04d}.onnx").write_bytes(blob)
        findings.append(dict(index=k, seed=name, mutations=steps, options=sorted(kwargs),
                             outcome=outcome, detail=detail))

    case()
    total = sum(stats.values())
    summary = dict(cases=total, outcomes=dict(stats), findings=len(findings),
                   slowest_seconds=round(slowest[0], 2), slowest_case=slowest[1],
                   top_errors=messages.most_common(15),
                   by_mutation={k: {o: n for o, n in v.items() if n} for k, v in sorted(by_mutation.items())})
    (out_dir / "summary.json").write_text(json.dumps(dict(summary, details=findings), indent=2))
    print(f"\nfuzz: {json.dumps(summary, indent=1)}")
    assert total >= CASES * 0.99
    assert not findings, (f"{len(findings)} of {total} cases crashed, hung or gave an unclean error "
                          f"(models in {out_dir}):\n" +
                          "\n".join(f"--- {f['seed']} {f['mutations']} {f['options']}: {f['outcome']}\n"
                                    f"{f['detail'][-1500:]}" for f in findings[:5]))


CLI_CASES = [
    ("truncated protobuf", lambda m: m.SerializeToString()[:-40]),
    ("cycle", lambda m: _edit(m, lambda g: g.node[0].input.__setitem__(0, g.node[-1].output[0]))),
    ("zero dimension", lambda m: _edit(m, lambda g: setattr(g.input[0].type.tensor_type.shape.dim[2],
                                                             "dim_value", 0))),
    ("wrong initializer size", lambda m: _edit(m, lambda g: g.initializer[0].dims.__setitem__(0, 9))),
    ("attribute of the wrong type", lambda m: _edit(m, lambda g: g.node[0].attribute.append(
        helper.make_attribute("strides", 1.5)))),
]


def _edit(model, fn):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    fn(m.graph)
    return m.SerializeToString()


@pytest.mark.parametrize("what,mutate", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_mutants_exit_2_with_one_message(tmp_path, what, mutate):
    path = tmp_path / "mutant.onnx"
    path.write_bytes(mutate(seed_ops_float()))
    proc = cli("compile", path, "-o", tmp_path / "out", "--quantize", "float32")
    assert proc.returncode == 2, (what, proc.stderr)
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "out").exists()
