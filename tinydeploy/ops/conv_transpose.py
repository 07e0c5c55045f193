"""Transposed convolution (ONNX ConvTranspose): conv_transpose (float) and
conv_transpose_s8 (int8, the arithmetic of TFLite's TRANSPOSE_CONV).

Output pixel (oy, ox) of channel oc sums, over the kernel taps (ky, kx) whose
input position iy = (oy + pad_top - ky * dil_h) / stride_h (and likewise ix)
is a whole number inside the input, the products x[iy][ix][c] * w[oc][ky][kx][c]
over the input channels c of oc's group. This gathers exactly what TFLite's
scatter formulation (every input pixel added into k_h x k_w output pixels)
adds up; int32 sums do not depend on the order. output_padding and negative
end padding only add output pixels that no tap reaches (bias only).

Weights: ONNX's [C_in][C_out / group][k_h][k_w] are re-laid by the layout pass
as [C_out][k_h][k_w][C_in / group] (the conv weight layout: one output
channel's weights contiguous, quantized per output channel along axis 0).
int8: int32 accumulation of (x + input_offset) * w, bias, per-channel
MultiplyByQuantizedMultiplier, output offset and clamp, as in conv.
Portable kernels: td_conv_transpose_f32 (f32/conv_transpose.c) and
td_conv_transpose_s8 (s8/conv_transpose_s8.c).
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk, qmath
from ..ctext import Call
from ..errors import TinydeployError
from ..ir import Graph, Int8Params, Op, QuantParams
from ..overflow import mac_layer
from .base import OpDef, register
from .common import act_params, act_range, clamp, nhwc, s8_call, scalar_q
from .conv import fit_bias, int32_bias, int8_weights

NHWC = (0, 2, 3, 1)


def ohwi(w: np.ndarray, groups: int) -> np.ndarray:
    """ONNX [C_in][C_out/g][kh][kw] -> [C_out][kh][kw][C_in/g] (group-major on both sides)."""
    c_in, ocg, kh, kw = w.shape
    cg = c_in // groups
    return np.ascontiguousarray(
        w.reshape(groups, cg, ocg, kh, kw).transpose(0, 2, 3, 4, 1).reshape(groups * ocg, kh, kw, cg))


def geometry(in_hw, out_hw, k, strides, dilations, pads) -> dict:
    """The kernels' shape fields (pads: [top, left, ...]; only the leading pads matter)."""
    return dict(in_h=in_hw[0], in_w=in_hw[1], out_h=out_hw[0], out_w=out_hw[1], k_h=k[0], k_w=k[1],
                stride_h=strides[0], stride_w=strides[1], dil_h=dilations[0], dil_w=dilations[1],
                pad_top=pads[0], pad_left=pads[1])


def _taps(n_in: int, n_out: int, k: int, s: int, d: int, pad: int):
    """Per tap k: (input indices i, output indices o) with o = i * s + k * d - pad inside the output."""
    i = np.arange(n_in)
    for t in range(k):
        o = i * s + t * d - pad
        ok = (o >= 0) & (o < n_out)
        yield t, i[ok], o[ok]


def accumulate(x: np.ndarray, w: np.ndarray, p: dict, dtype) -> np.ndarray:
    """sum over taps of x (H, W, C) times w [O][kh][kw][C/g] into (out_h, out_w, O), in `dtype`."""
    h, wd, c = x.shape
    o, kh, kw, cg = w.shape
    groups = c // cg
    ocg = o // groups
    acc = np.zeros((p["out_h"], p["out_w"], o), dtype)
    xg = x.astype(dtype).reshape(h, wd, groups, cg)
    wg = w.astype(dtype).reshape(groups, ocg, kh, kw, cg)
    for ky, iy, oy in _taps(h, p["out_h"], kh, p["stride_h"], p["dil_h"], p["pad_top"]):
        for kx, ix, ox in _taps(wd, p["out_w"], kw, p["stride_w"], p["dil_w"], p["pad_left"]):
            if len(iy) == 0 or len(ix) == 0:
                continue
            part = np.einsum("hwgc,goc->hwgo", xg[iy][:, ix], wg[:, :, ky, kx, :]).reshape(len(iy), len(ix), o)
            acc[np.ix_(oy, ox)] += part
    return acc


def _geometry_of(g: Graph, op: Op) -> dict:
    _, ih, iw, _ = g.tensors[op.inputs[0]].shape
    _, oh, ow, _ = g.tensors[op.outputs[0]].shape
    _, kh, kw, _ = g.tensors[op.inputs[1]].shape
    a = op.attrs
    return geometry((ih, iw), (oh, ow), (kh, kw), a["strides"], a["dilations"], a["pads"])


# -- float ------------------------------------------------------------------
def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    w = g.const(op.inputs[1]).astype(np.float32)
    y = accumulate(args[0][0], w, _geometry_of(g, op), np.float64)
    if op.inputs[2]:
        y = y + g.const(op.inputs[2]).reshape(-1)
    return clamp(y[None].astype(np.float32), op)


def _layout(lay, op: Op) -> None:
    """NCHW activations become NHWC; ONNX weights [C_in][C_out/g][kh][kw] become [C_out][kh][kw][C_in/g]."""
    op.inputs[0] = lay.want(op.inputs[0], NHWC)
    g = lay.g
    groups = op.attrs["group"]
    t = g.tensors[op.inputs[1]]
    w = g.add_const(op.inputs[1] + "_ohwi", ohwi(t.data, groups))
    if t.qdata is not None and t.quant is not None:
        q = t.quant
        if q.per_tensor:
            quant = q
        elif q.axis == 1:  # one scale per output channel of a group, the same in every group
            quant = QuantParams(np.tile(q.scale.reshape(-1), groups), np.tile(q.zero_point.reshape(-1), groups), 0)
        else:
            raise TinydeployError(f"node '{op.name}': ConvTranspose weights quantized along axis {q.axis}; "
                                  "only per-output-channel (axis 1) or per-tensor weights are supported")
        g.tensors[w].qdata = ohwi(t.qdata, groups)
        g.tensors[w].quant = quant
    op.inputs[1] = w
    op.attrs.pop("layout", None)
    lay.set_out(op, NHWC)


def _taps_count(n_in: int, n_out: int, k: int, s: int, d: int, pad: int) -> int:
    return sum(len(i) for _, i, _ in _taps(n_in, n_out, k, s, d, pad))


def macs(g: Graph, op: Op) -> int:
    """Products actually summed: (input pixel, tap) pairs landing in the output x C_in/g x C_out."""
    p = op.int8_params if op.int8_params is not None else _geometry_of(g, op)
    o, _, _, cg = g.tensors[op.inputs[1]].shape
    rows = _taps_count(p["in_h"], p["out_h"], p["k_h"], p["stride_h"], p["dil_h"], p["pad_top"])
    cols = _taps_count(p["in_w"], p["out_w"], p["k_w"], p["stride_w"], p["dil_w"], p["pad_left"])
    return rows * cols * cg * o


def _emit_f32(c, op: Op, sym: str) -> Call:
    x, w, b = op.inputs
    ih, iw, ic = nhwc(c.shape(x))
    oh, ow, oc = nhwc(c.shape(op.outputs[0]))
    _, kh, kw, _ = c.shape(w)
    a = op.attrs
    params = dict(in_c=ic, out_c=oc, groups=a["group"],
                  **geometry((ih, iw), (oh, ow), (kh, kw), a["strides"], a["dilations"], a["pads"]),
                  **act_params(op))
    return Call("td_conv_transpose_f32", "f32/conv_transpose.c",
                [c.ptr(x), c.ptr(w), c.ptr(b), c.ptr(op.outputs[0], False)],
                "td_conv_transpose_f32_params", params)


# -- int8 -------------------------------------------------------------------
def _to_int8(g: Graph, op: Op) -> None:
    x, w, b = op.inputs
    in_q, out_q = scalar_q(g, x, op), scalar_q(g, op.outputs[0], op)
    wq, ws = int8_weights(g, w, op)
    wq, ws = fit_bias(g, w, b, in_q[0], wq, ws)
    oc = wq.shape[0]
    q = qmath.conv_params(in_q[0], in_q[1], ws if ws.size > 1 else ws[0], out_q[0], out_q[1],
                          act_range=act_range(op, out_q))
    q.update(in_c=g.tensors[x].shape[3], out_c=oc, groups=op.attrs["group"], **_geometry_of(g, op))
    op.inputs = [x, g.add_const(w + "_s8", np.ascontiguousarray(wq)),
                 g.add_const((b or op.name) + "_s32", int32_bias(g, b, in_q[0], ws, oc)) if b else ""]
    op.kind = "conv_transpose_s8"
    op.int8_params = Int8Params(q)


def golden(x: np.ndarray, w: np.ndarray, bias, p: dict) -> np.ndarray:
    """Bit-exact int8 transposed convolution; x (H, W, C) int8, w [O][kh][kw][C/g] int8."""
    x = np.asarray(x).reshape(p["in_h"], p["in_w"], p["in_c"]).astype(np.int64) + p["input_offset"]
    acc = accumulate(x, np.asarray(w, np.int64), p, np.int64)
    return gk._requant_channels(acc, bias, p, p["out_c"])


def _golden(g: Graph, op: Op, args: list) -> np.ndarray:
    bias = g.const(op.inputs[2]) if op.inputs[2] else None
    return golden(args[0], g.const(op.inputs[1]), bias, op.int8_params)[None]


def _check(g: Graph, op: Op) -> None:
    """Every output sums a subset of its channel's taps: sum |w| over all of them bounds it."""
    w = np.abs(np.asarray(g.const(op.inputs[1]), np.int64))
    mac_layer(g, op, w.reshape(w.shape[0], -1).sum(axis=1), op.int8_params)


def _emit_s8(c, op: Op, sym: str) -> Call:
    return s8_call(c, op, sym, "td_conv_transpose_s8", "s8/conv_transpose_s8.c",
                   "td_conv_transpose_s8_params", "xwBo")


register(
    OpDef("conv_transpose", _float_ref, _emit_f32, layout=_layout, to_int8=_to_int8, macs=macs),
    OpDef("conv_transpose_s8", _golden, _emit_s8, check=_check, macs=macs),
)
