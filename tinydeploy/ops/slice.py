"""Slice with constant indices (ONNX Slice, and Gather of one constant index).

A slice is a strided view of its input: output index o reads input element
offset + sum_d o_d * in_strides[d], where offset and in_strides come from the
starts and steps (steps may be negative). The portable kernels are the
transpose kernels (tinydeploy/ops/view.py); the generated call passes the
input pointer advanced by offset.
"""
from __future__ import annotations

import numpy as np

from ..ctext import MAX_DIMS
from ..ir import Graph, Op
from .common import contiguous_strides, padded
from .view import register_view


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


register_view("slice", _evaluate, lambda i, o, a, node: view(i, a["starts"], a["steps"], o),
              per_axis=("starts", "steps"))
