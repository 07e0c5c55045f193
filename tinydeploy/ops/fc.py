"""Fully connected (Gemm / MatMul with a constant right-hand side): weights [out][in].

Portable kernels: td_fully_connected_f32 (f32/fully_connected.c) and
td_fully_connected_s8 (s8/fully_connected_s8.c); with int4 weights td_fully_connected_s4
(s4/weights_s4.c).
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk, qmath
from ..ctext import Call
from ..ir import Graph, Int8Params, Op
from ..overflow import mac_layer
from .base import OpDef, register
from .common import act_params, act_range, clamp, s8_call, scalar_q
from .conv import S4_SOURCE, add_weights, fit_bias, int8_weights, int32_bias, macs, requantized, weight_bits


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    w = g.const(op.inputs[1]).astype(np.float32)
    y = args[0].reshape(-1, w.shape[1]) @ w.T
    if op.inputs[2]:
        y = y + g.const(op.inputs[2])
    return clamp(y.reshape(g.tensors[op.outputs[0]].shape).astype(np.float32), op)


def _layout(lay, op: Op) -> None:
    """Rows in the model's own order: the input is restored to its logical layout."""
    op.inputs[0] = lay.want(op.inputs[0], lay.ident(op.inputs[0]))
    lay.set_out(op, lay.ident(op.outputs[0]))


def _emit_f32(c, op: Op, sym: str) -> Call:
    x, w, b = op.inputs
    n_out, n_in = c.shape(w)
    rows = c.g.tensors[x].size // n_in
    params = dict(rows=rows, in_features=n_in, out_features=n_out, **act_params(op))
    return Call("td_fully_connected_f32", "f32/fully_connected.c",
                [c.ptr(x), c.ptr(w), c.ptr(b), c.ptr(op.outputs[0], False)],
                "td_fc_f32_params", params)


def _to_int8(g: Graph, op: Op) -> None:
    x, w, b = op.inputs
    in_q, out_q = scalar_q(g, x, op), scalar_q(g, op.outputs[0], op)
    bits, again = weight_bits(g, w, op), requantized(g, w, op)
    wq, ws = int8_weights(g, w, op)
    wq, ws = fit_bias(g, w, b, in_q[0], wq, ws, bits, again)
    n_out, n_in = wq.shape
    q = qmath.fc_params(in_q[0], in_q[1], ws if ws.size > 1 else ws[0], out_q[0], out_q[1],
                        act_range=act_range(op, out_q))
    q.update(rows=g.tensors[x].size // n_in, in_features=n_in, out_features=n_out)
    op.inputs = [x, add_weights(g, w + ("_s4" if bits == 4 else "_s8"), wq, bits),
                 g.add_const(b + "_s32", int32_bias(g, b, in_q[0], ws, n_out, again)) if b else ""]
    op.kind = "fully_connected_s8"
    op.int8_params = Int8Params(q)


def _golden(g: Graph, op: Op, args: list) -> np.ndarray:
    bias = g.const(op.inputs[2]) if op.inputs[2] else None
    return gk.fully_connected(args[0], g.const(op.inputs[1]), bias, op.int8_params)


def _check(g: Graph, op: Op) -> None:
    w = np.abs(np.asarray(g.const(op.inputs[1]), np.int64))
    mac_layer(g, op, w.reshape(w.shape[0], -1).sum(axis=1), op.int8_params)


def _emit_s8(c, op: Op, sym: str) -> Call:
    if c.g.int4_weights(op):
        return s8_call(c, op, sym, "td_fully_connected_s4", S4_SOURCE, "td_fc_s8_params", "xwBo")
    return s8_call(c, op, sym, "td_fully_connected_s8", "s8/fully_connected_s8.c", "td_fc_s8_params", "xwBo")


register(
    OpDef("fully_connected", _float_ref, _emit_f32, layout=_layout, to_int8=_to_int8, macs=macs),
    OpDef("fully_connected_s8", _golden, _emit_s8, check=_check, macs=macs),
)
