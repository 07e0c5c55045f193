"""Nearest-neighbour upsampling by integer factors (Resize / Upsample, as
F.interpolate(scale_factor=k, mode="nearest") and Keras UpSampling2D export it).

Repeating each element k times along an axis is a strided view of the input
with a zero stride: axis d of size n becomes two axes [n, k] with strides
[stride_d, 0]. The portable kernels are the transpose kernels
(td_transpose_f32, td_transpose_s8), which copy exactly such a view.
int8: data movement, the output keeps the input's quantization.
"""
from __future__ import annotations

import numpy as np

from ..ctext import MAX_DIMS, Call
from ..errors import TinydeployError
from ..ir import Graph, Op
from .base import OpDef, register
from .common import contiguous_strides, s8_call


def view(in_shape, scales, node: str = "") -> dict:
    """The kernel's strided geometry of the upsampled view."""
    dims, strides = [], []
    for n, st, k in zip(in_shape, contiguous_strides(in_shape), scales):
        if n == 1 and k == 1:
            continue  # unit axes take no place in the view
        dims.append(n)
        strides.append(st)
        if k != 1:
            dims.append(k)
            strides.append(0)
    if len(dims) > MAX_DIMS:
        raise TinydeployError(f"node '{node}': upsampling {len(in_shape)}-D data along "
                              f"{sum(k != 1 for k in scales)} axes needs more than {MAX_DIMS} dimensions")
    pad = MAX_DIMS - len(dims)
    return {"out_shape": [1] * pad + dims, "in_strides": [0] * pad + strides}


def _evaluate(g: Graph, op: Op, args: list) -> np.ndarray:
    y = np.asarray(args[0])
    for axis, k in enumerate(op.attrs["scales"]):
        if k != 1:
            y = np.repeat(y, k, axis=axis)
    return y


def _layout(lay, op: Op) -> None:
    perm = lay.perm[op.inputs[0]]
    op.attrs["scales"] = [op.attrs["scales"][a] for a in perm]
    lay.set_out(op, perm)


def _emit_f32(c, op: Op, sym: str) -> Call:
    return Call("td_transpose_f32", "f32/transpose.c", [c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)],
                "td_transpose_params", view(c.shape(op.inputs[0]), op.attrs["scales"], op.name))


def _to_int8(g: Graph, op: Op) -> None:
    op.kind = "resize_nearest_s8"
    op.attrs["q"] = view(g.tensors[op.inputs[0]].shape, op.attrs["scales"], op.name)


register(
    OpDef("resize_nearest", _evaluate, _emit_f32, layout=_layout, to_int8=_to_int8, quant="propagates"),
    OpDef("resize_nearest_s8", _evaluate,
          lambda c, op, sym: s8_call(c, op, sym, "td_transpose_s8", "s8/shape_s8.c", "td_transpose_s8_params",
                                     "xo")),
)
