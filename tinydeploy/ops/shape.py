"""Data movement: reshape (a free alias: no code) and transpose.

After the layout pass every model Transpose is an alias (a reshape of the
same bytes); the transposes left are the ones the layout pass inserts to
change physical order. Portable kernels: td_transpose_f32 (f32/transpose.c),
td_transpose_s8 (s8/shape_s8.c), both driven by output shape and permuted
input strides.
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk
from ..ctext import MAX_DIMS, Call
from ..ir import Graph, Int8Params, Op
from .base import OpDef, register
from .common import contiguous_strides, padded, s8_call


def _unit_axes_only(a, b) -> bool:
    """Does reshaping a to b only insert or remove axes of size 1?"""
    return [d for d in a if d != 1] == [d for d in b if d != 1]


def _reshape_layout(lay, op: Op) -> None:
    """A reshape works on the logical order: restore it first, unless it only adds or
    drops unit axes (a squeeze/unsqueeze, e.g. around a 1-D convolution run as 2-D):
    then the output keeps the input's physical order of the other axes, for free."""
    x, out = op.inputs[0], op.outputs[0]
    a, b = lay.logical[x], lay.logical[out]
    if not _unit_axes_only(a, b):
        op.inputs[0] = lay.want(x, lay.ident(x))
        lay.set_out(op, lay.ident(out))
        return
    a_axes = [i for i, d in enumerate(a) if d != 1]
    b_axes = [i for i, d in enumerate(b) if d != 1]
    to_b = dict(zip(a_axes, b_axes))
    physical = [to_b[i] for i in lay.perm[x] if i in to_b]
    lay.set_out(op, tuple([i for i, d in enumerate(b) if d == 1] + physical))


def _transpose_layout(lay, op: Op) -> None:
    """Becomes an alias: the output keeps the input's bytes in a new order."""
    have = lay.perm[op.inputs[0]]
    inverse = [0] * len(op.attrs["perm"])
    for i, p in enumerate(op.attrs["perm"]):
        inverse[p] = i
    lay.set_out(op, tuple(np.array(inverse)[list(have)].tolist()))
    op.kind, op.attrs = "reshape", {}


def _emit_transpose_f32(c, op: Op, sym: str) -> Call:
    shape = c.shape(op.inputs[0])
    perm = op.attrs["perm"]
    strides = contiguous_strides(shape)
    pad = MAX_DIMS - len(shape)
    params = dict(out_shape=padded([shape[p] for p in perm]),
                  in_strides=[0] * pad + [strides[p] for p in perm])
    return Call("td_transpose_f32", "f32/transpose.c",
                [c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)], "td_transpose_params", params)


def _transpose_to_int8(g: Graph, op: Op) -> None:
    op.kind = "transpose_s8"
    op.int8_params = Int8Params(gk.transpose_geometry(g.tensors[op.inputs[0]].shape, op.attrs["perm"]))


register(
    # reshape stays "reshape" in int8 graphs: an alias of its input's bytes, no kernel
    OpDef("reshape", lambda g, op, args: args[0].reshape(g.tensors[op.outputs[0]].shape),
          layout=_reshape_layout, quant="propagates"),
    OpDef("transpose", lambda g, op, args: np.ascontiguousarray(args[0].transpose(op.attrs["perm"])),
          _emit_transpose_f32, layout=_transpose_layout, to_int8=_transpose_to_int8, quant="propagates"),
    OpDef("transpose_s8", lambda g, op, args: gk.transpose(args[0], op.int8_params),
          lambda c, op, sym: s8_call(c, op, sym, "td_transpose_s8", "s8/shape_s8.c", "td_transpose_s8_params",
                                     "xo")),
)
