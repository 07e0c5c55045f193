"""Pooling: max_pool and avg_pool over NHWC windows (float and int8), dilated or not.

int8 pooling keeps its input's quantization (TFLite); a different requested
output quantization becomes a requantize after the pool. Portable kernels:
f32/pool.c (td_max_pool_f32, td_avg_pool_f32), s8/pool_s8.c.
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk, qmath
from ..ctext import Call
from ..ir import Graph, Int8Params, Op
from ..overflow import fits
from .base import OpDef, register
from .common import act_params, act_range, clamp, nhwc, requantize_after, s8_call, scalar_q
from .conv import NHWC, windows


def _dil(attrs: dict) -> tuple:
    return tuple(attrs.get("dilations", (1, 1)))


def _float_ref(kind: str):
    def evaluate(g: Graph, op: Op, args: list) -> np.ndarray:
        x, a = args[0], op.attrs
        _, oh, ow, c = g.tensors[op.outputs[0]].shape
        if kind == "max":
            cols = windows(x[0], a["kernel"], a["strides"], _dil(a), a["pads"], (oh, ow), fill=-np.inf)
            y = cols.max(axis=(2, 3))
        else:
            cols = windows(x[0], a["kernel"], a["strides"], _dil(a), a["pads"], (oh, ow))
            if a["count_include_pad"]:
                count = float(a["kernel"][0] * a["kernel"][1])
            else:
                inside = windows(np.ones((x.shape[1], x.shape[2], 1), np.float32), a["kernel"], a["strides"],
                                 _dil(a), a["pads"], (oh, ow))
                count = inside.sum(axis=(2, 3))
            y = cols.sum(axis=(2, 3)) / count
        return clamp(y.reshape(1, oh, ow, c).astype(np.float32), op)
    return evaluate


def _layout(lay, op: Op) -> None:
    op.inputs[0] = lay.want(op.inputs[0], NHWC)
    op.attrs.pop("layout", None)
    lay.set_out(op, NHWC)


def _emit_f32(fn: str):
    def emit(c, op: Op, sym: str) -> Call:
        x = op.inputs[0]
        ih, iw, ch = nhwc(c.shape(x))
        oh, ow, _ = nhwc(c.shape(op.outputs[0]))
        a = op.attrs
        params = dict(in_h=ih, in_w=iw, channels=ch, out_h=oh, out_w=ow,
                      k_h=a["kernel"][0], k_w=a["kernel"][1],
                      stride_h=a["strides"][0], stride_w=a["strides"][1],
                      dil_h=_dil(a)[0], dil_w=_dil(a)[1],
                      pad_top=a["pads"][0], pad_left=a["pads"][1],
                      count_include_pad=a["count_include_pad"], **act_params(op))
        return Call(fn, "f32/pool.c", [c.ptr(x), c.ptr(op.outputs[0], False)], "td_pool_f32_params", params)
    return emit


def _to_int8(g: Graph, op: Op) -> None:
    x = op.inputs[0]
    in_q, out_q = scalar_q(g, x, op), scalar_q(g, op.outputs[0], op)
    if in_q != out_q:
        requantize_after(g, op, in_q)
        out_q = in_q
    a = op.attrs
    _, ih, iw, c = g.tensors[x].shape
    _, oh, ow, _ = g.tensors[op.outputs[0]].shape
    q = qmath.pool_params(act_range=act_range(op, out_q))
    q.update(in_h=ih, in_w=iw, channels=c, out_h=oh, out_w=ow, k_h=a["kernel"][0], k_w=a["kernel"][1],
             stride_h=a["strides"][0], stride_w=a["strides"][1], dil_h=_dil(a)[0], dil_w=_dil(a)[1],
             pad_top=a["pads"][0],
             pad_left=a["pads"][1], count_include_pad=a["count_include_pad"], zero_point=in_q[1])
    op.kind = op.kind + "_s8"
    op.int8_params = Int8Params(q)


def _check_avg(g: Graph, op: Op) -> None:
    q = op.int8_params
    fits(f"the sum over a {q['k_h']}x{q['k_w']} window", 128 * int(q["k_h"]) * int(q["k_w"]))


def _golden(fn):
    return lambda g, op, args: fn(args[0], op.int8_params)


def _emit_s8(fn: str):
    return lambda c, op, sym: s8_call(c, op, sym, fn, "s8/pool_s8.c", "td_pool_s8_params", "xo")


register(
    OpDef("max_pool", _float_ref("max"), _emit_f32("td_max_pool_f32"), layout=_layout, to_int8=_to_int8,
          quant="propagates"),
    OpDef("avg_pool", _float_ref("avg"), _emit_f32("td_avg_pool_f32"), layout=_layout, to_int8=_to_int8,
          quant="follows_input"),
    OpDef("max_pool_s8", _golden(gk.max_pool), _emit_s8("td_max_pool_s8")),
    OpDef("avg_pool_s8", _golden(gk.avg_pool), _emit_s8("td_avg_pool_s8"), check=_check_avg),
)
