"""The int8 stage: import QDQ annotations or calibrate, then convert ops to int8.

Every activation tensor ends up with per-tensor int8 quantization; weights
are per-channel symmetric int8 and biases int32. Each int8 op carries its
complete kernel parameters in `op.attrs["q"]` (field names = the C struct's,
values from qmath), so the golden model and the generated C use the very
same integers.
"""
from __future__ import annotations

import copy
from typing import Optional

import numpy as np

from . import float_ref, golden_kernels as gk, passes, qmath
from .errors import TinydeployError
from .ir import Graph, Op, QuantParams

INF = float("inf")
DATA_MOVEMENT = {"reshape", "transpose", "max_pool", "pad"}
FIXED_OUTPUT = {"softmax": (1.0 / 256, -128), "sigmoid": (1.0 / 256, -128), "tanh": (1.0 / 128, 0)}


# --------------------------------------------------------------------------
# QDQ import
# --------------------------------------------------------------------------
def _qparams(op: Op) -> QuantParams:
    zp = op.attrs["zero_point"] - (128 if op.attrs["qtype"] == "uint8" else 0)
    return QuantParams(np.float32(op.attrs["scale"]), np.int32(zp))


def absorb_qdq(g: Graph) -> None:
    """QuantizeLinear/DequantizeLinear pairs become quantization annotations on tensors."""
    for op in list(g.ops):
        if op.kind not in ("quantize", "dequantize"):
            continue
        src = g.tensors[op.inputs[0]]
        q = _qparams(op)
        if src.quant is None:
            src.quant = q
        elif not q.same_as(src.quant):
            op.kind, op.attrs = "requantize", {}  # a real change of scale
            g.tensors[op.outputs[0]].quant = q
            continue
        passes._bypass(g, op)
    for t in g.tensors.values():
        if not t.is_const:
            t.dtype = "float32"  # float semantics with annotations until conversion
    _propagate_through_moves(g)


def _propagate_through_moves(g: Graph) -> None:
    """Reshape/transpose/max-pool/pad keep their input's quantization (both ways)."""
    changed = True
    while changed:
        changed = False
        for op in g.ops:
            if op.kind not in DATA_MOVEMENT:
                continue
            a, b = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
            if a.quant is None and b.quant is not None:
                a.quant, changed = b.quant, True
            elif b.quant is None and a.quant is not None:
                b.quant, changed = a.quant, True


# --------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------
def load_calibration(path, g: Graph) -> np.ndarray:
    from .api import load_inputs_for
    x = load_inputs_for(path, g.tensors[g.inputs[0]], what="calibration data")
    if len(x) == 0:
        raise TinydeployError(f"calibration file {path} has no samples")
    if x.dtype != np.float32:
        raise TinydeployError(f"calibration data for input '{g.inputs[0]}' must be float32, got {x.dtype}")
    return x


def _range_of(values: np.ndarray, method: str) -> tuple[float, float]:
    if method == "minmax":
        return float(values.min()), float(values.max())
    if method == "percentile":
        return float(np.percentile(values, 0.01)), float(np.percentile(values, 99.99))
    return _mse_range(values)


def _mse_range(values: np.ndarray) -> tuple[float, float]:
    """The clipping range (shrunk from min/max) with the least quantization MSE."""
    lo, hi = float(values.min()), float(values.max())
    best, best_err = (lo, hi), np.inf
    for f in np.linspace(1.0, 0.3, 15):
        a, b = min(lo * f, 0.0), max(hi * f, 0.0)
        scale = max(b - a, 1e-12) / 255.0
        q = np.clip(np.round(values / scale), np.round(a / scale), np.round(b / scale)) * scale
        err = float(np.mean((values - q) ** 2))
        if err < best_err:
            best, best_err = (a, b), err
    return best


def quant_from_range(lo: float, hi: float) -> QuantParams:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        return QuantParams(np.float32(1.0 / 255), np.int32(-128))
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(np.round(-128 - lo / float(scale)), -128, 127))
    return QuantParams(scale, np.int32(zp))


def calibrate(g: Graph, x: np.ndarray, method: str, progress=None) -> None:
    """Run the float graph over the samples and annotate every activation."""
    samples: dict[str, list] = {}
    rng = np.random.default_rng(0)
    iterator = progress(x, "calibrating") if progress else x
    for sample in iterator:
        with np.errstate(all="ignore"):  # non-finite values are reported below, not warned about
            values = float_ref.run(g, sample[None], keep_all=True)
        for name, v in values.items():
            flat = v.reshape(-1)
            keep = flat if method == "minmax" or flat.size <= 4096 else rng.choice(flat, 4096, replace=False)
            entry = samples.setdefault(name, [])
            if method == "minmax":
                entry[:] = [min(entry[0], float(flat.min())) if entry else float(flat.min()),
                            max(entry[1], float(flat.max())) if entry else float(flat.max())]
            else:
                entry.append(keep)
    producers = g.producers()
    for name in [g.inputs[0]] + [o for op in g.ops for o in op.outputs]:
        op = producers.get(name)
        t = g.tensors[name]
        if op is not None and op.kind in FIXED_OUTPUT:
            t.quant = QuantParams(np.float32(FIXED_OUTPUT[op.kind][0]), np.int32(FIXED_OUTPUT[op.kind][1]))
        elif op is not None and op.kind in DATA_MOVEMENT | {"avg_pool"}:
            t.quant = g.tensors[op.inputs[0]].quant
        else:
            s = samples[name]
            lo, hi = (s[0], s[1]) if method == "minmax" else _range_of(np.concatenate(s), method)
            if not (np.isfinite(lo) and np.isfinite(hi)):
                where = f"the output of node '{op.name}'" if op is not None else "the model input"
                raise TinydeployError(f"calibration: tensor '{name}' ({where}) takes non-finite values "
                                      "(NaN or infinity) on the calibration data; fix the model (e.g. a "
                                      "Sqrt of negative values) or the data")
            t.quant = quant_from_range(lo, hi)


# --------------------------------------------------------------------------
# Conversion to int8 ops
# --------------------------------------------------------------------------
def _scalar_q(g: Graph, name: str, op: Op) -> tuple[float, int]:
    q = g.tensors[name].quant
    if q is None:
        raise TinydeployError(f"node '{op.name}' ({op.kind}): tensor '{name}' has no int8 quantization "
                              "parameters (the QDQ model leaves it in float); quantize every activation, "
                              "or compile the float model with --calib")
    if not q.per_tensor:
        raise TinydeployError(f"node '{op.name}': tensor '{name}' is quantized per channel; "
                              "activations must be per-tensor")
    return q.scalar()


def _act_range(op: Op, out_q) -> tuple[int, int]:
    lo, hi = op.attrs.get("act", (-INF, INF))
    return qmath.activation_range(out_q[0], out_q[1], None if lo == -INF else lo, None if hi == INF else hi)


def _int8_weights(g: Graph, name: str, op: Op) -> tuple[np.ndarray, np.ndarray]:
    """(int8 weights, per-output-channel float32 scales), axis 0 = output channel."""
    t = g.tensors[name]
    if t.qdata is not None and t.quant is not None:
        if np.any(t.quant.zero_point != 0):
            raise TinydeployError(f"node '{op.name}': asymmetric weights (zero point != 0) are not "
                                  "supported; quantize weights symmetrically")
        if t.qdata.dtype != np.int8:
            raise TinydeployError(f"node '{op.name}': {t.qdata.dtype} weights are not supported "
                                  "(weights must be int8)")
        if not t.quant.per_tensor and t.quant.axis != 0:
            raise TinydeployError(f"node '{op.name}': weights quantized along axis {t.quant.axis}; "
                                  "only per-output-channel (axis 0) or per-tensor weights are supported")
        return t.qdata.astype(np.int8), t.quant.scale.reshape(-1).astype(np.float32)
    w = t.data.astype(np.float32)
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scales.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
    return q, scales


def _fit_bias(g: Graph, w: str, b: str, in_scale: float, wq: np.ndarray, ws: np.ndarray):
    """Calibrated weights: widen a channel's scale where its float bias would not fit int32 at
    input_scale * weight_scale (TFLite's converter does the same). Such channels have (nearly)
    zero weights, e.g. dead units; the bias is kept below 2^30 to leave room for the products."""
    t = g.tensors[w]
    if not b or t.qdata is not None or g.tensors[b].qdata is not None:
        return wq, ws
    n = ws.size
    bias = np.abs(np.broadcast_to(g.tensors[b].data.astype(np.float64).reshape(-1), (n,)))
    need = bias / (np.float64(in_scale) * float(1 << 30))
    if not np.any(need > ws):
        return wq, ws
    ws = np.maximum(ws, (need * (1 + 1e-6)).astype(np.float32))
    w_data = t.data.astype(np.float32)
    wq = np.clip(np.round(w_data / ws.reshape((-1,) + (1,) * (w_data.ndim - 1))), -127, 127).astype(np.int8)
    return wq, ws


def _int32_bias(g: Graph, name: str, in_scale: float, w_scales: np.ndarray, n: int) -> Optional[np.ndarray]:
    if not name:
        return None
    t = g.tensors[name]
    if t.qdata is not None and t.qdata.dtype == np.int32:
        return np.broadcast_to(t.qdata.reshape(-1), (n,)).astype(np.int32)
    scales = np.float64(in_scale) * np.broadcast_to(w_scales, (n,)).astype(np.float64)
    return np.clip(np.round(t.data.reshape(-1) / scales), -2**31, 2**31 - 1).astype(np.int32)


def _set_const(g: Graph, hint: str, data: np.ndarray) -> str:
    return g.add_const(hint, np.ascontiguousarray(data))


def _convert_conv(g: Graph, op: Op) -> None:
    x, w, b = op.inputs
    in_q, out_q = _scalar_q(g, x, op), _scalar_q(g, op.outputs[0], op)
    wq, ws = _int8_weights(g, w, op)
    wq, ws = _fit_bias(g, w, b, in_q[0], wq, ws)
    o, kh, kw, cg = wq.shape
    _, ih, iw, ic = g.tensors[x].shape
    _, oh, ow, oc = g.tensors[op.outputs[0]].shape
    q = qmath.conv_params(in_q[0], in_q[1], ws if ws.size > 1 else ws[0], out_q[0], out_q[1],
                          act_range=_act_range(op, out_q))
    a = op.attrs
    q.update(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw,
             stride_h=a["strides"][0], stride_w=a["strides"][1], dil_h=a["dilations"][0],
             dil_w=a["dilations"][1], pad_top=a["pads"][0], pad_left=a["pads"][1], groups=a["group"])
    depthwise = a["group"] == ic and cg == 1 and ic > 1
    if depthwise:
        wq = wq.reshape(o, kh, kw).transpose(1, 2, 0)  # TFLite depthwise layout [kh][kw][out_c]
    op.inputs = [x, _set_const(g, w + "_s8", wq),
                 _set_const(g, (b or op.name) + "_s32", _int32_bias(g, b, in_q[0], ws, oc)) if b else ""]
    op.kind = "depthwise_conv2d_s8" if depthwise else "conv2d_s8"
    a["q"] = q


def _convert_fc(g: Graph, op: Op) -> None:
    x, w, b = op.inputs
    in_q, out_q = _scalar_q(g, x, op), _scalar_q(g, op.outputs[0], op)
    wq, ws = _int8_weights(g, w, op)
    wq, ws = _fit_bias(g, w, b, in_q[0], wq, ws)
    n_out, n_in = wq.shape
    q = qmath.fc_params(in_q[0], in_q[1], ws if ws.size > 1 else ws[0], out_q[0], out_q[1],
                        act_range=_act_range(op, out_q))
    q.update(rows=g.tensors[x].size // n_in, in_features=n_in, out_features=n_out)
    op.inputs = [x, _set_const(g, w + "_s8", wq),
                 _set_const(g, b + "_s32", _int32_bias(g, b, in_q[0], ws, n_out)) if b else ""]
    op.kind = "fully_connected_s8"
    op.attrs["q"] = q


def _convert_binary(g: Graph, op: Op) -> None:
    kind = op.attrs["op"]
    if kind not in ("add", "mul"):
        raise TinydeployError(f"node '{op.name}': there is no int8 kernel for element-wise '{kind}' "
                              "(supported: add, mul); compile with --quantize float32")
    a, b = op.inputs
    for name in (a, b):  # constant operands: quantize them per-tensor
        t = g.tensors[name]
        if t.is_const and t.dtype != "int8":
            tq = t.quant if t.quant is not None and t.quant.per_tensor else \
                quant_from_range(float(t.data.min()), float(t.data.max()))
            s, z = tq.scalar()
            data = np.clip(np.round(t.data / s) + z, -128, 127).astype(np.int8)
            new = _set_const(g, name + "_s8", data)
            g.tensors[new].quant = QuantParams(np.float32(s), np.int32(z))
            op.inputs = [new if i == name else i for i in op.inputs]
    a, b = op.inputs
    qa, qb, qo = (_scalar_q(g, n, op) for n in (a, b, op.outputs[0]))
    fn = qmath.add_params if kind == "add" else qmath.mul_params
    q = fn(qa[0], qa[1], qb[0], qb[1], qo[0], qo[1], act_range=_act_range(op, qo))
    q.update(gk.broadcast_geometry(g.tensors[a].shape, g.tensors[b].shape))
    op.kind = f"{kind}_s8"
    op.attrs["q"] = q


def _convert_pool(g: Graph, op: Op) -> None:
    x = op.inputs[0]
    in_q, out_q = _scalar_q(g, x, op), _scalar_q(g, op.outputs[0], op)
    if in_q != out_q:
        _requantize_after(g, op, in_q)
        out_q = in_q
    a = op.attrs
    _, ih, iw, c = g.tensors[x].shape
    _, oh, ow, _ = g.tensors[op.outputs[0]].shape
    q = qmath.pool_params(act_range=_act_range(op, out_q))
    q.update(in_h=ih, in_w=iw, channels=c, out_h=oh, out_w=ow, k_h=a["kernel"][0], k_w=a["kernel"][1],
             stride_h=a["strides"][0], stride_w=a["strides"][1], pad_top=a["pads"][0],
             pad_left=a["pads"][1], count_include_pad=a["count_include_pad"], zero_point=in_q[1])
    op.kind = op.kind + "_s8"
    a["q"] = q


def _requantize_after(g: Graph, op: Op, in_q) -> None:
    """Let `op` produce its input's quantization and insert a requantize to its own."""
    out = op.outputs[0]
    mid = g.add_activation(out + "_preq", g.tensors[out].shape)
    g.tensors[mid].quant = QuantParams(np.float32(in_q[0]), np.int32(in_q[1]))
    op.outputs = [mid]
    g.ops.insert(g.ops.index(op) + 1, Op("requantize", op.name + "_requantize", [mid], [out], {}))


def _convert_mean(g: Graph, op: Op) -> None:
    x = op.inputs[0]
    in_q, out_q = _scalar_q(g, x, op), _scalar_q(g, op.outputs[0], op)
    axes = op.attrs["axes"]
    shape = g.tensors[x].shape
    outer, reduce, inner = (int(np.prod(shape[:axes[0]])), int(np.prod(shape[axes[0]:axes[-1] + 1])),
                            int(np.prod(shape[axes[-1] + 1:])))
    q = qmath.mean_params(in_q[0], in_q[1], out_q[0], out_q[1], reduce)
    q.update(outer=outer, reduce=reduce, inner=inner)
    op.kind, op.attrs["q"] = "mean_s8", q


def _fixed_output(g: Graph, op: Op) -> None:
    """TFLite's softmax/sigmoid/tanh produce a fixed output quantization; any
    other requested quantization is reached with a requantize after them."""
    want = FIXED_OUTPUT[op.kind]
    got = _scalar_q(g, op.outputs[0], op)
    if np.float32(got[0]) != np.float32(want[0]) or got[1] != want[1]:
        _requantize_after(g, op, want)


def _convert_softmax(g: Graph, op: Op) -> None:
    x = op.inputs[0]
    _fixed_output(g, op)
    in_q = _scalar_q(g, x, op)
    depth = g.tensors[x].shape[op.attrs["axis"]]
    q = qmath.softmax_params(in_q[0])
    q.update(outer=g.tensors[x].size // depth, depth=depth)
    op.kind, op.attrs["q"] = "softmax_s8", q


def _convert_elementwise(g: Graph, op: Op) -> None:
    x, out = op.inputs[0], op.outputs[0]
    in_q, out_q = _scalar_q(g, x, op), _scalar_q(g, out, op)
    size = g.tensors[x].size
    if op.kind in ("sigmoid", "tanh"):
        _fixed_output(g, op)
        q = (qmath.sigmoid_params if op.kind == "sigmoid" else qmath.tanh_params)(*in_q)
    elif op.kind == "hard_swish":
        q = qmath.hardswish_params(in_q[0], in_q[1], out_q[0], out_q[1])
    elif op.kind == "leaky_relu":
        q = qmath.leaky_relu_params(in_q[0], in_q[1], out_q[0], out_q[1], op.attrs["alpha"])
    elif op.kind == "requantize":
        q = qmath.requantize_params(in_q[0], in_q[1], out_q[0], out_q[1])
    else:  # any other element-wise function: a 256-entry table of the float function
        real = (np.arange(-128, 128) - in_q[1]) * np.float64(in_q[0])
        y = float_ref.UNARY[op.kind](op, real.astype(np.float32)).astype(np.float64)
        table = np.clip(np.round(y / out_q[0]) + out_q[1], -128, 127).astype(np.int8)
        op.kind, op.attrs["q"] = "lut_s8", {"size": size, "table": table}
        return
    q["size"] = size
    op.kind = {"hard_swish": "hardswish"}.get(op.kind, op.kind) + "_s8"
    op.attrs["q"] = q


def _convert_concat(g: Graph, op: Op) -> None:
    out_q = _scalar_q(g, op.outputs[0], op)
    axis = op.attrs["axis"]
    shape = g.tensors[op.outputs[0]].shape
    inputs = []
    for name in op.inputs:
        iq = _scalar_q(g, name, op)
        inputs.append(qmath.concat_input_params(int(np.prod(g.tensors[name].shape[axis:])),
                                                iq[0], iq[1], out_q[0], out_q[1]))
    op.kind = "concat_s8"
    op.attrs["q"] = {"outer": int(np.prod(shape[:axis])), "n_inputs": len(inputs),
                     "output_zero_point": out_q[1], "inputs": inputs}


def _convert_pad(g: Graph, op: Op) -> None:
    in_q = _scalar_q(g, op.inputs[0], op)
    a = op.attrs
    value = int(np.clip(np.round(a["value"] / in_q[0]) + in_q[1], -128, 127))
    mode = {"constant": 0, "reflect": 1, "edge": 2}[a["mode"]]
    op.kind = "pad_s8"
    a["q"] = gk.pad_geometry(g.tensors[op.inputs[0]].shape, a["before"], a["after"], mode, value)


def _convert_transpose(g: Graph, op: Op) -> None:
    op.kind = "transpose_s8"
    op.attrs["q"] = gk.transpose_geometry(g.tensors[op.inputs[0]].shape, op.attrs["perm"])


CONVERTERS = {
    "conv2d": _convert_conv, "fully_connected": _convert_fc, "binary": _convert_binary,
    "max_pool": _convert_pool, "avg_pool": _convert_pool, "mean": _convert_mean,
    "softmax": _convert_softmax, "concat": _convert_concat, "pad": _convert_pad,
    "transpose": _convert_transpose,
    **{k: _convert_elementwise for k in ("sigmoid", "tanh", "hard_swish", "leaky_relu", "requantize",
                                         "clip", "hard_sigmoid", "exp", "neg", "abs", "sqrt")},
}


def _convert_op(g: Graph, op: Op) -> None:
    """Convert one op; qmath's refusals of a parameter combination become user errors."""
    kind = op.kind
    try:
        CONVERTERS[kind](g, op)
    except ValueError as exc:
        tb = exc.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        if tb.tb_frame.f_globals.get("__name__") != qmath.__name__:
            raise
        raise TinydeployError(f"node '{op.name}' ({kind}): its quantization cannot be represented in "
                              f"int8 ({exc})") from None


def convert(g: Graph) -> None:
    for op in list(g.ops):
        if op.kind == "reshape" or op.kind.endswith("_s8"):
            continue
        if op.kind not in CONVERTERS:
            raise TinydeployError(f"node '{op.name}': no int8 kernel for op '{op.kind}'; "
                                  "compile with --quantize float32")
        _convert_op(g, op)
    for op in list(g.ops):  # requantizes inserted after fixed-output ops
        if op.kind == "requantize":
            _convert_op(g, op)
    for t in g.tensors.values():
        if not t.is_const:
            if t.quant is None:
                raise TinydeployError(f"tensor '{t.name}' has no int8 quantization parameters")
            t.dtype = "int8"
    g.remove_unused()


def to_int8(g: Graph, calib=None, method: str = "minmax", progress=None) -> Graph:
    """Float or QDQ IR (ONNX layout) -> optimized int8 IR."""
    absorb_qdq(g)
    passes.optimize(g)
    _propagate_through_moves(g)
    float_graph = None
    if calib is not None:
        x = load_calibration(calib, g)
        calibrate(g, x, method, progress)
        float_graph, calib_x = copy.deepcopy(g), x
    convert(g)
    if float_graph is not None:
        from .golden import layer_sqnr
        layer_sqnr(float_graph, g, calib_x[:32])
    return g
