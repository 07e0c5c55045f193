"""Helpers shared by several op modules: int8 conversion, float clamps, C calls."""
from __future__ import annotations

import numpy as np

from .. import qmath
from ..ctext import MAX_DIMS, Call, s8_params
from ..errors import TinydeployError
from ..ir import Graph, Op, QuantParams

INF = float("inf")


# -- float semantics --------------------------------------------------------
def clamp(y: np.ndarray, op: Op) -> np.ndarray:
    """The op's fused activation clamp (op.attrs["act"] = (lo, hi)), if any."""
    lo, hi = op.attrs.get("act", (-np.inf, np.inf))
    return np.clip(y, lo, hi) if (lo, hi) != (-np.inf, np.inf) else y


# -- int8 conversion --------------------------------------------------------
def scalar_q(g: Graph, name: str, op: Op) -> tuple[float, int]:
    """(scale, zero point) of an activation, which must be quantized per tensor."""
    q = g.tensors[name].quant
    if q is None:
        raise TinydeployError(f"node '{op.name}' ({op.kind}): tensor '{name}' has no int8 quantization "
                              "parameters (the QDQ model leaves it in float); quantize every activation, "
                              "or compile the float model with --calib")
    if not q.per_tensor:
        raise TinydeployError(f"node '{op.name}': tensor '{name}' is quantized per channel; "
                              "activations must be per-tensor")
    return q.scalar()


def act_range(op: Op, out_q) -> tuple[int, int]:
    """The fused activation clamp in the output's int8 codes."""
    lo, hi = op.attrs.get("act", (-INF, INF))
    return qmath.activation_range(out_q[0], out_q[1], None if lo == -INF else lo, None if hi == INF else hi)


def quant_from_range(lo: float, hi: float) -> QuantParams:
    """Asymmetric int8 quantization covering [lo, hi] (and 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        return QuantParams(np.float32(1.0 / 255), np.int32(-128))
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(np.round(-128 - lo / float(scale)), -128, 127))
    return QuantParams(scale, np.int32(zp))


def int8_constant(g: Graph, name: str) -> str:
    """A float constant operand of an int8 op, quantized per tensor: its own integers when it
    carries them per tensor (a DequantizeLinear's, uint8 shifted to int8 with its zero point;
    a .tflite file's), else asymmetric int8 covering its values."""
    t = g.tensors[name]
    if t.qdata is not None and t.quant is not None and t.quant.per_tensor and t.qdata.dtype in (np.int8, np.uint8):
        shift = 128 if t.qdata.dtype == np.uint8 else 0
        s, z = t.quant.scalar()
        data = (t.qdata.astype(np.int64) - shift).astype(np.int8)
        new = g.add_const(name + "_s8", data)
        g.tensors[new].quant = QuantParams(np.float32(s), np.int32(int(z) - shift))
        return new
    tq = t.quant if t.quant is not None and t.quant.per_tensor and t.qdata is None else \
        quant_from_range(float(t.data.min()), float(t.data.max()))
    s, z = tq.scalar()
    data = np.clip(np.round(t.data / s) + z, -128, 127).astype(np.int8)
    new = g.add_const(name + "_s8", data)
    g.tensors[new].quant = QuantParams(np.float32(s), np.int32(z))
    return new


def requantize_after(g: Graph, op: Op, in_q) -> None:
    """Let `op` produce quantization in_q and insert a requantize to its own."""
    out = op.outputs[0]
    mid = g.add_activation(out + "_preq", g.tensors[out].shape)
    g.tensors[mid].quant = QuantParams(np.float32(in_q[0]), np.int32(in_q[1]))
    op.outputs = [mid]
    g.ops.insert(g.ops.index(op) + 1, Op("requantize", op.name + "_requantize", [mid], [out], {}))


def fixed_output(g: Graph, op: Op, want: tuple) -> None:
    """TFLite's softmax/sigmoid/tanh produce a fixed output quantization; any
    other requested quantization is reached with a requantize after them."""
    got = scalar_q(g, op.outputs[0], op)
    if np.float32(got[0]) != np.float32(want[0]) or got[1] != want[1]:
        requantize_after(g, op, want)


# -- C calls ----------------------------------------------------------------
def nhwc(shape) -> tuple:
    if len(shape) != 4 or shape[0] != 1:
        raise TinydeployError(f"expected a batch-1 NHWC tensor, got shape {shape}")
    return shape[1:]


def act_params(op: Op) -> dict:
    """The float kernels' fused clamp fields."""
    lo, hi = op.attrs.get("act", (-np.inf, np.inf))
    return {"act_min": float(lo), "act_max": float(hi)}


def padded(shape) -> list:
    """A shape left-padded with 1s to the runtime's MAX_DIMS."""
    return [1] * (MAX_DIMS - len(shape)) + list(shape)


def contiguous_strides(shape) -> list:
    strides, step = [], 1
    for d in reversed(shape):
        strides.insert(0, step)
        step *= d
    return strides


def pack_int4(values: np.ndarray) -> np.ndarray:
    """int8 values in [-8, 7] -> bytes holding two each: element i in byte i // 2, the low
    nibble for even i (td_kernels_s4.h); an odd count leaves the last high nibble 0."""
    v = np.asarray(values, np.int64).reshape(-1)
    if v.size and (v.min() < -8 or v.max() > 7):
        raise TinydeployError("internal error: an int4 weight outside [-8, 7]")
    nib = (v & 15).astype(np.uint8)
    if nib.size % 2:
        nib = np.append(nib, np.uint8(0))
    return (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8)


def pack_int4_halves(w: np.ndarray) -> np.ndarray:
    """[rows][2H] int8 values in [-8, 7] -> [rows][H] bytes, byte j holding element j in its
    low nibble and element H + j in its high nibble: the layout of the vector int4 kernels
    (td_rvv_s4.h, td_mve_s4.h), whose strips of bytes then meet two contiguous runs of
    inputs."""
    v = np.asarray(w, np.int64)
    half = v.shape[1] // 2
    if v.shape[1] % 2 or (v.size and (v.min() < -8 or v.max() > 7)):
        raise TinydeployError("internal error: int4 halves need an even row of values in [-8, 7]")
    return ((v[:, :half] & 15) | ((v[:, half:] & 15) << 4)).astype(np.uint8)


def s8_call(c, op: Op, sym: str, fn: str, source: str, ptype: str, roles: str) -> Call:
    """The portable int8 call: buffers by role (x input, a/b operands, w weights,
    B bias, o output) and the op's integer parameters as one struct.  int4 weights
    (a tensor of dtype "int4") are passed packed (pack_int4)."""
    ins = iter(op.inputs)
    consts: list = []
    buffers = []
    for r in roles:
        if r == "o":
            buffers.append(c.ptr(op.outputs[0], False))
            continue
        name = next(ins)
        if r == "w" and name and c.g.tensors[name].dtype == "int4":
            packed = c.const(sym, "weights_s4", pack_int4(c.g.const(name)), "uint8_t",
                             note=f"{name}: int4 {list(c.shape(name))}, two per byte", aligned=True)
            consts.append(packed)
            buffers.append(packed.sym)
        else:
            buffers.append(c.ptr(name))
    params = s8_params(c, op.int8_params, sym, consts, ptype)
    return Call(fn, source, buffers, ptype, params, consts=consts)
