"""Tile and Expand with constant repeats / shape (ONNX Tile, Expand).

Tiling repeats the whole input r times along an axis; Expand is a tile of the
size-1 axes it broadcasts (after a reshape to the output rank). Both are strided
views of the input with zero strides: axis d of size n tiled r times becomes two
axes [r, n] with strides [0, stride_d]. Unit axes are dropped and contiguous axes
merged so the view fits the kernels' dimensions; the transpose kernels copy it
(tinydeploy/ops/view.py).
"""
from __future__ import annotations

import numpy as np

from ..ctext import MAX_DIMS
from ..errors import TinydeployError
from ..ir import Graph, Op
from .common import contiguous_strides
from .view import register_view


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


register_view("tile", _evaluate, lambda i, o, a, node: (0, view(i, a["repeats"], node)),
              per_axis=("repeats",))
