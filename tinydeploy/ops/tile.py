"""Tile and Expand with constant repeats / shape (ONNX Tile, Expand).

Tiling repeats the whole input r times along an axis; Expand is a tile of the
size-1 axes it broadcasts (after a reshape to the output rank). Both are strided
views of the input with zero strides: axis d of size n tiled r times becomes two
axes [r, n] with strides [0, stride_d]. Unit axes are dropped and contiguous axes
merged so the view fits the kernels' dimensions. The portable kernels are the
transpose kernels (td_transpose_f32, td_transpose_s8), which copy exactly such a
view. int8: data movement, the output keeps the input's quantization.
"""
from __future__ import annotations

import numpy as np

from ..ctext import MAX_DIMS, Call
from ..errors import TinydeployError
from ..ir import Graph, Op
from .base import OpDef, register
from .common import contiguous_strides, s8_call


def view(in_shape, repeats, node: str = "") -> dict:
    """The kernel's strided geometry of the tiled view."""
    dims, strides = [], []
    for n, st, r in zip(in_shape, contiguous_strides(in_shape), repeats):
        for size, stride in ((r, 0), (n, st)):
            if size == 1:
                continue
            if dims and strides[-1] == stride * size and (stride != 0 or strides[-1] == 0):
                dims[-1] *= size  # merge with the previous (outer) axis: contiguous
                strides[-1] = stride
            else:
                dims.append(size)
                strides.append(stride)
    if len(dims) > MAX_DIMS:
        raise TinydeployError(f"node '{node}': tiling {len(in_shape)}-D data by {list(repeats)} needs "
                              f"more than {MAX_DIMS} dimensions")
    pad = MAX_DIMS - len(dims)
    return {"out_shape": [1] * pad + dims, "in_strides": [0] * pad + strides}


def _evaluate(g: Graph, op: Op, args: list) -> np.ndarray:
    return np.tile(np.asarray(args[0]), op.attrs["repeats"])


def _layout(lay, op: Op) -> None:
    perm = lay.perm[op.inputs[0]]
    op.attrs["repeats"] = [op.attrs["repeats"][a] for a in perm]
    lay.set_out(op, perm)


def _emit_f32(c, op: Op, sym: str) -> Call:
    return Call("td_transpose_f32", "f32/transpose.c", [c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)],
                "td_transpose_params", view(c.shape(op.inputs[0]), op.attrs["repeats"], op.name))


def _to_int8(g: Graph, op: Op) -> None:
    op.kind = "tile_s8"
    op.attrs["q"] = view(g.tensors[op.inputs[0]].shape, op.attrs["repeats"], op.name)


register(
    OpDef("tile", _evaluate, _emit_f32, layout=_layout, to_int8=_to_int8, quant="propagates"),
    OpDef("tile_s8", _evaluate,
          lambda c, op, sym: s8_call(c, op, sym, "td_transpose_s8", "s8/shape_s8.c", "td_transpose_s8_params",
                                     "xo")),
)
