"""Softmax over any axis: the kernels take it innermost ([outer][depth]), the layout
pass moves it there.

int8 follows TFLite (fixed output quantization 1/256, -128). Portable kernels:
td_softmax_f32 (f32/softmax.c), td_softmax_s8 (s8/softmax_s8.c).
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk, qmath
from ..ctext import Call
from ..ir import Graph, Op
from ..overflow import fits
from .base import OpDef, register
from .common import fixed_output, s8_call, scalar_q

FIXED = (1.0 / 256, -128)


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    x, axis = args[0], op.attrs["axis"]
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def _layout(lay, op: Op) -> None:
    """The kernels take the softmax axis innermost ([outer][depth]): the input keeps its
    order if it already is, else the logical order if it is there, else the axis is moved
    last (a transpose before; the output keeps that order, transposed back where needed)."""
    x = op.inputs[0]
    perm, shape = lay.perm[x], lay.logical[x]
    axis = op.attrs["axis"]
    if any(shape[a] != 1 for a in perm[perm.index(axis) + 1:]):
        if any(d != 1 for d in shape[axis + 1:]):
            want = tuple(a for a in perm if a != axis) + (axis,)
        else:
            want = lay.ident(x)
        op.inputs[0] = x = lay.want(x, want)
        perm = lay.perm[x]
    op.attrs["axis"] = perm.index(axis)
    lay.set_out(op, perm)


def _emit_f32(c, op: Op, sym: str) -> Call:
    axis_size = c.shape(op.inputs[0])[op.attrs["axis"]]
    outer = c.g.tensors[op.inputs[0]].size // axis_size
    return Call("td_softmax_f32", "f32/softmax.c",
                [str(outer), str(axis_size), c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)])


def _to_int8(g: Graph, op: Op) -> None:
    x = op.inputs[0]
    fixed_output(g, op, FIXED)
    in_q = scalar_q(g, x, op)
    depth = g.tensors[x].shape[op.attrs["axis"]]
    q = qmath.softmax_params(in_q[0])
    q.update(outer=g.tensors[x].size // depth, depth=depth)
    op.kind, op.attrs["q"] = "softmax_s8", q


def _check(g: Graph, op: Op) -> None:
    depth = int(op.attrs["q"]["depth"])
    fits(f"the Q12.19 sum of {depth:,} exponentials", depth << 19)


register(
    OpDef("softmax", _float_ref, _emit_f32, layout=_layout, to_int8=_to_int8, quant="fixed",
          fixed_output=FIXED),
    OpDef("softmax_s8", lambda g, op, args: gk.softmax(args[0], op.attrs["q"]),
          lambda c, op, sym: s8_call(c, op, sym, "td_softmax_s8", "s8/softmax_s8.c", "td_softmax_s8_params",
                                     "xo"),
          check=_check, inplace="elementwise"),
)
