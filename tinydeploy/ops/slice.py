"""Slice with constant indices (ONNX Slice, and Gather of one constant index).

A slice is a strided view of its input: output index o reads input element
offset + sum_d o_d * in_strides[d], where offset and in_strides come from the
starts and steps (steps may be negative). The portable kernels are the
transpose kernels (td_transpose_f32, td_transpose_s8), which copy exactly
such a view; the generated call passes the input pointer advanced by offset.
int8: data movement, the output keeps the input's quantization.
"""
from __future__ import annotations

import numpy as np

from ..ctext import MAX_DIMS, Call
from ..ir import Graph, Op
from .base import OpDef, register
from .common import contiguous_strides, padded, s8_call


def view(in_shape, starts, steps, out_shape) -> tuple[int, dict]:
    """(element offset of the first output element, the kernel's strided geometry)."""
    strides = contiguous_strides(in_shape)
    offset = sum(int(s) * st for s, st in zip(starts, strides))
    pad = MAX_DIMS - len(in_shape)
    geometry = {"out_shape": padded([int(d) for d in out_shape]),
                "in_strides": [0] * pad + [int(k) * st for k, st in zip(steps, strides)]}
    return offset, geometry


def _evaluate(g: Graph, op: Op, args: list) -> np.ndarray:
    x = np.asarray(args[0])
    out_shape = g.tensors[op.outputs[0]].shape
    offset, geo = view(x.shape, op.attrs["starts"], op.attrs["steps"], out_shape)
    idx = np.full(tuple(geo["out_shape"]), offset, np.int64)
    for d, (n, s) in enumerate(zip(geo["out_shape"], geo["in_strides"])):
        shape = [1] * MAX_DIMS
        shape[d] = n
        idx = idx + (np.arange(n, dtype=np.int64) * s).reshape(shape)
    return x.reshape(-1)[idx].reshape(out_shape)


def _layout(lay, op: Op) -> None:
    """Any physical order works: starts and steps follow the input's."""
    perm = lay.perm[op.inputs[0]]
    op.attrs["starts"] = [op.attrs["starts"][a] for a in perm]
    op.attrs["steps"] = [op.attrs["steps"][a] for a in perm]
    lay.set_out(op, perm)


def _input_at_offset(c, op: Op) -> str:
    offset, _ = view(c.shape(op.inputs[0]), op.attrs["starts"], op.attrs["steps"], c.shape(op.outputs[0]))
    return c.ptr(op.inputs[0]) + (f" + {offset}" if offset else "")


def _emit_f32(c, op: Op, sym: str) -> Call:
    _, params = view(c.shape(op.inputs[0]), op.attrs["starts"], op.attrs["steps"], c.shape(op.outputs[0]))
    return Call("td_transpose_f32", "f32/transpose.c", [_input_at_offset(c, op), c.ptr(op.outputs[0], False)],
                "td_transpose_params", params)


def _to_int8(g: Graph, op: Op) -> None:
    op.kind = "slice_s8"
    _, op.attrs["q"] = view(g.tensors[op.inputs[0]].shape, op.attrs["starts"], op.attrs["steps"],
                            g.tensors[op.outputs[0]].shape)


def _emit_s8(c, op: Op, sym: str) -> Call:
    call = s8_call(c, op, sym, "td_transpose_s8", "s8/shape_s8.c", "td_transpose_s8_params", "xo")
    call.args[0] = _input_at_offset(c, op)
    return call


register(
    OpDef("slice", _evaluate, _emit_f32, layout=_layout, to_int8=_to_int8, quant="propagates"),
    OpDef("slice_s8", _evaluate, _emit_s8),
)
