"""Nearest-neighbour upsampling by integer factors (Resize / Upsample, as
F.interpolate(scale_factor=k, mode="nearest") and Keras UpSampling2D export it).

Repeating each element k times along an axis is a strided view of the input
with a zero stride: axis d of size n becomes two axes [n, k] with strides
[stride_d, 0], copied by the transpose kernels (tinydeploy/ops/view.py).
"""
from __future__ import annotations

import numpy as np

from ..ctext import MAX_DIMS
from ..errors import TinydeployError
from ..ir import Graph, Op
from .common import contiguous_strides
from .view import register_view


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


register_view("resize_nearest", _evaluate, lambda i, o, a, node: (0, view(i, a["scales"], node)),
              per_axis=("scales",))
