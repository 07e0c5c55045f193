"""Pad of up to MAX_DIMS dims: constant, reflect or edge.

The int8 pad value is the float value quantized with the input's parameters,
and the output keeps the input's quantization. Portable kernels: td_pad_f32
(f32/pad.c), td_pad_s8 (s8/shape_s8.c).
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk
from ..ctext import MAX_DIMS, Call
from ..ir import Graph, Int8Params, Op
from .base import OpDef, register
from .common import padded, s8_call, scalar_q

MODES = {"constant": 0, "reflect": 1, "edge": 2}  # the kernels' mode field


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    widths = list(zip(op.attrs["before"], op.attrs["after"]))
    mode = op.attrs["mode"]
    if mode == "constant":
        return np.pad(args[0], widths, constant_values=op.attrs["value"])
    return np.pad(args[0], widths, mode="reflect" if mode == "reflect" else "edge")


def _layout(lay, op: Op) -> None:
    perm = lay.perm[op.inputs[0]]
    op.attrs["before"] = [op.attrs["before"][a] for a in perm]
    op.attrs["after"] = [op.attrs["after"][a] for a in perm]
    lay.set_out(op, perm)


def _emit_f32(c, op: Op, sym: str) -> Call:
    shape = c.shape(op.inputs[0])
    pad = MAX_DIMS - len(shape)
    params = dict(in_shape=padded(shape), pad_before=[0] * pad + list(op.attrs["before"]),
                  out_shape=padded(c.shape(op.outputs[0])), mode=MODES[op.attrs["mode"]],
                  value=float(op.attrs["value"]))
    return Call("td_pad_f32", "f32/pad.c", [c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)],
                "td_pad_f32_params", params)


def _to_int8(g: Graph, op: Op) -> None:
    in_q = scalar_q(g, op.inputs[0], op)
    a = op.attrs
    value = int(np.clip(np.round(a["value"] / in_q[0]) + in_q[1], -128, 127))
    op.kind = "pad_s8"
    op.int8_params = Int8Params(gk.pad_geometry(g.tensors[op.inputs[0]].shape, a["before"], a["after"],
                                                  MODES[a["mode"]], value))


def _emit_s8(c, op: Op, sym: str):
    return s8_call(c, op, sym, "td_pad_s8", "s8/shape_s8.c", "td_pad_s8_params", "xo")


register(
    OpDef("pad", _float_ref, _emit_f32, layout=_layout, to_int8=_to_int8, quant="propagates"),
    OpDef("pad_s8", lambda g, op, args: gk.pad(args[0], op.int8_params), _emit_s8),
)
