"""A seeded generator of random valid models for differential fuzzing (issue 19).

`random_spec(seed)` draws a list of layer specs (plain dicts, JSON-able, so a failing
case can be saved and shrunk by dropping specs); `build(spec)` turns it into a float
ONNX model (opset 13, NCHW, as PyTorch exports) plus calibration data. The layers cover
what the kernels specialize on: convolutions of every group structure (dense, depthwise,
grouped) with random kernels 1-5, strides 1-2, dilations, asymmetric pads and channel
counts 1-200 (odd and even), fused and separate activations, pools with padding and
ceil_mode, residual adds and concats (in-place and ring-buffer paths), constant
elementwise ops, explicit Pad (constant, reflect, edge), channel Split and spatial Slice,
squeeze-and-excitation gates (an activation times a broadcast activation), batch norm,
nearest and bilinear upsampling, transposed convolutions, and one of three heads: a
classifier (global pool, Gemm, Softmax), a transformer block over the pixels as tokens
(LayerNorm in the decomposed form of opset-13 exports, single-head attention with both
operands activations, softmax on the last axis, an Erf-GELU MLP, residuals, token mean)
or a recurrent layer over them (LSTM or GRU, forward or bidirectional).
Shapes stay MCU-sized (spatial <= 16) so one case runs in seconds on an emulator.
"""
from __future__ import annotations

import random

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MAX_MACS = 1_500_000  # per layer: keeps an emulated run in seconds
ACTS = ["none", "relu", "relu6", "leaky", "sigmoid", "tanh", "hardswish"]


def _channels(rng: random.Random) -> int:
    return rng.choice([1, 2, 3, 4, 5, 7, 8, 12, 16, 17, 24, 31, 32, 48, 64, 65, 96, 128, 200])


def _out_size(n: int, k: int, s: int, d: int, p0: int, p1: int, ceil: bool = False) -> int:
    span = n + p0 + p1 - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= n + p0:  # the last window must start inside the input or its left pad
        out -= 1
    return out


def random_spec(seed: int) -> dict:
    """{"input": [C, H, W], "layers": [...]} drawn from `seed`."""
    rng = random.Random(seed)
    c, h, w = rng.choice([1, 3, 4, 8, 16]), rng.randint(1, 16), rng.randint(1, 16)
    shape = [c, h, w]
    layers = []
    for _ in range(rng.randint(1, 7)):
        layer = _random_layer(rng, shape)
        if layer is None:
            continue
        new_shape = layer_shape(layer, shape)
        if new_shape is None or min(new_shape) < 1:
            continue
        layers.append(layer)
        shape = new_shape
    head = rng.choices(["none", "classifier", "transformer", "rnn"], [4, 4, 1, 1])[0]
    tokens = shape[1] * shape[2]
    if head == "classifier":
        layers.append(dict(op="head", classes=rng.choice([2, 5, 10, 12]), softmax=rng.random() < 0.5))
    elif head == "transformer" and tokens <= 64 and shape[0] <= 64:
        layers.append(dict(op="transformer", dim=rng.choice([4, 8, 12, 16]), hidden=rng.choice([8, 16, 24]),
                           classes=rng.choice([2, 5, 10])))
    elif head == "rnn" and tokens <= 64 and shape[0] <= 64:
        layers.append(dict(op="rnn", cell=rng.choice(["LSTM", "GRU"]), hidden=rng.choice([4, 8, 12, 16]),
                           direction=rng.choice(["forward", "forward", "bidirectional"]),
                           classes=rng.choice([2, 5, 10])))
    return dict(seed=seed, input=[c, h, w], layers=layers)


def _random_layer(rng: random.Random, shape) -> dict | None:
    c, h, w = shape
    kind = rng.choices(["conv", "pool", "residual", "concat", "unary", "const", "upsample", "tconv",
                        "pad", "split", "slice", "se", "batchnorm"],
                       [6, 2, 2, 1.5, 1, 1, 0.7, 0.7, 0.6, 0.6, 0.5, 0.6, 0.4])[0]
    if kind in ("conv", "residual", "concat"):
        k = rng.choice([1, 1, 3, 3, 5]) if kind == "conv" else rng.choice([1, 3])
        k = min(k, max(1, min(h, w) + 2))
        group = "dense"
        if kind == "conv" and c > 1:
            group = rng.choices(["dense", "depthwise", "grouped"], [5, 3, 1])[0]
        oc = c if group == "depthwise" else _channels(rng)
        groups = 1
        if group == "depthwise":
            groups = c
            oc = c * rng.choice([1, 1, 2])
        elif group == "grouped":
            divisors = [g for g in range(2, c + 1) if c % g == 0]
            groups = rng.choice(divisors)
            oc = groups * rng.randint(1, max(1, 64 // groups))
        if kind != "conv":  # a branch that keeps the shape: 'same' padding, stride 1
            stride, dil, pads = 1, 1, [k // 2] * 4
            oc = c if kind == "residual" else oc
            groups = 1
        else:
            stride = rng.choice([1, 1, 2])
            dil = rng.choice([1, 1, 2]) if k > 1 else 1
            pads = [rng.randint(0, k - 1) for _ in range(4)] if k > 1 else [0] * 4
        macs = oc * (c // groups) * k * k * h * w
        if macs > MAX_MACS:
            return None
        return dict(op=kind, k=k, stride=stride, dilation=dil, pads=pads, out=oc, groups=groups,
                    act=rng.choice(ACTS), bias=rng.random() < 0.85)
    if kind == "pool":
        k = rng.choice([2, 3])
        s = rng.choice([1, 2])
        pads = [rng.randint(0, k - 1) for _ in range(4)]
        ceil = rng.random() < 0.3
        op = rng.choice(["maxpool", "avgpool"])
        # opset 13 has dilated MaxPool only (AveragePool's dilations came in opset 19)
        dil = 2 if op == "maxpool" and rng.random() < 0.25 else 1
        return dict(op=op, k=k, stride=s, pads=pads, ceil=ceil, dilation=dil,
                    count_include_pad=rng.random() < 0.3)
    if kind == "unary":
        return dict(op="unary", act=rng.choice(ACTS[1:]))
    if kind == "const":
        return dict(op=rng.choice(["add_const", "mul_const"]), per_channel=rng.random() < 0.5)
    if kind == "upsample":
        if h * w * 4 > 256:
            return None
        return dict(op="upsample", mode=rng.choice(["nearest", "linear"]),
                    coords=rng.choice(["half_pixel", "align_corners", "asymmetric"]))
    if kind == "pad":
        mode = rng.choice(["constant", "reflect", "edge"])
        limit = 2 if mode != "reflect" else min(2, h - 1, w - 1)
        if limit < 1:
            return None
        return dict(op="pad", mode=mode, pads=[rng.randint(0, limit) for _ in range(4)])
    if kind == "split":
        if c < 2:
            return None
        first = rng.randint(1, c - 1)
        return dict(op="split", first=first, act=rng.choice(ACTS[1:]), conv=rng.random() < 0.5)
    if kind == "slice":
        if h < 2 and w < 2:
            return None
        h0, w0 = rng.randint(0, (h - 1) // 2), rng.randint(0, (w - 1) // 2)
        return dict(op="slice", starts=[h0, w0], ends=[rng.randint(h0 + 1, h), rng.randint(w0 + 1, w)],
                    steps=[rng.choice([1, 1, 2]), rng.choice([1, 1, 2])])
    if kind == "se":
        return dict(op="se", reduced=max(1, c // rng.choice([2, 4, 8])),
                    gate=rng.choice(["sigmoid", "hardsigmoid"]))
    if kind == "batchnorm":
        return dict(op="batchnorm")
    if h * w * 4 > 256:  # tconv
        return None
    return dict(op="tconv", k=rng.choice([2, 3]), stride=2, out=_channels(rng) % 33 + 1,
                act=rng.choice(["none", "relu"]))


def layer_shape(layer: dict, shape):
    """The [C, H, W] after `layer` (None when the layer does not fit the shape)."""
    c, h, w = shape
    op = layer["op"]
    if op == "conv":
        p = layer["pads"]
        if c % layer["groups"] or layer["out"] % layer["groups"]:
            return None
        return [layer["out"], _out_size(h, layer["k"], layer["stride"], layer["dilation"], p[0], p[2]),
                _out_size(w, layer["k"], layer["stride"], layer["dilation"], p[1], p[3])]
    if op == "residual":
        return [c, h, w]
    if op == "concat":
        return [c + layer["out"], h, w]
    if op in ("maxpool", "avgpool"):
        p, k, dil = layer["pads"], layer["k"], layer.get("dilation", 1)
        span = (k - 1) * dil + 1
        if min(p) < 0 or max(p) >= k or h + p[0] + p[2] < span or w + p[1] + p[3] < span:
            return None
        out = [_out_size(h, k, layer["stride"], dil, p[0], p[2], layer["ceil"]),
               _out_size(w, k, layer["stride"], dil, p[1], p[3], layer["ceil"])]
        for n, o_n, p0 in zip((h, w), out, p[:2]):  # every window must touch the input
            if any(not any(0 <= o * layer["stride"] - p0 + j * dil < n for j in range(k)) for o in range(o_n)):
                return None
        return [c] + out
    if op in ("unary", "add_const", "mul_const", "split", "se", "batchnorm"):
        return [c, h, w]
    if op == "pad":
        p = layer["pads"]
        if layer["mode"] == "reflect" and (max(p[0], p[2]) >= h or max(p[1], p[3]) >= w):
            return None
        return [c, h + p[0] + p[2], w + p[1] + p[3]]
    if op == "slice":
        (h0, w0), (h1, w1), (sh, sw) = layer["starts"], layer["ends"], layer["steps"]
        if h1 > h or w1 > w:
            return None
        return [c, -(-(h1 - h0) // sh), -(-(w1 - w0) // sw)]
    if op == "upsample":
        return [c, 2 * h, 2 * w]
    if op == "tconv":
        return [layer["out"], (h - 1) * 2 + layer["k"], (w - 1) * 2 + layer["k"]]
    if op in ("head", "transformer", "rnn"):
        return [layer["classes"], 1, 1]
    raise ValueError(op)


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{hint}{self.n}"

    def const(self, hint: str, array: np.ndarray) -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def node(self, op: str, inputs, **attrs) -> str:
        out = self.name(op.lower() + "_")
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def act(self, x: str, act: str) -> str:
        if act == "none":
            return x
        if act == "relu":
            return self.node("Relu", [x])
        if act == "relu6":
            return self.node("Clip", [x, self.const("lo", np.array(0.0)), self.const("hi", np.array(6.0))])
        if act == "leaky":
            return self.node("LeakyRelu", [x], alpha=0.1)
        if act == "sigmoid":
            return self.node("Sigmoid", [x])
        if act == "tanh":
            return self.node("Tanh", [x])
        if act == "hardswish":  # as PyTorch < 1.13 / PaddlePaddle export it: x * relu6(x + 3) / 6
            t = self.node("Add", [x, self.const("three", np.array(3.0))])
            t = self.node("Clip", [t, self.const("lo", np.array(0.0)), self.const("hi", np.array(6.0))])
            t = self.node("Mul", [x, t])
            return self.node("Div", [t, self.const("six", np.array(6.0))])
        raise ValueError(act)

    def conv(self, x: str, c: int, layer: dict) -> str:
        k, g, oc = layer["k"], layer["groups"], layer["out"]
        fan_in = (c // g) * k * k
        w = self.const("w", self.rng.normal(0, 1.5 / np.sqrt(fan_in), (oc, c // g, k, k)))
        inputs = [x, w] + ([self.const("b", self.rng.normal(0, 0.2, oc))] if layer["bias"] else [])
        y = self.node("Conv", inputs, kernel_shape=[k, k], strides=[layer["stride"]] * 2,
                      dilations=[layer["dilation"]] * 2,
                      pads=[layer["pads"][0], layer["pads"][1], layer["pads"][2], layer["pads"][3]], group=g)
        return self.act(y, layer["act"])


    def matmul_const(self, x: str, n_in: int, n_out: int) -> str:
        return self.node("MatMul", [x, self.const("wm", self.rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_out)))])

    def layer_norm(self, x: str, dim: int) -> str:
        """LayerNorm over the last axis as opset-13 exporters write it."""
        axes = dict(axes=[-1])
        mean = self.node("ReduceMean", [x], **axes)
        d = self.node("Sub", [x, mean])
        var = self.node("ReduceMean", [self.node("Pow", [d, self.const("two", np.array(2.0))])], **axes)
        std = self.node("Sqrt", [self.node("Add", [var, self.const("eps", np.array(1e-5))])])
        y = self.node("Div", [d, std])
        y = self.node("Mul", [y, self.const("gamma", self.rng.uniform(0.5, 1.5, dim))])
        return self.node("Add", [y, self.const("beta", self.rng.normal(0, 0.1, dim))])

    def gelu(self, x: str) -> str:
        """x * 0.5 * (1 + erf(x / sqrt(2))), as PyTorch exports nn.GELU at opset 13."""
        e = self.node("Erf", [self.node("Div", [x, self.const("sqrt2", np.array(np.sqrt(2.0)))])])
        t = self.node("Mul", [x, self.node("Add", [e, self.const("one", np.array(1.0))])])
        return self.node("Mul", [t, self.const("half", np.array(0.5))])

    def tokens(self, x: str, shape) -> str:
        """[1, C, H, W] -> [1, H*W, C]."""
        c, h, w = shape
        x = self.node("Reshape", [x, self.int_const("shape", [1, c, h * w])])
        return self.node("Transpose", [x], perm=[0, 2, 1])

    def int_const(self, hint: str, values) -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    def transformer(self, x: str, shape, layer: dict) -> str:
        c = shape[0]
        t = self.tokens(x, shape)
        d = layer["dim"]
        n = self.layer_norm(t, c)
        q, k, v = (self.matmul_const(n, c, d) for _ in range(3))
        s = self.node("MatMul", [q, self.node("Transpose", [k], perm=[0, 2, 1])])
        s = self.node("Mul", [s, self.const("scale", np.array(1 / np.sqrt(d)))])
        a = self.node("MatMul", [self.node("Softmax", [s], axis=-1), v])
        t = self.node("Add", [t, self.matmul_const(a, d, c)])
        m = self.gelu(self.matmul_const(self.layer_norm(t, c), c, layer["hidden"]))
        t = self.node("Add", [t, self.matmul_const(m, layer["hidden"], c)])
        pooled = self.node("ReduceMean", [t], axes=[1], keepdims=0)
        return self.classifier(pooled, c, layer["classes"])

    def rnn(self, x: str, shape, layer: dict) -> str:
        c = shape[0]
        seq = self.node("Transpose", [self.tokens(x, shape)], perm=[1, 0, 2])  # [T, 1, C]
        gates = 4 if layer["cell"] == "LSTM" else 3
        hidden, dirs = layer["hidden"], 2 if layer["direction"] == "bidirectional" else 1
        bound = 1 / np.sqrt(hidden)
        wx = self.const("wx", self.rng.uniform(-bound, bound, (dirs, gates * hidden, c)))
        wh = self.const("wh", self.rng.uniform(-bound, bound, (dirs, gates * hidden, hidden)))
        bias = self.const("bias", self.rng.uniform(-bound, bound, (dirs, 2 * gates * hidden)))
        outs = [self.name("rnn_y"), self.name("rnn_h")] + ([self.name("rnn_c")] if gates == 4 else [])
        self.nodes.append(helper.make_node(layer["cell"], [seq, wx, wh, bias], outs, name=outs[0],
                                           hidden_size=hidden, direction=layer["direction"]))
        last = self.node("Reshape", [outs[1], self.int_const("shape", [1, dirs * hidden])])
        return self.classifier(last, dirs * hidden, layer["classes"])

    def classifier(self, x: str, c: int, n: int) -> str:
        return self.node("Gemm", [x, self.const("fc", self.rng.normal(0, 1 / np.sqrt(c), (n, c))),
                                  self.const("fcb", self.rng.normal(0, 0.1, n))], transB=1)


def build(spec: dict) -> tuple[onnx.ModelProto, np.ndarray]:
    """(float ONNX model, calibration samples [32, C, H, W]) for a spec."""
    b = _Builder(spec["seed"])
    c, h, w = spec["input"]
    x = "x"
    shape = [c, h, w]
    for layer in spec["layers"]:
        op = layer["op"]
        if op == "conv":
            x = b.conv(x, shape[0], layer)
        elif op == "residual":
            x = b.node("Add", [x, b.conv(x, shape[0], layer)])
        elif op == "concat":
            x = b.node("Concat", [x, b.conv(x, shape[0], layer)], axis=1)
        elif op in ("maxpool", "avgpool"):
            attrs = dict(kernel_shape=[layer["k"]] * 2, strides=[layer["stride"]] * 2,
                         pads=[layer["pads"][0], layer["pads"][1], layer["pads"][2], layer["pads"][3]],
                         ceil_mode=int(layer["ceil"]))
            if layer.get("dilation", 1) != 1:
                attrs["dilations"] = [layer["dilation"]] * 2
            if op == "avgpool":
                attrs["count_include_pad"] = int(layer["count_include_pad"])
            x = b.node("MaxPool" if op == "maxpool" else "AveragePool", [x], **attrs)
        elif op == "unary":
            x = b.act(x, layer["act"])
        elif op in ("add_const", "mul_const"):
            n = shape[0] if layer["per_channel"] else 1
            v = b.rng.normal(0.1, 0.5, n) if op == "add_const" else b.rng.uniform(0.3, 1.5, n)
            k = b.const("k", v.reshape((n, 1, 1)) if layer["per_channel"] else v.reshape(()))
            x = b.node("Add" if op == "add_const" else "Mul", [x, k])
        elif op == "upsample":
            attrs = dict(mode=layer.get("mode", "nearest"))
            if attrs["mode"] == "linear":
                attrs["coordinate_transformation_mode"] = layer["coords"]
            x = b.node("Resize", [x, "", b.const("scales", np.array([1, 1, 2, 2]))], **attrs)
        elif op == "pad":
            p = layer["pads"]
            x = b.node("Pad", [x, b.int_const("pads", [0, 0, p[0], p[1], 0, 0, p[2], p[3]])], mode=layer["mode"])
        elif op == "split":
            ch = shape[0]
            parts = [b.name("split_a"), b.name("split_b")]
            b.nodes.append(helper.make_node("Split", [x, b.int_const("sizes", [layer["first"], ch - layer["first"]])],
                                            parts, name=parts[0], axis=1))
            second = b.act(parts[1], layer["act"])
            if layer["conv"]:
                second = b.conv(second, ch - layer["first"], dict(k=1, groups=1, out=ch - layer["first"], stride=1,
                                                                 dilation=1, pads=[0] * 4, act="none", bias=True))
            x = b.node("Concat", [parts[0], second], axis=1)
        elif op == "slice":
            x = b.node("Slice", [x, b.int_const("starts", layer["starts"]), b.int_const("ends", layer["ends"]),
                                 b.int_const("axes", [2, 3]), b.int_const("steps", layer["steps"])])
        elif op == "se":
            ch, r = shape[0], layer["reduced"]
            s = b.node("GlobalAveragePool", [x])
            s = b.conv(s, ch, dict(k=1, groups=1, out=r, stride=1, dilation=1, pads=[0] * 4, act="relu", bias=True))
            s = b.conv(s, r, dict(k=1, groups=1, out=ch, stride=1, dilation=1, pads=[0] * 4, act="none", bias=True))
            s = b.node("Sigmoid", [s]) if layer["gate"] == "sigmoid" else b.node("HardSigmoid", [s], alpha=1 / 6)
            x = b.node("Mul", [x, s])
        elif op == "batchnorm":
            ch = shape[0]
            x = b.node("BatchNormalization", [x, b.const("gamma", b.rng.uniform(0.5, 1.5, ch)),
                                              b.const("beta", b.rng.normal(0, 0.2, ch)),
                                              b.const("mean", b.rng.normal(0, 0.2, ch)),
                                              b.const("var", b.rng.uniform(0.5, 2.0, ch))])
        elif op == "transformer":
            x = b.transformer(x, shape, layer)
        elif op == "rnn":
            x = b.rnn(x, shape, layer)
        elif op == "tconv":
            k, oc = layer["k"], layer["out"]
            wt = b.const("wt", b.rng.normal(0, 1.0 / np.sqrt(shape[0] * k), (shape[0], oc, k, k)))
            x = b.act(b.node("ConvTranspose", [x, wt, b.const("bt", b.rng.normal(0, 0.1, oc))],
                             kernel_shape=[k, k], strides=[2, 2]), layer["act"])
        elif op == "head":
            x = b.node("GlobalAveragePool", [x])
            x = b.node("Flatten", [x], axis=1)
            n = layer["classes"]
            x = b.node("Gemm", [x, b.const("fc", b.rng.normal(0, 1 / np.sqrt(shape[0]), (n, shape[0]))),
                                b.const("fcb", b.rng.normal(0, 0.1, n))], transB=1)
            if layer["softmax"]:
                x = b.node("Softmax", [x], axis=1)
        shape = layer_shape(layer, shape)
    if x == "x":  # no layer at all: one pass-through activation
        x = b.node("Relu", [x])
    # the output's shape is left to shape inference (ceil_mode sizes are ONNX's to define)
    graph = helper.make_graph(b.nodes, f"fuzz{spec['seed']}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)  # fills the output's shape
    del model.graph.value_info[:]  # keep only what an exporter writes
    onnx.checker.check_model(model, full_check=True)
    calib = b.rng.normal(0, 1, (32, c, h, w)).astype(np.float32)
    return model, calib
