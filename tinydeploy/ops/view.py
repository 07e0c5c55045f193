"""Ops that are strided views of their input: Slice/Gather, nearest upsampling,
Tile/Expand.

Such an op's output index o reads input element offset + sum_d o_d * in_strides[d]
(a stride may be 0 to repeat elements, or negative to reverse them). The transpose
kernels (td_transpose_f32, td_transpose_s8) copy exactly such a view, so these ops
need no kernels of their own: each op module gives its numpy semantics and its
geometry, and `register_view` registers the float and int8 kinds with the shared
layout rule, int8 conversion (data movement: the output keeps the input's
quantization) and emitters.
"""
from __future__ import annotations

from typing import Callable

from ..ctext import Call
from ..ir import Graph, Int8Params, Op
from .base import OpDef, register
from .common import s8_call


def register_view(kind: str, evaluate: Callable, geometry: Callable, per_axis: tuple) -> None:
    """Register `kind` and `kind`_s8.

    geometry(in_shape, out_shape, attrs, node) -> (offset, {"out_shape", "in_strides"}),
    both padded to MAX_DIMS; per_axis: the attributes holding one value per input axis,
    which follow the input's physical order through the layout pass."""
    def layout(lay, op: Op) -> None:
        perm = lay.perm[op.inputs[0]]
        for name in per_axis:
            op.attrs[name] = [op.attrs[name][a] for a in perm]
        lay.set_out(op, perm)

    def view_of(shape_of, op: Op):
        return geometry(shape_of(op.inputs[0]), shape_of(op.outputs[0]), op.attrs, op.name)

    def input_at(c, op: Op, offset: int) -> str:
        return c.ptr(op.inputs[0]) + (f" + {offset}" if offset else "")

    def emit_f32(c, op: Op, sym: str) -> Call:
        offset, params = view_of(c.shape, op)
        return Call("td_transpose_f32", "f32/transpose.c", [input_at(c, op, offset), c.ptr(op.outputs[0], False)],
                    "td_transpose_params", params)

    def to_int8(g: Graph, op: Op) -> None:
        op.kind = kind + "_s8"
        _, params = view_of(lambda name: g.tensors[name].shape, op)
        op.int8_params = Int8Params(params)

    def emit_s8(c, op: Op, sym: str) -> Call:
        offset, _ = view_of(c.shape, op)
        call = s8_call(c, op, sym, "td_transpose_s8", "s8/shape_s8.c", "td_transpose_s8_params", "xo")
        call.args[0] = input_at(c, op, offset)
        return call

    register(OpDef(kind, evaluate, emit_f32, layout=layout, to_int8=to_int8, quant="propagates"),
             OpDef(kind + "_s8", evaluate, emit_s8))
