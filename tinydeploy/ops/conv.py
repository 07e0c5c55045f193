"""Convolution: conv2d (float), conv2d_s8 and depthwise_conv2d_s8 (int8).

Float weights are [out_c][k_h][k_w][in_c / group] after layout (OHWI); int8
depthwise weights use TFLite's [k_h][k_w][out_c]. The portable C kernels are
td_conv2d_f32 (f32/conv.c) and td_conv2d_s8 / td_depthwise_conv2d_s8 (s8/conv_s8.c);
with int4 weights td_conv2d_s4 / td_depthwise_conv2d_s4 (s4/weights_s4.c).
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk, qmath
from ..ctext import Call
from ..errors import TinydeployError
from ..ir import Graph, Int8Params, Op
from ..overflow import mac_layer
from .base import OpDef, register
from .common import act_params, act_range, clamp, nhwc, s8_call, scalar_q

NHWC = (0, 2, 3, 1)
S4_SOURCE = "s4/weights_s4.c"  # the portable kernels with int4 weights (td_kernels_s4.h)


def windows(x: np.ndarray, k, strides, dilations, pads, out_hw, fill=0.0) -> np.ndarray:
    """x (H, W, C) -> (OH, OW, KH, KW, C) of the padded input's windows."""
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((pt, max(pb, 0)), (pl, max(pr, 0)), (0, 0)), constant_values=fill)
    oh, ow = out_hw
    sh, sw = strides
    dh, dw = dilations
    rows = []
    for ky in range(k[0]):
        cols = []
        for kx in range(k[1]):
            y0, x0 = ky * dh, kx * dw
            cols.append(xp[y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :])
        rows.append(np.stack(cols, axis=2))
    return np.stack(rows, axis=2)


# -- float ------------------------------------------------------------------
def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    x = args[0]
    w = g.const(op.inputs[1]).astype(np.float32)
    b = g.const(op.inputs[2]) if op.inputs[2] else None
    o, kh, kw, cg = w.shape
    _, oh, ow, _ = g.tensors[op.outputs[0]].shape
    cols = windows(x[0], (kh, kw), op.attrs["strides"], op.attrs["dilations"], op.attrs["pads"], (oh, ow))
    groups = op.attrs["group"]
    og = o // groups
    if groups == 1:
        y = cols.reshape(oh * ow, -1) @ w.reshape(o, -1).T
    elif cg == 1:  # depthwise with multiplier og
        c = x.shape[-1]
        y = np.einsum("hwyxc,cmyx->hwcm", cols, w.reshape(c, og, kh, kw)).reshape(oh * ow, o)
    else:
        parts = [cols[..., i * cg:(i + 1) * cg].reshape(oh * ow, -1) @ w[i * og:(i + 1) * og].reshape(og, -1).T
                 for i in range(groups)]
        y = np.concatenate(parts, axis=1)
    if b is not None:
        y = y + b
    return clamp(y.reshape(1, oh, ow, o).astype(np.float32), op)


def _layout(lay, op: Op) -> None:
    """NCHW activations become NHWC, OIHW weights OHWI."""
    op.inputs[0] = lay.want(op.inputs[0], NHWC)
    g = lay.g
    t = g.tensors[op.inputs[1]]
    w = g.add_const(op.inputs[1] + "_ohwi", t.data.transpose(0, 2, 3, 1))
    if t.qdata is not None:
        g.tensors[w].qdata = np.ascontiguousarray(t.qdata.transpose(0, 2, 3, 1))
        g.tensors[w].quant = t.quant
    op.inputs[1] = w
    op.attrs.pop("layout", None)
    lay.set_out(op, NHWC)


def macs(g: Graph, op: Op) -> int:
    """Output elements x taps per output (conv, int8 conv; weights [out][...])."""
    w = g.tensors[op.inputs[1]]
    return g.tensors[op.outputs[0]].size * int(np.prod(w.shape[1:]))


def _dw_macs(g: Graph, op: Op) -> int:  # weights [k_h][k_w][out_c]
    w = g.tensors[op.inputs[1]]
    return g.tensors[op.outputs[0]].size * int(w.shape[0] * w.shape[1])


def _emit_f32(c, op: Op, sym: str) -> Call:
    x, w, b = op.inputs
    ih, iw, ic = nhwc(c.shape(x))
    oh, ow, oc = nhwc(c.shape(op.outputs[0]))
    _, kh, kw, _ = c.shape(w)
    params = dict(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw,
                  stride_h=op.attrs["strides"][0], stride_w=op.attrs["strides"][1],
                  dil_h=op.attrs["dilations"][0], dil_w=op.attrs["dilations"][1],
                  pad_top=op.attrs["pads"][0], pad_left=op.attrs["pads"][1],
                  groups=op.attrs["group"], **act_params(op))
    return Call("td_conv2d_f32", "f32/conv.c",
                [c.ptr(x), c.ptr(w), c.ptr(b), c.ptr(op.outputs[0], False)],
                "td_conv_f32_params", params)


# -- int8 conversion (shared with fully connected) ---------------------------
# --weights int4 (quantize.to_int8 marks the layers: op.attrs["weight_bits"] = 4) or an INT4
# DequantizeLinear: per-channel symmetric weights in [-7, 7] (imported ones in [-8, 7]), kept
# as int8 values in a tensor of dtype "int4" that the emitters pack two per byte.
WEIGHT_BITS = (8, 4)


def weight_bits(g: Graph, name: str, op: Op) -> int:
    """4 for int4 weights (imported as INT4, or asked for), else 8."""
    t = g.tensors[name]
    if t.qdata is not None and t.quant is not None and t.qdata.dtype.name == "int4":
        return 4
    return int(op.attrs.get("weight_bits", 8))


def _qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def requantized(g: Graph, name: str, op: Op) -> bool:
    """int8 weights of a QDQ or .tflite model asked for as int4: quantized again from their
    real values, so their bias must be too (its integers assume the int8 weights' scales)."""
    t = g.tensors[name]
    return t.qdata is not None and t.quant is not None and weight_bits(g, name, op) == 4 \
        and t.qdata.dtype.name != "int4"


def int8_weights(g: Graph, name: str, op: Op) -> tuple[np.ndarray, np.ndarray]:
    """(integer weights as int8, per-output-channel float32 scales), axis 0 = output channel;
    in [-7, 7] for int4 layers (weight_bits)."""
    t = g.tensors[name]
    if t.qdata is not None and t.quant is not None and not requantized(g, name, op):
        if np.any(t.quant.zero_point != 0):
            raise TinydeployError(f"node '{op.name}': asymmetric weights (zero point != 0) are not "
                                  "supported; quantize weights symmetrically")
        if t.qdata.dtype != np.int8 and t.qdata.dtype.name != "int4":
            raise TinydeployError(f"node '{op.name}': {t.qdata.dtype} weights are not supported "
                                  "(weights must be int8 or int4)")
        if not t.quant.per_tensor and t.quant.axis != 0:
            raise TinydeployError(f"node '{op.name}': weights quantized along axis {t.quant.axis}; "
                                  "only per-output-channel (axis 0) or per-tensor weights are supported")
        return t.qdata.astype(np.int8), t.quant.scale.reshape(-1).astype(np.float32)
    # float weights (or int8 ones asked for as int4: requantized from their real values)
    w = t.data.astype(np.float32)
    bits = weight_bits(g, name, op)
    qmax = _qmax(bits)
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scales = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    if bits == 4:
        scales = _mse_scales(w.reshape(w.shape[0], -1), scales, qmax)
    q = np.clip(np.round(w / scales.reshape((-1,) + (1,) * (w.ndim - 1))), -qmax, qmax).astype(np.int8)
    return q, scales


def _mse_scales(w: np.ndarray, scales: np.ndarray, qmax: int) -> np.ndarray:
    """Per output channel (rows of w), the scale among amax / qmax * f, f in (0.5, 1], whose
    rounded weights are closest to w (least squared error): with 15 levels, clipping the
    few largest weights buys a finer step for the many small ones."""
    best, err = scales.copy(), np.full(scales.shape, np.inf)
    for f in np.linspace(1.0, 0.5, 26):
        s = (scales * np.float32(f)).astype(np.float32)
        e = np.sum((np.clip(np.round(w / s[:, None]), -qmax, qmax) * s[:, None] - w) ** 2, axis=1)
        better = e < err
        best, err = np.where(better, s, best), np.where(better, e, err)
    return best.astype(np.float32)


def add_weights(g: Graph, hint: str, wq: np.ndarray, bits: int) -> str:
    """The int8 layer's weights constant; dtype "int4" for an int4 layer."""
    name = g.add_const(hint, np.ascontiguousarray(wq))
    if bits == 4:
        g.tensors[name].dtype = "int4"
    return name


def fit_bias(g: Graph, w: str, b: str, in_scale: float, wq: np.ndarray, ws: np.ndarray, bits: int = 8,
             again: bool = False):
    """Calibrated weights (or, again=True, weights quantized again: requantized()): widen a
    channel's scale where its float bias would not fit int32 at input_scale * weight_scale
    (TFLite's converter does the same). Such channels have (nearly) zero weights, e.g. dead
    units; the bias is kept below 2^30 to leave room for the products."""
    t = g.tensors[w]
    if not b or (not again and (t.qdata is not None or g.tensors[b].qdata is not None)):
        return wq, ws
    n = ws.size
    bias = np.abs(np.broadcast_to(g.tensors[b].data.astype(np.float64).reshape(-1), (n,)))
    need = bias / (np.float64(in_scale) * float(1 << 30))
    if not np.any(need > ws):
        return wq, ws
    ws = np.maximum(ws, (need * (1 + 1e-6)).astype(np.float32))
    w_data = t.data.astype(np.float32)
    qmax = _qmax(bits)
    wq = np.clip(np.round(w_data / ws.reshape((-1,) + (1,) * (w_data.ndim - 1))), -qmax, qmax).astype(np.int8)
    return wq, ws


def int32_bias(g: Graph, name: str, in_scale: float, w_scales: np.ndarray, n: int, again: bool = False):
    """The int32 bias at input_scale * weight_scale: its own integers when it has them and the
    weights are not quantized again (requantized()), else from its real values."""
    if not name:
        return None
    t = g.tensors[name]
    if t.qdata is not None and t.qdata.dtype == np.int32 and not again:
        return np.broadcast_to(t.qdata.reshape(-1), (n,)).astype(np.int32)
    scales = np.float64(in_scale) * np.broadcast_to(w_scales, (n,)).astype(np.float64)
    return np.clip(np.round(t.data.reshape(-1) / scales), -2**31, 2**31 - 1).astype(np.int32)


def _to_int8(g: Graph, op: Op) -> None:
    x, w, b = op.inputs
    in_q, out_q = scalar_q(g, x, op), scalar_q(g, op.outputs[0], op)
    bits, again = weight_bits(g, w, op), requantized(g, w, op)
    wq, ws = int8_weights(g, w, op)
    wq, ws = fit_bias(g, w, b, in_q[0], wq, ws, bits, again)
    o, kh, kw, cg = wq.shape
    _, ih, iw, ic = g.tensors[x].shape
    _, oh, ow, oc = g.tensors[op.outputs[0]].shape
    q = qmath.conv_params(in_q[0], in_q[1], ws if ws.size > 1 else ws[0], out_q[0], out_q[1],
                          act_range=act_range(op, out_q))
    a = op.attrs
    q.update(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw,
             stride_h=a["strides"][0], stride_w=a["strides"][1], dil_h=a["dilations"][0],
             dil_w=a["dilations"][1], pad_top=a["pads"][0], pad_left=a["pads"][1], groups=a["group"])
    depthwise = a["group"] == ic and cg == 1 and ic > 1
    if depthwise:
        wq = wq.reshape(o, kh, kw).transpose(1, 2, 0)  # TFLite depthwise layout [kh][kw][out_c]
    op.inputs = [x, add_weights(g, w + ("_s4" if bits == 4 else "_s8"), wq, bits),
                 g.add_const((b or op.name) + "_s32", int32_bias(g, b, in_q[0], ws, oc, again)) if b else ""]
    op.kind = "depthwise_conv2d_s8" if depthwise else "conv2d_s8"
    op.int8_params = Int8Params(q)


# -- int8 -------------------------------------------------------------------
def _bias(g: Graph, op: Op):
    return g.const(op.inputs[2]) if op.inputs[2] else None


def _golden(g: Graph, op: Op, args: list) -> np.ndarray:
    return gk.conv2d(args[0], g.const(op.inputs[1]), _bias(g, op), op.int8_params)


def _golden_dw(g: Graph, op: Op, args: list) -> np.ndarray:
    return gk.depthwise_conv2d(args[0], g.const(op.inputs[1]), _bias(g, op), op.int8_params)


def _check(g: Graph, op: Op) -> None:
    w = np.abs(np.asarray(g.const(op.inputs[1]), np.int64))
    sums = w.reshape(w.shape[0], -1).sum(axis=1)  # [out_c][k_h][k_w][in_c / groups]
    mac_layer(g, op, sums, op.int8_params)


def _check_dw(g: Graph, op: Op) -> None:
    w = np.abs(np.asarray(g.const(op.inputs[1]), np.int64))
    mac_layer(g, op, w.reshape(-1, w.shape[-1]).sum(axis=0), op.int8_params)  # [k_h][k_w][out_c]


def _emit_s8(c, op: Op, sym: str) -> Call:
    if c.g.int4_weights(op):
        return s8_call(c, op, sym, "td_conv2d_s4", S4_SOURCE, "td_conv_s8_params", "xwBo")
    return s8_call(c, op, sym, "td_conv2d_s8", "s8/conv_s8.c", "td_conv_s8_params", "xwBo")


def _emit_dw_s8(c, op: Op, sym: str) -> Call:
    if c.g.int4_weights(op):
        return s8_call(c, op, sym, "td_depthwise_conv2d_s4", S4_SOURCE, "td_conv_s8_params", "xwBo")
    return s8_call(c, op, sym, "td_depthwise_conv2d_s8", "s8/conv_s8.c", "td_conv_s8_params", "xwBo")


register(
    OpDef("conv2d", _float_ref, _emit_f32, layout=_layout, to_int8=_to_int8, macs=macs),
    OpDef("conv2d_s8", _golden, _emit_s8, check=_check, macs=macs, inplace="window"),
    OpDef("depthwise_conv2d_s8", _golden_dw, _emit_dw_s8, check=_check_dw, macs=_dw_macs,
          inplace="window"),
)
