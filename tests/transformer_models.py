"""Small sequence and attention models built with onnx.helper, node for node as
PyTorch's exporter (torch.onnx.export, dynamo=False) writes them, so that the tests
run without torch:

- tiny_vit: patch embedding by a strided conv, class token or mean pooling,
  pre-norm blocks (LayerNorm, multi-head attention with q·kᵀ and a·v as MatMuls of
  two activations, GELU MLP), a final LayerNorm and a linear head. At opset 13 the
  LayerNorms and GELUs are decomposed as the exporter decomposes them; at opset 17
  the LayerNorms are LayerNormalization nodes.
- text_recognizer: a PaddleOCR-style recognizer: convolutions, the feature map
  reshaped to a sequence of columns, one attention block, a per-step classifier.

The weights are random (He/Xavier-like scales), so the activations have the ranges of
a trained network's in distribution, not its accuracy.
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Graph:
    """Collects nodes and initializers; names follow the exporter's '/scope/Op_output_0'."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.nodes, self.inits, self._n = rng, [], [], 0

    def const(self, name: str, value, dtype=np.float32) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def weight(self, name: str, shape, fan_in: int) -> str:
        return self.const(name, self.rng.normal(0, 1 / math.sqrt(fan_in), shape))

    def node(self, op: str, inputs, scope: str, **attrs) -> str:
        self._n += 1
        out = f"{scope}/{op}_{self._n}_output_0"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=f"{scope}/{op}_{self._n}", **attrs))
        return out

    def linear(self, x: str, d_in: int, d_out: int, scope: str) -> str:
        """nn.Linear on a [B, N, d] tensor: MatMul by the transposed weight, then Add(bias, y)."""
        w = self.weight(f"{scope}.weight_t", (d_in, d_out), d_in)
        b = self.const(f"{scope}.bias", self.rng.normal(0, 0.02, d_out))
        return self.node("Add", [b, self.node("MatMul", [x, w], scope)], scope)

    def layer_norm(self, x: str, d: int, scope: str, opset: int) -> str:
        gamma = self.const(f"{scope}.weight", 1 + self.rng.normal(0, 0.1, d))
        beta = self.const(f"{scope}.bias", self.rng.normal(0, 0.05, d))
        if opset >= 17:
            return self.node("LayerNormalization", [x, gamma, beta], scope, axis=-1, epsilon=1e-5)
        mean = self.node("ReduceMean", [x], scope, axes=[-1])
        centred = self.node("Sub", [x, mean], scope)
        sq = self.node("Pow", [centred, self.const(f"{scope}.two", 2.0)], scope)
        var = self.node("ReduceMean", [sq], scope, axes=[-1])
        std = self.node("Sqrt", [self.node("Add", [var, self.const(f"{scope}.eps", 1e-5)], scope)], scope)
        normed = self.node("Div", [centred, std], scope)
        return self.node("Add", [self.node("Mul", [normed, gamma], scope), beta], scope)

    def gelu(self, x: str, scope: str, form: str) -> str:
        c = lambda name, v: self.const(f"{scope}.{name}", v)  # noqa: E731
        if form == "erf":  # x * (erf(x / sqrt 2) + 1) * 0.5
            e = self.node("Erf", [self.node("Div", [x, c("sqrt2", math.sqrt(2))], scope)], scope)
            return self.node("Mul", [self.node("Mul", [x, self.node("Add", [e, c("one", 1.0)], scope)], scope),
                                     c("half", 0.5)], scope)
        # tanh form, as the exporter writes GELU(approximate='tanh')
        cube = self.node("Pow", [x, c("three", 3.0)], scope)
        inner = self.node("Add", [x, self.node("Mul", [cube, c("k", 0.044715)], scope)], scope)
        t = self.node("Tanh", [self.node("Mul", [inner, c("s", math.sqrt(2 / math.pi))], scope)], scope)
        half_x = self.node("Mul", [x, c("half", 0.5)], scope)
        return self.node("Mul", [half_x, self.node("Add", [t, c("one", 1.0)], scope)], scope)

    def shape_const(self, name: str, shape) -> str:
        return self.const(name, shape, np.int64)

    def attention(self, x: str, n: int, d: int, heads: int, scope: str) -> str:
        hd = d // heads
        qkv = self.linear(x, d, 3 * d, f"{scope}/qkv")
        qkv = self.node("Reshape", [qkv, self.shape_const(f"{scope}.qkv_shape", [1, n, 3, heads, hd])], scope)
        qkv = self.node("Transpose", [qkv], scope, perm=[2, 0, 3, 1, 4])
        q, k, v = (self.node("Gather", [qkv, self.const(f"{scope}.idx{i}", i, np.int64)], scope, axis=0)
                   for i in range(3))
        kt = self.node("Transpose", [k], scope, perm=[0, 1, 3, 2])
        scores = self.node("Mul", [self.node("MatMul", [q, kt], scope), self.const(f"{scope}.scale", hd ** -0.5)],
                           scope)
        probs = self.node("Softmax", [scores], scope, axis=-1)
        ctx = self.node("Transpose", [self.node("MatMul", [probs, v], scope)], scope, perm=[0, 2, 1, 3])
        ctx = self.node("Reshape", [ctx, self.shape_const(f"{scope}.ctx_shape", [1, n, d])], scope)
        return self.linear(ctx, d, d, f"{scope}/proj")

    def model(self, inputs, outputs, opset: int, name: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return onnx.shape_inference.infer_shapes(model)


def tiny_vit(opset: int = 13, depth: int = 4, dim: int = 64, heads: int = 4, pool: str = "cls",
             gelu: str = "erf", image: int = 32, patch: int = 4, classes: int = 10,
             seed: int = 0) -> onnx.ModelProto:
    """The ViT of issue 15: 3 x image x image, patches of patch x patch, `depth` pre-norm
    blocks of width `dim` with `heads` heads and an MLP of 2 x dim."""
    g = _Graph(np.random.default_rng(seed))
    n_patch = (image // patch) ** 2
    n = n_patch + (pool == "cls")
    x = g.node("Conv", ["image", g.weight("pe.weight", (dim, 3, patch, patch), 3 * patch * patch),
                        g.const("pe.bias", g.rng.normal(0, 0.02, dim))], "/pe",
               kernel_shape=[patch, patch], strides=[patch, patch])
    x = g.node("Reshape", [x, g.shape_const("flat_shape", [1, dim, n_patch])], "")
    x = g.node("Transpose", [x], "", perm=[0, 2, 1])
    if pool == "cls":
        x = g.node("Concat", [g.const("cls", g.rng.normal(0, 0.5, (1, 1, dim))), x], "", axis=1)
    x = g.node("Add", [x, g.const("pos", g.rng.normal(0, 0.5, (1, n, dim)))], "")
    for i in range(depth):
        s = f"/blocks.{i}"
        x = g.node("Add", [x, g.attention(g.layer_norm(x, dim, f"{s}/ln1", opset), n, dim, heads, f"{s}/attn")], s)
        h = g.linear(g.layer_norm(x, dim, f"{s}/ln2", opset), dim, 2 * dim, f"{s}/fc1")
        x = g.node("Add", [x, g.linear(g.gelu(h, f"{s}/gelu", gelu), 2 * dim, dim, f"{s}/fc2")], s)
    x = g.layer_norm(x, dim, "/ln", opset)
    if pool == "cls":
        x = g.node("Gather", [x, g.const("first", 0, np.int64)], "", axis=1)
    else:
        x = g.node("ReduceMean", [x], "", axes=[1], keepdims=0)
    w = g.weight("head.weight", (classes, dim), dim)
    b = g.const("head.bias", np.zeros(classes))
    g.nodes.append(helper.make_node("Gemm", [x, w, b], ["logits"], name="/head/Gemm", transB=1))
    return g.model([helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, image, image])],
                   [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])], opset,
                   f"tiny_vit_{pool}_{gelu}")


def text_recognizer(opset: int = 13, height: int = 8, width: int = 32, channels: int = 32,
                    classes: int = 37, seed: int = 0) -> onnx.ModelProto:
    """PaddleOCR-style recognizer on a 1 x height x width text line: two conv stages,
    the map pooled to height 1 and read as a sequence of width/4 columns, one
    attention block (MatMuls of two activations), a per-column classifier."""
    g = _Graph(np.random.default_rng(seed))
    x, c_in = "line", 1
    for i, (c, stride) in enumerate([(channels // 2, 2), (channels, 2)]):
        x = g.node("Conv", [x, g.weight(f"conv{i}.weight", (c, c_in, 3, 3), c_in * 9),
                            g.const(f"conv{i}.bias", g.rng.normal(0, 0.02, c))], f"/conv{i}",
                   kernel_shape=[3, 3], strides=[stride, stride], pads=[1, 1, 1, 1])
        x = g.node("Relu", [x], f"/conv{i}")
        c_in = c
    h, w = height // 4, width // 4
    x = g.node("AveragePool", [x], "/pool", kernel_shape=[h, 1], strides=[h, 1])       # [1, C, 1, W]
    x = g.node("Squeeze", [x, g.shape_const("squeeze_axes", [2])], "/seq")             # [1, C, W]
    x = g.node("Transpose", [x], "/seq", perm=[0, 2, 1])                               # [1, W, C]
    x = g.node("Add", [x, g.attention(g.layer_norm(x, channels, "/ln", opset), w, channels, 2, "/attn")], "")
    w_cls = g.weight("cls.weight_t", (channels, classes), channels)
    b_cls = g.const("cls.bias", np.zeros(classes))
    y = g.node("Add", [g.node("MatMul", [x, w_cls], "/cls"), b_cls], "/cls")
    g.nodes.append(helper.make_node("Softmax", [y], ["probs"], name="/cls/Softmax", axis=-1))
    return g.model([helper.make_tensor_value_info("line", TensorProto.FLOAT, [1, 1, height, width])],
                   [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, w, classes])], opset,
                   "text_recognizer")
