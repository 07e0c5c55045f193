"""Bilinear resizing of H and W (ONNX Resize mode="linear" on NCHW, as
F.interpolate(mode="bilinear") and PaddleOCR's DB neck export it):
resize_bilinear (float) and resize_bilinear_s8 (int8, TFLite's RESIZE_BILINEAR).

Coordinate modes (attrs["mode"]): "half_pixel" (in = (o + 0.5) * in_n / out_n - 0.5,
also pytorch_half_pixel), "align_corners" (in = o * (in_n - 1) / (out_n - 1)) and
"asymmetric" (in = o * in_n / out_n). Float follows ONNX (onnxruntime): the
input coordinate is clamped to [0, n - 1] and the two neighbours are mixed
with weights 1 - f, f. int8 is TFLite's integer kernel (ResizeBilinearInteger):
the scale in Q10 (round(float32 scale * 1024)), half_pixel_centers / align_corners,
four products of Q10 weights summed in Q20 and rounded half away from zero;
the output keeps the input's quantization (a requantize follows when the
model asks for another one). Portable kernels: td_resize_bilinear_f32
(f32/resize_bilinear.c) and td_resize_bilinear_s8 (s8/resize_bilinear_s8.c).
"""
from __future__ import annotations

import numpy as np

from ..ctext import Call
from ..ir import Graph, Int8Params, Op
from ..overflow import Overflow, fits
from ..qmath import _round_half_away
from .base import OpDef, register
from .common import nhwc, requantize_after, s8_call, scalar_q
from .conv import NHWC

MODES = {"asymmetric": 0, "half_pixel": 1, "align_corners": 2}


def float_scale(mode: str, n_in: int, n_out: int) -> np.float32:
    """The input step per output step, in float32 (as TFLite computes it)."""
    if mode == "align_corners" and n_out > 1:
        return np.float32(n_in - 1) / np.float32(n_out - 1)
    return np.float32(n_in) / np.float32(n_out)


# -- float ------------------------------------------------------------------
def _axis_weights(mode: str, n_in: int, n_out: int):
    """(lower index, upper index, weight of the upper one) per output index (ONNX linear)."""
    o = np.arange(n_out, dtype=np.float64)
    s = float(float_scale(mode, n_in, n_out))
    c = (o + 0.5) * s - 0.5 if mode == "half_pixel" else o * s
    c = np.clip(c, 0.0, n_in - 1)
    i0 = np.floor(c).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, c - i0


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    x = np.asarray(args[0], np.float64)[0]  # (H, W, C)
    _, oh, ow, _ = g.tensors[op.outputs[0]].shape
    mode = op.attrs["mode"]
    y0, y1, fy = _axis_weights(mode, x.shape[0], oh)
    x0, x1, fx = _axis_weights(mode, x.shape[1], ow)
    fy, fx = fy[:, None, None], fx[None, :, None]
    top = x[y0][:, x0] * (1 - fx) + x[y0][:, x1] * fx
    bottom = x[y1][:, x0] * (1 - fx) + x[y1][:, x1] * fx
    return (top * (1 - fy) + bottom * fy)[None].astype(np.float32)


def _layout(lay, op: Op) -> None:
    op.inputs[0] = lay.want(op.inputs[0], NHWC)
    op.attrs.pop("layout", None)
    lay.set_out(op, NHWC)


def _geometry(in_shape, out_shape) -> dict:
    ih, iw, c = nhwc(in_shape)
    oh, ow, _ = nhwc(out_shape)
    return dict(in_h=ih, in_w=iw, channels=c, out_h=oh, out_w=ow)


def _emit_f32(c, op: Op, sym: str) -> Call:
    p = _geometry(c.shape(op.inputs[0]), c.shape(op.outputs[0]))
    mode = op.attrs["mode"]
    p.update(coord_mode=MODES[mode], scale_h=float(float_scale(mode, p["in_h"], p["out_h"])),
             scale_w=float(float_scale(mode, p["in_w"], p["out_w"])))
    return Call("td_resize_bilinear_f32", "f32/resize_bilinear.c",
                [c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)], "td_resize_bilinear_f32_params", p)


# -- int8 -------------------------------------------------------------------
def scale_q10(mode: str, n_in: int, n_out: int) -> int:
    """TFLite: the float32 scale times 2^10, rounded half away from zero."""
    return _round_half_away(float(float_scale(mode, n_in, n_out) * np.float32(1 << 10)))


def _to_int8(g: Graph, op: Op) -> None:
    x = op.inputs[0]
    in_q, out_q = scalar_q(g, x, op), scalar_q(g, op.outputs[0], op)
    if in_q != out_q:
        requantize_after(g, op, in_q)
    q = _geometry(g.tensors[x].shape, g.tensors[op.outputs[0]].shape)
    mode = op.attrs["mode"]
    q.update(scale_h_q10=scale_q10(mode, q["in_h"], q["out_h"]),
             scale_w_q10=scale_q10(mode, q["in_w"], q["out_w"]),
             half_pixel_centers=int(mode == "half_pixel"))
    op.kind = "resize_bilinear_s8"
    op.int8_params = Int8Params(q)


def _c_div(a: np.ndarray, d: int) -> np.ndarray:
    """C integer division (truncation toward zero) by d > 0."""
    return np.where(a >= 0, a // d, -((-a) // d))


def axis_q10(o_n: int, scale: int, half: int, n_in: int):
    """TFLite's integer interpolation values: (input coordinate in Q10, lower, upper index)."""
    o = np.arange(o_n, dtype=np.int64)
    v = o * scale + (scale // 2 - (1 << 9) if half else 0)
    lo = np.maximum(_c_div(v, 1 << 10), 0)
    hi = np.minimum(_c_div(v + (1 << 10) - 1, 1 << 10), n_in - 1)
    return v, lo, hi


def golden(x: np.ndarray, p: dict) -> np.ndarray:
    """Bit-exact int8 bilinear resize; x (H, W, C) int8 -> (out_h, out_w, C)."""
    x = np.asarray(x, np.int64).reshape(p["in_h"], p["in_w"], p["channels"])
    one = 1 << 10
    vy, y0, y1 = axis_q10(p["out_h"], p["scale_h_q10"], p["half_pixel_centers"], p["in_h"])
    vx, x0, x1 = axis_q10(p["out_w"], p["scale_w_q10"], p["half_pixel_centers"], p["in_w"])
    dy, dx = (vy - one * y0)[:, None, None], (vx - one * x0)[None, :, None]
    acc = (x[y0][:, x0] * (one - dy) * (one - dx) + x[y1][:, x0] * dy * (one - dx)
           + x[y0][:, x1] * (one - dy) * dx + x[y1][:, x1] * dy * dx)
    return _c_div(acc + np.where(acc > 0, 1 << 19, -(1 << 19)), 1 << 20).astype(np.int8)


def _golden(g: Graph, op: Op, args: list) -> np.ndarray:
    return golden(args[0], op.int8_params)[None]


def _check(g: Graph, op: Op) -> None:
    """The Q20 sum: 128 * (|w_y0| + |w_y1|) * (|w_x0| + |w_x1|), with the Q10 weights of every output
    coordinate (the lower index reads inside the input; the upper one is clamped)."""
    q = op.int8_params
    one = 1 << 10
    spans = []
    for n_out, s, n_in in ((q["out_h"], q["scale_h_q10"], q["in_h"]), (q["out_w"], q["scale_w_q10"], q["in_w"])):
        v, lo, _ = axis_q10(n_out, s, q["half_pixel_centers"], n_in)
        if np.any(lo > n_in - 1):
            raise Overflow(f"the Q10 scale {s} reads past the input's {n_in} rows/columns")
        f = v - one * lo
        spans.append(int(np.max(np.abs(one - f) + np.abs(f))))
    fits("the Q20 interpolation sum", 128 * spans[0] * spans[1] + (1 << 19))


def _emit_s8(c, op: Op, sym: str) -> Call:
    return s8_call(c, op, sym, "td_resize_bilinear_s8", "s8/resize_bilinear_s8.c",
                   "td_resize_bilinear_s8_params", "xo")


def macs(g: Graph, op: Op) -> int:
    """Four multiply-accumulates per output element."""
    return 4 * g.tensors[op.outputs[0]].size


register(
    OpDef("resize_bilinear", _float_ref, _emit_f32, layout=_layout, to_int8=_to_int8, macs=macs,
          quant="follows_input"),
    OpDef("resize_bilinear_s8", _golden, _emit_s8, check=_check, macs=macs),
)
