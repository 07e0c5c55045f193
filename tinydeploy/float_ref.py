"""A numpy interpreter of the float IR (after the passes: NHWC, fused).

Used to calibrate int8 quantization (observe every tensor's range) and to
measure each layer's quantization error. Batch 1, like the generated code.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .ir import Graph, Op


def _windows(x: np.ndarray, k, strides, dilations, pads, out_hw, fill=0.0) -> np.ndarray:
    """x (H, W, C) -> (OH, OW, KH, KW, C) of the padded input's windows."""
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((pt, max(pb, 0)), (pl, max(pr, 0)), (0, 0)), constant_values=fill)
    oh, ow = out_hw
    sh, sw = strides
    dh, dw = dilations
    rows = []
    for ky in range(k[0]):
        cols = []
        for kx in range(k[1]):
            y0, x0 = ky * dh, kx * dw
            cols.append(xp[y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :])
        rows.append(np.stack(cols, axis=2))
    return np.stack(rows, axis=2)


def _clamp(y: np.ndarray, op: Op) -> np.ndarray:
    lo, hi = op.attrs.get("act", (-np.inf, np.inf))
    return np.clip(y, lo, hi) if (lo, hi) != (-np.inf, np.inf) else y


def conv2d(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    w = g.const(op.inputs[1]).astype(np.float32)
    b = g.const(op.inputs[2]) if op.inputs[2] else None
    o, kh, kw, cg = w.shape
    _, oh, ow, _ = g.tensors[op.outputs[0]].shape
    cols = _windows(x[0], (kh, kw), op.attrs["strides"], op.attrs["dilations"], op.attrs["pads"], (oh, ow))
    groups = op.attrs["group"]
    og = o // groups
    if groups == 1:
        y = cols.reshape(oh * ow, -1) @ w.reshape(o, -1).T
    elif cg == 1:  # depthwise with multiplier og
        c = x.shape[-1]
        y = np.einsum("hwyxc,cmyx->hwcm", cols, w.reshape(c, og, kh, kw)).reshape(oh * ow, o)
    else:
        parts = [cols[..., i * cg:(i + 1) * cg].reshape(oh * ow, -1) @ w[i * og:(i + 1) * og].reshape(og, -1).T
                 for i in range(groups)]
        y = np.concatenate(parts, axis=1)
    if b is not None:
        y = y + b
    return _clamp(y.reshape(1, oh, ow, o).astype(np.float32), op)


def fully_connected(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    w = g.const(op.inputs[1]).astype(np.float32)
    y = x.reshape(-1, w.shape[1]) @ w.T
    if op.inputs[2]:
        y = y + g.const(op.inputs[2])
    return _clamp(y.reshape(g.tensors[op.outputs[0]].shape).astype(np.float32), op)


def _pool(g: Graph, op: Op, x: np.ndarray, kind: str) -> np.ndarray:
    a = op.attrs
    _, oh, ow, c = g.tensors[op.outputs[0]].shape
    if kind == "max":
        cols = _windows(x[0], a["kernel"], a["strides"], (1, 1), a["pads"], (oh, ow), fill=-np.inf)
        y = cols.max(axis=(2, 3))
    else:
        cols = _windows(x[0], a["kernel"], a["strides"], (1, 1), a["pads"], (oh, ow))
        if a["count_include_pad"]:
            count = float(a["kernel"][0] * a["kernel"][1])
        else:
            inside = _windows(np.ones((x.shape[1], x.shape[2], 1), np.float32), a["kernel"], a["strides"],
                              (1, 1), a["pads"], (oh, ow))
            count = inside.sum(axis=(2, 3))
        y = cols.sum(axis=(2, 3)) / count
    return _clamp(y.reshape(1, oh, ow, c).astype(np.float32), op)


def binary(g: Graph, op: Op, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
          "max": np.maximum, "min": np.minimum}[op.attrs["op"]]
    shape = g.tensors[op.outputs[0]].shape
    a = a.reshape((1,) * (len(shape) - a.ndim) + a.shape)
    b = b.reshape((1,) * (len(shape) - b.ndim) + b.shape)
    return _clamp(fn(a, b).astype(np.float32), op)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


UNARY: dict[str, Callable] = {
    "clip": lambda op, x: np.clip(x, op.attrs["lo"], op.attrs["hi"]),
    "leaky_relu": lambda op, x: np.where(x >= 0, x, x * op.attrs["alpha"]),
    "sigmoid": lambda op, x: _sigmoid(x),
    "tanh": lambda op, x: np.tanh(x),
    "hard_sigmoid": lambda op, x: np.clip(op.attrs["alpha"] * x + op.attrs["beta"], 0, 1),
    "hard_swish": lambda op, x: x * np.clip(x / 6 + 0.5, 0, 1),
    "exp": lambda op, x: np.exp(x), "neg": lambda op, x: -x, "abs": lambda op, x: np.abs(x),
    "sqrt": lambda op, x: np.sqrt(x),
}


def evaluate(g: Graph, op: Op, args: list) -> np.ndarray:
    k = op.kind
    if k == "conv2d":
        return conv2d(g, op, args[0])
    if k == "fully_connected":
        return fully_connected(g, op, args[0])
    if k in ("max_pool", "avg_pool"):
        return _pool(g, op, args[0], k[:3])
    if k == "binary":
        return binary(g, op, args[0], args[1])
    if k in UNARY:
        return UNARY[k](op, args[0]).astype(np.float32)
    out_shape = g.tensors[op.outputs[0]].shape
    if k == "reshape":
        return args[0].reshape(out_shape)
    if k == "transpose":
        return np.ascontiguousarray(args[0].transpose(op.attrs["perm"]))
    if k == "mean":
        return args[0].mean(axis=tuple(op.attrs["axes"]), keepdims=True).reshape(out_shape)
    if k == "softmax":
        x = args[0]
        e = np.exp(x - x.max(axis=op.attrs["axis"], keepdims=True))
        return (e / e.sum(axis=op.attrs["axis"], keepdims=True)).astype(np.float32)
    if k == "concat":
        return np.concatenate(args, axis=op.attrs["axis"])
    if k == "pad":
        widths = list(zip(op.attrs["before"], op.attrs["after"]))
        mode = op.attrs["mode"]
        if mode == "constant":
            return np.pad(args[0], widths, constant_values=op.attrs["value"])
        return np.pad(args[0], widths, mode="reflect" if mode == "reflect" else "edge")
    raise NotImplementedError(f"float reference: op {k}")


def run(g: Graph, x: np.ndarray, keep_all: bool = False) -> dict:
    """One sample (with batch dim) -> {tensor name: value} (only outputs unless keep_all)."""
    values = {g.inputs[0]: x.astype(np.float32).reshape(g.tensors[g.inputs[0]].shape)}
    for op in g.ops:
        args = [values[i] if i in values else g.const(i) for i in op.inputs if i]
        values[op.outputs[0]] = evaluate(g, op, args)
    return values if keep_all else {o: values[o] for o in g.outputs}
