"""int4 weights rounded with the calibration data (error feedback, as GPTQ does).

Rounding each int4 weight to its nearest level leaves errors that add up in the layer's
output; with 15 levels they cost several dB of model SQNR. Knowing the layer's inputs X
(rows of its input windows on calibration samples), the weights of one output channel
are rounded one input position at a time, and each rounding error is pushed onto the
positions not yet rounded, weighted by H = X^T X (Frantar et al., "GPTQ", 2022), so
that X w_q stays close to X w. The result is an ordinary set of int4 weights with
per-channel scales: it is attached to the weight tensor as quantized data (qdata, quant),
exactly as an INT4 QDQ model's weights arrive, and every later stage treats it so.

Applies to convolutions without groups and fully connected layers (one H for all output
channels); grouped and depthwise convolutions keep nearest rounding.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from . import float_ref
from .ir import Graph, Op, QuantParams
from .ops.conv import fit_bias, int8_weights, windows

DAMPING = 0.01  # of H's mean diagonal, added to it: keeps the inverse well conditioned


def _input_rows(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    """The rows the layer's weights multiply, [n, k] in the weights' order: a convolution's
    input windows (k_h, k_w, c), a fully connected layer's input rows."""
    w = g.tensors[op.inputs[1]].data
    if op.kind == "fully_connected":
        return x.reshape(-1, w.shape[1])
    _, oh, ow, _ = g.tensors[op.outputs[0]].shape
    a = op.attrs
    cols = windows(x[0], w.shape[1:3], a["strides"], a["dilations"], a["pads"], (oh, ow))
    return cols.reshape(oh * ow, -1)


def supported(g: Graph, op: Op) -> bool:
    return op.kind == "fully_connected" or (op.kind == "conv2d" and op.attrs["group"] == 1)


def gram_matrices(g: Graph, layers: list, samples: list) -> dict:
    """{op name: H = sum X^T X} over the float model's inputs of `layers` on `samples`
    ({input name: value} each)."""
    grams = {op.name: 0.0 for op in layers}
    for s in samples:
        values = float_ref.run(g, s, keep_all=True)
        for op in layers:
            rows = _input_rows(g, op, values[op.inputs[0]]).astype(np.float64)
            grams[op.name] = grams[op.name] + rows.T @ rows
    return grams


def round_int4(w: np.ndarray, scales: np.ndarray, h: np.ndarray) -> np.ndarray:
    """int4 codes [out, k] of float weights w [out, k] at per-row scales, with error feedback
    through h [k, k] (positions in order of decreasing h diagonal: the most used first)."""
    w = w.astype(np.float64).copy()
    h = h.astype(np.float64).copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += np.eye(h.shape[0]) * DAMPING * np.mean(np.diag(h))
    order = np.argsort(-np.diag(h), kind="stable")
    w, h = w[:, order], h[np.ix_(order, order)]
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper factor of H^-1
    s = scales.astype(np.float64)[:, None]
    q = np.zeros(w.shape, np.int8)
    for i in range(w.shape[1]):
        qi = np.clip(np.round(w[:, i:i + 1] / s), -7, 7)
        q[:, i] = qi[:, 0]
        err = (w[:, i:i + 1] - qi * s) / u[i, i]
        w[:, i + 1:] -= err * u[i, i + 1:][None, :]
    result = np.zeros_like(q)
    result[:, order] = q
    return result


SCALE_STEPS = np.linspace(1.0, 0.6, 9)  # tried per channel: scale * f, f in (0.6, 1]


def best_rounding(w: np.ndarray, scales: np.ndarray, h: np.ndarray) -> tuple:
    """(codes, scales): per output channel (row), the scale among scales * SCALE_STEPS and
    its error-feedback rounding whose output error (w - s q)^T H (w - s q) is least (rows are
    rounded independently, so each row takes its own best)."""
    best_q, best_s, best_e = None, None, None
    for f in SCALE_STEPS:
        s = (scales * np.float32(f)).astype(np.float32)
        q = round_int4(w, s, h)
        d = w.astype(np.float64) - q * s.astype(np.float64)[:, None]
        e = np.einsum("ij,jk,ik->i", d, h, d)
        if best_q is None:
            best_q, best_s, best_e = q, s, e
            continue
        better = e < best_e
        best_q = np.where(better[:, None], q, best_q)
        best_s, best_e = np.where(better, s, best_s), np.where(better, e, best_e)
    return best_q, best_s.astype(np.float32)


def int4_weights(g: Graph, layers: list, samples: list) -> dict:
    """{op name: (int4 codes as int8, per-channel scales)} of those `layers` this rounding
    supports (convolutions without groups, fully connected; float weights), rounded with
    the calibration samples ({input name: value} each) of the calibrated float graph g."""
    todo = [op for op in layers if supported(g, op) and g.tensors[op.inputs[1]].qdata is None]
    grams = gram_matrices(g, todo, samples)
    result = {}
    for op in todo:
        x, name, b = op.inputs
        t = g.tensors[name]
        bits_op = Op(op.kind, op.name, op.inputs, op.outputs, dict(op.attrs, weight_bits=4))
        wq, scales = int8_weights(g, name, bits_op)  # nearest rounding's per-channel scales
        _, scales = fit_bias(g, name, b, g.tensors[x].quant.scalar()[0], wq, scales, 4)
        q, scales = best_rounding(t.data.reshape(t.shape[0], -1), scales, grams[op.name])
        result[op.name] = (q.reshape(t.shape), scales)
    return result


def attach(g: Graph, rounded: dict) -> None:
    """Give the ops named in `rounded` their int4 weights as quantized data (a new constant,
    as a DequantizeLinear of INT4 data would make), for the int8 conversion to take."""
    for op in g.ops:
        if op.name not in rounded:
            continue
        q, scales = rounded[op.name]
        t = g.tensors[op.inputs[1]]
        new = g.add_const(op.inputs[1] + "_int4", t.data)
        g.tensors[new].qdata = q.astype(ml_dtypes.int4)
        g.tensors[new].quant = QuantParams(scales, np.zeros(scales.shape, np.int32), 0)
        op.inputs[1] = new
