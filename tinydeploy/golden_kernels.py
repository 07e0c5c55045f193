"""Bit-exact numpy int8 kernels: the golden model of td_kernels_s8.h.

Every kernel takes int8 numpy arrays (NHWC, batch omitted) plus ONE params
dict whose keys are the C struct's field names (see td_kernels_s8.h).  The
quantization fields come from tinydeploy.qmath.*_params, the geometry fields
from the *_geometry helpers below; the generator merges both dicts and emits
the same values into the C structs.  Arithmetic is integer only (int64 numpy
arrays, wrapped to int32 where the C code works in int32).

Which helpers fill which kernel (C function / struct in td_kernels_s8.h):

  conv2d, depthwise_conv2d  conv_geometry + qmath.conv_params    td_conv_s8_params
  fully_connected           rows/in_features/out_features
                            + qmath.fc_params                    td_fc_s8_params
  add / mul                 broadcast_geometry + qmath.add_params / mul_params
  max_pool, avg_pool        pool_geometry + qmath.pool_params    td_pool_s8_params
  mean                      outer/reduce/inner + qmath.mean_params
  softmax                   outer/depth + qmath.softmax_params
  sigmoid, tanh             size + qmath.sigmoid_params / tanh_params
  hardswish, leaky_relu,    size + qmath.hardswish_params / leaky_relu_params /
  requantize                       requantize_params
  concat                    outer/n_inputs/output_zero_point
                            + inputs=[qmath.concat_input_params(...)]
  pad, transpose            pad_geometry, transpose_geometry
  lut (td_lut_s8)           lut_table(any element-wise kernel above)
"""

import numpy as np

from . import qmath
from .qmath import INT8_MAX, INT8_MIN, mbqm, wrap32

MAX_DIMS = 6


def _to_s8(v, lo=INT8_MIN, hi=INT8_MAX):
    return np.clip(v, lo, hi).astype(np.int8)


def _vec(p, key, n):
    """Per-channel array field, broadcast when per_channel == 0."""
    arr = np.asarray(p[key], np.int64).ravel()
    return arr if p.get("per_channel", 1) else np.full(n, arr[0], np.int64)


# --------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------

def out_size(in_size, k, stride, dilation, pad_before, pad_after):
    return (in_size + pad_before + pad_after - dilation * (k - 1) - 1) // stride + 1


def same_padding(in_size, k, stride, dilation=1):
    """TFLite SAME padding: (before, after, out_size); extra padding goes after."""
    out = (in_size + stride - 1) // stride
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - in_size, 0)
    return total // 2, total - total // 2, out


def conv_geometry(in_shape, out_c, kernel, strides=(1, 1), dilations=(1, 1),
                  pads=(0, 0, 0, 0), groups=1):
    """Shape fields of td_conv_s8_params.  in_shape (H, W, C); kernel (kh, kw);
    pads (top, left, bottom, right)."""
    h, w, c = in_shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    top, left, bottom, right = pads
    return {"in_h": h, "in_w": w, "in_c": c,
            "out_h": out_size(h, kh, sh, dh, top, bottom),
            "out_w": out_size(w, kw, sw, dw, left, right), "out_c": out_c,
            "k_h": kh, "k_w": kw, "stride_h": sh, "stride_w": sw,
            "dil_h": dh, "dil_w": dw, "pad_top": top, "pad_left": left,
            "groups": groups}


def pool_geometry(in_shape, kernel, strides, pads=(0, 0, 0, 0), count_include_pad=0,
                  zero_point=0, dilations=(1, 1)):
    h, w, c = in_shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    top, left, bottom, right = pads
    return {"in_h": h, "in_w": w, "channels": c,
            "out_h": out_size(h, kh, sh, dh, top, bottom),
            "out_w": out_size(w, kw, sw, dw, left, right),
            "k_h": kh, "k_w": kw, "stride_h": sh, "stride_w": sw, "dil_h": dh, "dil_w": dw,
            "pad_top": top, "pad_left": left,
            "count_include_pad": int(count_include_pad), "zero_point": int(zero_point)}


def _pad_shape(shape):
    shape = tuple(int(d) for d in shape)
    return (1,) * (MAX_DIMS - len(shape)) + shape


def _contiguous_strides(shape):
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return strides[::-1]


def broadcast_geometry(a_shape, b_shape):
    """out_shape/a_strides/b_strides (NumPy broadcasting) for add and mul."""
    out = np.broadcast_shapes(tuple(a_shape), tuple(b_shape))
    o, a, b = _pad_shape(out), _pad_shape(a_shape), _pad_shape(b_shape)
    sa, sb = _contiguous_strides(a), _contiguous_strides(b)
    return {"out_shape": list(o),
            "a_strides": [0 if a[d] == 1 and o[d] != 1 else sa[d] for d in range(MAX_DIMS)],
            "b_strides": [0 if b[d] == 1 and o[d] != 1 else sb[d] for d in range(MAX_DIMS)]}


def transpose_geometry(in_shape, perm):
    in_strides = _contiguous_strides(tuple(in_shape))
    out_shape = [in_shape[i] for i in perm]
    pad = MAX_DIMS - len(perm)
    return {"out_shape": [1] * pad + out_shape,
            "in_strides": [0] * pad + [in_strides[i] for i in perm]}


def pad_geometry(in_shape, pads_before, pads_after, mode=0, value=0):
    n = MAX_DIMS - len(in_shape)
    out = [int(d) + int(b) + int(a) for d, b, a in zip(in_shape, pads_before, pads_after)]
    return {"in_shape": [1] * n + [int(d) for d in in_shape],
            "pad_before": [0] * n + [int(b) for b in pads_before],
            "out_shape": [1] * n + out, "mode": int(mode), "value": int(value)}


def _gather(arr, shape, strides):
    """arr.ravel()[sum_d o_d * strides[d]] for every index o of `shape`."""
    idx = np.zeros(shape, np.int64)
    for d, (n, s) in enumerate(zip(shape, strides)):
        view = [1] * len(shape)
        view[d] = n
        idx = idx + (np.arange(n, dtype=np.int64) * s).reshape(view)
    return np.asarray(arr).ravel()[idx]


# --------------------------------------------------------------------------
# Convolutions and fully connected
# --------------------------------------------------------------------------

def _requant_channels(acc, bias, p, n):
    """int32 accumulator [..., n] -> int8 with per-channel requantization."""
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    acc = wrap32(acc)
    out = mbqm(acc, _vec(p, "multiplier", n), _vec(p, "shift", n)) + p["output_offset"]
    return _to_s8(out, p["act_min"], p["act_max"])


def _padded_input(x, p):
    """x + input_offset (int64) laid into a zero frame that covers every tap;
    zero taps are exactly TFLite's skipped padding taps."""
    h, w = p["in_h"], p["in_w"]
    need_h = (p["out_h"] - 1) * p["stride_h"] + (p["k_h"] - 1) * p["dil_h"] + 1
    need_w = (p["out_w"] - 1) * p["stride_w"] + (p["k_w"] - 1) * p["dil_w"] + 1
    t, l = p["pad_top"], p["pad_left"]
    frame = np.zeros((max(need_h, t + h), max(need_w, l + w), x.shape[-1]), np.int64)
    frame[t:t + h, l:l + w] = x.astype(np.int64) + p["input_offset"]
    return frame


def _taps(frame, p):
    """Yield (ky, kx, patch[out_h, out_w, C]) for every kernel tap."""
    oh, ow, sh, sw = p["out_h"], p["out_w"], p["stride_h"], p["stride_w"]
    for ky in range(p["k_h"]):
        y0 = ky * p["dil_h"]
        for kx in range(p["k_w"]):
            x0 = kx * p["dil_w"]
            yield ky, kx, frame[y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw]


def conv2d(x, w, bias, p):
    """Grouped convolution; w [out_c][k_h][k_w][in_c / groups]."""
    x = np.asarray(x).reshape(p["in_h"], p["in_w"], p["in_c"])
    g, oc = p["groups"], p["out_c"]
    cg, ocg = p["in_c"] // g, oc // g
    w = np.asarray(w, np.int64).reshape(g, ocg, p["k_h"], p["k_w"], cg)
    acc = np.zeros((p["out_h"], p["out_w"], g, ocg), np.int64)
    for ky, kx, patch in _taps(_padded_input(x, p), p):
        wt = w[:, :, ky, kx, :]                      # [g][ocg][cg]
        if g == 1:
            acc[:, :, 0, :] += patch @ wt[0].T
        elif cg == 1:
            acc += patch[:, :, :, None] * wt[None, None, :, :, 0]
        else:
            acc += np.einsum("hwgc,goc->hwgo", patch.reshape(*patch.shape[:2], g, cg), wt)
    return _requant_channels(acc.reshape(p["out_h"], p["out_w"], oc), bias, p, oc)


def depthwise_conv2d(x, w, bias, p):
    """Depthwise convolution; w [k_h][k_w][out_c] (TFLite layout)."""
    x = np.asarray(x).reshape(p["in_h"], p["in_w"], p["in_c"])
    oc, mult = p["out_c"], p["out_c"] // p["in_c"]
    w = np.asarray(w, np.int64).reshape(p["k_h"], p["k_w"], oc)
    frame = _padded_input(x, p)
    if mult > 1:
        frame = np.repeat(frame, mult, axis=2)
    acc = np.zeros((p["out_h"], p["out_w"], oc), np.int64)
    for ky, kx, patch in _taps(frame, p):
        acc += patch * w[ky, kx]
    return _requant_channels(acc, bias, p, oc)


def depthwise_weights_to_conv(w_dw):
    """[k_h][k_w][out_c] -> conv2d layout [out_c][k_h][k_w][1]."""
    return np.ascontiguousarray(np.transpose(w_dw, (2, 0, 1))[..., None])


def fully_connected(x, w, bias, p):
    """x [rows][in_features] (any shape of that size); w [out][in]."""
    x = np.asarray(x, np.int64).reshape(p["rows"], p["in_features"]) + p["input_offset"]
    w = np.asarray(w, np.int64).reshape(p["out_features"], p["in_features"])
    return _requant_channels(x @ w.T, bias, p, p["out_features"])


# --------------------------------------------------------------------------
# Element-wise binary ops
# --------------------------------------------------------------------------

def _binary_operands(a, b, p):
    shape = tuple(p["out_shape"])
    va = _gather(np.asarray(a, np.int64), shape, p["a_strides"])
    vb = _gather(np.asarray(b, np.int64), shape, p["b_strides"])
    return va, vb


def add(a, b, p):
    """TFLite int8 Add (both inputs rescaled to 2^left_shift, summed,
    rescaled to the output).  Result shape: p['out_shape'] (6-D)."""
    va, vb = _binary_operands(a, b, p)
    ls = p["left_shift"]
    s1 = mbqm(wrap32((va + p["input1_offset"]) << ls), p["input1_multiplier"], p["input1_shift"])
    s2 = mbqm(wrap32((vb + p["input2_offset"]) << ls), p["input2_multiplier"], p["input2_shift"])
    out = mbqm(wrap32(s1 + s2), p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return _to_s8(out, p["act_min"], p["act_max"])


def mul(a, b, p):
    va, vb = _binary_operands(a, b, p)
    prod = (va + p["input1_offset"]) * (vb + p["input2_offset"])
    out = mbqm(prod, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return _to_s8(out, p["act_min"], p["act_max"])


# --------------------------------------------------------------------------
# Pooling and mean
# --------------------------------------------------------------------------

def _pool_frame(x, p, fill):
    conv_like = dict(p, dil_h=p.get("dil_h", 1), dil_w=p.get("dil_w", 1), input_offset=0)
    x = np.asarray(x).reshape(p["in_h"], p["in_w"], p["channels"])
    h, w, t, l = p["in_h"], p["in_w"], p["pad_top"], p["pad_left"]
    need_h = (p["out_h"] - 1) * p["stride_h"] + (p["k_h"] - 1) * conv_like["dil_h"] + 1
    need_w = (p["out_w"] - 1) * p["stride_w"] + (p["k_w"] - 1) * conv_like["dil_w"] + 1
    frame = np.full((max(need_h, t + h), max(need_w, l + w), x.shape[-1]), fill, np.int64)
    frame[t:t + h, l:l + w] = x
    valid = np.zeros(frame.shape[:2] + (1,), np.int64)
    valid[t:t + h, l:l + w] = 1
    return frame, valid, conv_like


def max_pool(x, p):
    frame, _, q = _pool_frame(x, p, INT8_MIN)
    out = np.full((p["out_h"], p["out_w"], p["channels"]), INT8_MIN, np.int64)
    for _, _, patch in _taps(frame, q):
        out = np.maximum(out, patch)
    return _to_s8(out, p["act_min"], p["act_max"])


def _round_div(acc, n):
    """TFLite's (acc +- n/2) / n with C truncating division; n > 0."""
    half = n // 2
    num = np.where(acc > 0, acc + half, acc - half)
    q = np.abs(num) // n
    return np.where(num < 0, -q, q)


def avg_pool(x, p):
    fill = p["zero_point"] if p["count_include_pad"] else 0
    frame, valid, q = _pool_frame(x, p, fill)
    acc = np.zeros((p["out_h"], p["out_w"], p["channels"]), np.int64)
    cnt = np.zeros((p["out_h"], p["out_w"], 1), np.int64)
    for (_, _, patch), (_, _, v) in zip(_taps(frame, q), _taps(valid, q)):
        acc += patch
        cnt += v
    if p["count_include_pad"]:
        cnt = np.full_like(cnt, p["k_h"] * p["k_w"])
    out = np.where(cnt > 0, _round_div(acc, np.maximum(cnt, 1)), 0)
    return _to_s8(out, p["act_min"], p["act_max"])


def mean(x, p):
    """TFLite int8 Mean over the middle axis of [outer][reduce][inner]."""
    x = np.asarray(x, np.int64).reshape(p["outer"], p["reduce"], p["inner"])
    shifted = wrap32(x.sum(axis=1) + p["input_offset"] * p["reduce"])
    out = mbqm(shifted, p["multiplier"], p["shift"]) + p["output_offset"]
    return _to_s8(out)


# --------------------------------------------------------------------------
# Softmax and activations
# --------------------------------------------------------------------------

def softmax(x, p):
    """TFLite int8 softmax (gemmlowp exp, output scale 1/256, zp -128)."""
    x = np.asarray(x, np.int64).reshape(p["outer"], p["depth"])
    diff = x - x.max(axis=1, keepdims=True)
    valid = diff >= p["diff_min"]
    scaled = qmath.srdhm(wrap32(diff << p["input_left_shift"]), p["input_multiplier"])
    exps = qmath.exp_on_negative_values(scaled, 5)
    sum_exps = wrap32(np.where(valid, qmath.rdbpot(exps, 12), 0).sum(axis=1, keepdims=True))
    recip, bits_over_unit = qmath.get_reciprocal(sum_exps, 12)
    out = qmath.rdbpot(qmath.srdhm(recip, exps), bits_over_unit + 31 - 8) + INT8_MIN
    return np.where(valid, _to_s8(out), np.int8(INT8_MIN)).astype(np.int8)


def _q4_activation(x, p, fn, out_shift, out_offset):
    v = np.asarray(x, np.int64) - p["input_zero_point"]
    r = p["input_range_radius"]
    q4 = mbqm(np.clip(v, -r, r), p["input_multiplier"], p["input_left_shift"])
    out = _to_s8(qmath.rdbpot(fn(q4, 4), out_shift) + out_offset)
    out = np.where(v <= -r, np.int8(INT8_MIN), out)
    return np.where(v >= r, np.int8(INT8_MAX), out).astype(np.int8)


def sigmoid(x, p):
    """TFLite int8 Logistic: output scale 1/256, zero point -128."""
    return _q4_activation(x, p, qmath.fixed_logistic, 23, INT8_MIN)


def tanh(x, p):
    """TFLite int8 Tanh: output scale 1/128, zero point 0."""
    return _q4_activation(x, p, qmath.fixed_tanh, 24, 0)


def _sat_shl16(v, n):
    return np.clip(np.asarray(v, np.int64) << n, qmath.INT16_MIN, qmath.INT16_MAX)


def hardswish(x, p):
    """TFLite int8 HardSwish (int16 fixed point, reference_ops::HardSwish)."""
    hires = (np.asarray(x, np.int64) - p["input_zero_point"]) << 7
    pre_out = qmath.srdhm16(hires, p["output_multiplier_fixedpoint_int16"])
    e = p["reluish_multiplier_exponent"]
    r = _sat_shl16(hires, e - 1) if e > 0 else hires
    r = qmath.srdhm16(r, p["reluish_multiplier_fixedpoint_int16"])
    if e > 0:
        r = _sat_shl16(r, 1)
    elif e < 0:
        r = qmath.rdbpot(r, -e)
    r = (r + (1 << 15)) >> 1
    out = qmath.rdbpot(qmath.sdhm16(r, pre_out), -p["output_multiplier_exponent"])
    return _to_s8(qmath.wrap16(out + p["output_zero_point"]))


def leaky_relu(x, p):
    v = np.asarray(x, np.int64) - p["input_zero_point"]
    ma = p["output_multiplier_alpha"]
    neg = mbqm(v, abs(ma), p["output_shift_alpha"])
    neg = -neg if ma < 0 else neg
    pos = mbqm(v, p["output_multiplier_identity"], p["output_shift_identity"])
    return _to_s8(p["output_zero_point"] + np.where(v >= 0, pos, neg))


def requantize(x, p):
    v = np.asarray(x, np.int64) - p["input_zero_point"]
    return _to_s8(mbqm(v, p["multiplier"], p["shift"]) + p["output_zero_point"])


def lut_table(fn):
    """256-entry table of an int8 -> int8 element-wise kernel (for td_lut_s8)."""
    return np.asarray(fn(np.arange(-128, 128, dtype=np.int64).astype(np.int8)), np.int8)


def lut(x, table):
    return np.asarray(table, np.int8)[np.asarray(x, np.int64) + 128]


# --------------------------------------------------------------------------
# Data movement
# --------------------------------------------------------------------------

def concat(inputs, p):
    """inputs[k] viewed as [outer][inner_k]; p['inputs'] is the list of
    per-input dicts from qmath.concat_input_params."""
    parts = []
    for x, q in zip(inputs, p["inputs"]):
        v = np.asarray(x).reshape(p["outer"], q["inner"])
        if q["requantize"]:
            v = requantize(v, {"input_zero_point": q["input_zero_point"],
                               "output_zero_point": p["output_zero_point"],
                               "multiplier": q["multiplier"], "shift": q["shift"]})
        parts.append(v.astype(np.int8))
    return np.concatenate(parts, axis=1)


_PAD_MODES = {0: "constant", 1: "reflect", 2: "edge"}


def pad(x, p):
    x = np.asarray(x, np.int8).reshape(p["in_shape"])
    after = [o - i - b for o, i, b in zip(p["out_shape"], p["in_shape"], p["pad_before"])]
    widths = list(zip(p["pad_before"], after))
    mode = _PAD_MODES[p["mode"]]
    if mode == "constant":
        return np.pad(x, widths, mode=mode, constant_values=np.int8(p["value"]))
    return np.pad(x, widths, mode=mode)


def transpose(x, p):
    return _gather(np.asarray(x, np.int8), tuple(p["out_shape"]), p["in_strides"])


def reshape(x, shape):
    return np.asarray(x).reshape(shape)
