"""Layer normalization (ONNX LayerNormalization, and the decomposed form exporters
write for older opsets) over the trailing axes from `axis`.

IR: `layer_norm` (inputs x, scale, bias; scale and bias are constants of the
normalized block's shape, or "" for none; attrs axis (logical), epsilon, size: the
number of normalized values per row) and
`layer_norm_s8` (input x; the scale and bias folded into per-element integer
parameters). The kernels view the tensor as [outer][size] with the normalized
axes innermost; the layout rule moves them there. Portable kernels:
td_layer_norm_f32 (f32/layer_norm.c), td_layer_norm_s8 (s8/layer_norm_s8.c).

int8 arithmetic (golden model here, C in s8/layer_norm_s8.c, bit for bit). Per
row of int8 codes q (n = size, S = sum q, Q = sum q^2, exact in int32 for n <=
65536; the zero point cancels):

  d_i = n q_i - S                       n times the deviation from the mean
  T   = n Q - S^2 + E                   n^2 (variance + epsilon) in codes^2, int64;
                                        E = round(n^2 epsilon / in_scale^2) <= 2^56
  z_i = round(d_i / sqrt(T) * 2^16)     the normalized value in Q16

1/sqrt(T): T = t 4^e with t in [2^28, 2^30) (exact for T < 2^30; larger T are
truncated, a relative error below 2^-28); x = t / 2^30 in [1/4, 1) as Q31;
y ~ 1/sqrt(x) in Q29 from the chord 7/3 - 4/3 x (at most 18% high) and four Newton
steps y <- y (3 - x y^2) / 2 in rounded Q29 arithmetic (int64), which converge
(quadratically: 5e-2, 4e-3, 2e-5, 6e-10) to the Q29 rounding floor: y is within
2^-28 (relative) of 1/sqrt(x) over the whole interval (tests/test_layer_norm_gelu.py
checks it); then 1/sqrt(T) = y 2^-(44 + e) and z_i = round(d_i y / 2^(28 + e)).

Output, per element i of the normalized block, with m_i 2^(k_i - 31) =
scale_i / out_scale (TFLite's multiplier quantization, k_i its exponent):

  v_i   = round(z_i m_i / 2^(39 - k_i)) + b_i     in 1/256 output codes,
          b_i = round(256 bias_i / out_scale)
  out_i = clamp(round(v_i / 2^8) + out_zero_point, -128, 127)

Roundings are to nearest, ties away from zero (TFLite's RoundingDivideByPOT). The
output has its own (calibrated) quantization. TFLite has no int8 LayerNorm kernel:
int8 is checked against the float model (SQNR) instead of TFLite Micro.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import qmath
from ..ctext import Call
from ..errors import TinydeployError
from ..ir import Graph, Int8Params, Op
from ..kernel_variants import Choice
from .base import OpDef, register
from .common import s8_call, scalar_q

MAX_SIZE = 1 << 16  # the int8 kernel's int32 sums of codes and squared codes
MAX_EPS = 1 << 56
C0, C1 = 1252698795, 715827883  # the chord 7/3 - 4/3 x in Q29 (TD_LN_C0, TD_LN_C1)
NEWTON_STEPS = 4
OUT_FRAC = 8  # v_i's fractional bits (1/256 output codes)
Z_FRAC = 16  # z_i's fractional bits


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    x = np.asarray(args[0], np.float64)
    rows = x.reshape(-1, int(op.attrs["size"]))  # the normalized block is innermost, in logical order
    mean = rows.mean(axis=1, keepdims=True)
    var = ((rows - mean) ** 2).mean(axis=1, keepdims=True)
    y = (rows - mean) / np.sqrt(var + op.attrs["epsilon"])
    if op.inputs[1]:
        y = y * g.const(op.inputs[1]).astype(np.float64).reshape(-1)
    if op.inputs[2]:
        y = y + g.const(op.inputs[2]).astype(np.float64).reshape(-1)
    return y.astype(np.float32).reshape(x.shape)


def _layout(lay, op: Op) -> None:
    """The normalized axes innermost, in their logical order (the scale and bias are laid
    out so): the input keeps its order if it has them there, else they are moved last."""
    x = op.inputs[0]
    perm, shape = lay.perm[x], lay.logical[x]
    axes = tuple(range(op.attrs["axis"], len(shape)))
    block = [a for a in axes if shape[a] != 1]
    placed = [a for a in perm if shape[a] != 1]
    if placed[len(placed) - len(block):] != block:
        op.inputs[0] = x = lay.want(x, tuple(a for a in perm if a not in axes) + axes)
    lay.set_out(op, lay.perm[x])


def _geometry(g: Graph, op: Op) -> tuple[int, int]:
    size = int(op.attrs["size"])
    return g.tensors[op.inputs[0]].size // size, size


def _emit_f32(c, op: Op, sym: str) -> Call:
    outer, size = _geometry(c.g, op)
    x, scale, bias = op.inputs
    return Call("td_layer_norm_f32", "f32/layer_norm.c",
                [c.ptr(x), c.ptr(scale), c.ptr(bias), c.ptr(op.outputs[0], False)],
                "td_layer_norm_f32_params", dict(outer=outer, size=size, epsilon=float(op.attrs["epsilon"])))


def _to_int8(g: Graph, op: Op) -> None:
    x = op.inputs[0]
    in_q, out_q = scalar_q(g, x, op), scalar_q(g, op.outputs[0], op)
    outer, n = _geometry(g, op)
    if n > MAX_SIZE:
        raise TinydeployError(f"node '{op.name}' (layer_norm): the int8 kernel normalizes at most "
                              f"{MAX_SIZE:,} values per row, this one {n:,}; compile with --quantize float32")
    scale = g.const(op.inputs[1]).astype(np.float64).reshape(-1) if op.inputs[1] else np.ones(n)
    bias = g.const(op.inputs[2]).astype(np.float64).reshape(-1) if op.inputs[2] else np.zeros(n)
    out_scale = float(np.float32(out_q[0]))
    mult, shift = np.zeros(n, np.int32), np.zeros(n, np.int32)
    for i, real in enumerate(scale / out_scale):
        m, k = qmath.quantize_multiplier(real)
        s = 31 + Z_FRAC - OUT_FRAC - k
        if m == 0 or s > 62:
            m, s = 0, 1
        elif s < 1:  # |scale / out_scale| >= 2^38: any nonzero z saturates the output
            m, s = (1 << 31) - 1 if m > 0 else -((1 << 31) - 1), 1
        mult[i], shift[i] = m, s
    b = np.clip(np.round(bias / out_scale * (1 << OUT_FRAC)), -(1 << 30), 1 << 30).astype(np.int32)
    eps = n * n * float(op.attrs["epsilon"]) / float(np.float32(in_q[0])) ** 2
    eps = int(min(max(round(eps), 0), MAX_EPS))
    op.inputs = [x]
    op.kind = "layer_norm_s8"
    op.int8_params = Int8Params(dict(outer=outer, size=n, eps_hi=eps >> 31, eps_lo=eps & ((1 << 31) - 1),
                                     output_offset=int(out_q[1]), multiplier=mult, shift=shift, bias=b))


# -- the vector-lane kernels (RISC-V vector, Helium) ----------------------------
def lanes_choice(op: Op, name: str, fn: str, source: str) -> Optional[Choice]:
    """The vector-lane kernel `fn` (td_layer_norm_lanes_params, td_layer_norm_row.h): it
    needs every element's requantization shift at 33 or more (the rounding term in the
    product's high word); larger multipliers keep the portable kernel."""
    q = op.int8_params
    shift = np.asarray(q["shift"], np.int64)
    if shift.min() < 33:
        return None

    def emit(c, op_, sym):
        consts = [c.const(sym, "multiplier", np.asarray(q["multiplier"], np.int32), "int32_t"),
                  c.const(sym, "half_hi", (np.int64(1) << (shift - 33)).astype(np.int32), "int32_t"),
                  c.const(sym, "shift32", (shift - 32).astype(np.int32), "int32_t"),
                  c.const(sym, "bias", np.asarray(q["bias"], np.int32), "int32_t")]
        params = {k: int(q[k]) for k in ("outer", "size", "eps_hi", "eps_lo", "output_offset")}
        params.update(multiplier=consts[0].sym, half_hi=consts[1].sym, shift32=consts[2].sym,
                      bias=consts[3].sym)
        return Call(fn, source, [c.ptr(op_.inputs[0]), c.ptr(op_.outputs[0], False)],
                    "td_layer_norm_lanes_params", params, consts=consts)
    return Choice(name, emit, 0, detail="64-bit products of magnitudes as low/high word pairs")


# -- the golden model (integer only) -------------------------------------------
def _rshift_round(v: np.ndarray, s) -> np.ndarray:
    """round(v / 2^s), ties away from zero (int64, 1 <= s <= 62)."""
    s = np.asarray(s, np.int64)
    return (v + (np.int64(1) << (s - 1)) - (v < 0)) >> s


def rsqrt_q29(t: np.ndarray) -> np.ndarray:
    """y ~ 2^29 / sqrt(t / 2^30) for int64 t in [2^28, 2^30) (the C kernel's rsqrt_q29)."""
    x = np.asarray(t, np.int64) * 2
    y = np.int64(C0) - ((np.int64(C1) * x) >> 31)
    one = np.int64(1) << 29
    for _ in range(NEWTON_STEPS):
        y2 = (y * y + (one >> 1)) >> 29
        xy2 = (x * y2 + (np.int64(1) << 30)) >> 31
        y = (y * (3 * one - xy2) + one) >> 30
    return y


def normalize(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """T (int64, > 0) -> (t, e) with T = t 4^e (t truncated for T >= 2^30), t in [2^28, 2^30)."""
    t, e = np.asarray(t, np.int64).copy(), np.zeros(np.shape(t), np.int64)
    while np.any(big := t >= (1 << 30)):
        t, e = np.where(big, t >> 2, t), e + big
    while np.any(small := t < (1 << 28)):
        t, e = np.where(small, t << 2, t), e - small
    return t, e


def golden(x: np.ndarray, q: dict) -> np.ndarray:
    n = int(q["size"])
    codes = np.asarray(x, np.int64).reshape(-1, n)
    s = codes.sum(axis=1, keepdims=True)
    t = n * (codes * codes).sum(axis=1, keepdims=True) - s * s + ((int(q["eps_hi"]) << 31) + int(q["eps_lo"]))
    pos = t > 0
    tn, e = normalize(np.where(pos, t, 1 << 28))
    y = np.where(pos, rsqrt_q29(tn), 0)
    e = np.where(pos, e, 0)
    z = _rshift_round((n * codes - s) * y, 28 + e)
    v = _rshift_round(z * np.asarray(q["multiplier"], np.int64), np.asarray(q["shift"], np.int64)) \
        + np.asarray(q["bias"], np.int64)
    out = _rshift_round(v, OUT_FRAC) + int(q["output_offset"])
    return np.clip(out, -128, 127).astype(np.int8).reshape(np.shape(x))


# -- the decomposed form ---------------------------------------------------------
def _binary(op: Optional[Op], kind: str) -> bool:
    return op is not None and op.kind == "binary" and op.attrs["op"] == kind and \
        tuple(op.attrs.get("act", (-np.inf, np.inf))) == (-np.inf, np.inf)


def _scalar(g: Graph, name: str):
    t = g.tensors[name]
    return float(t.data.reshape(-1)[0]) if t.is_const and t.data.size == 1 else None


def _block_const(g: Graph, name: str, shape: tuple, axis: int):
    """A constant operand that varies only over the normalized axes [axis:] of `shape`,
    as an array of the block's shape (None if it is not one)."""
    t = g.tensors[name]
    if not t.is_const or t.data.dtype.kind != "f" or len(t.shape) > len(shape):
        return None
    padded = (1,) * (len(shape) - len(t.shape)) + tuple(t.shape)
    if any(d != 1 for d in padded[:axis]) or any(d not in (1, s) for d, s in zip(padded[axis:], shape[axis:])):
        return None
    block = tuple(shape[axis:])
    return np.ascontiguousarray(np.broadcast_to(t.data.reshape(padded[axis:]), block).astype(np.float32))


def fuse_decomposed(g: Graph) -> None:
    """Rewrite the LayerNorm exporters write before opset 17 into one layer_norm op:
    mean = ReduceMean(x, trailing axes); d = x - mean; v = ReduceMean(d^2) (Pow 2 or d * d);
    y = d / sqrt(v + eps) [* scale] [+ bias], where every intermediate tensor feeds only the
    pattern. The intermediates vanish (in a QDQ model, with their quantization: the fused
    op quantizes only its output)."""
    changed = True
    while changed:
        changed = False
        producers, consumers = g.producers(), g.consumers()
        for mean in g.ops:
            ops = _match(g, mean, producers, consumers)
            if ops is None:
                continue
            new, dead = ops
            at = g.ops.index(dead[-1])
            g.ops[at] = new
            for op in dead[:-1]:
                g.ops.remove(op)
            g.remove_unused()
            changed = True
            break


def _only(consumers, outputs, name):
    """The distinct ops reading `name` (none if it is a graph output)."""
    users = []
    for op in consumers.get(name, []):
        if not any(op is u for u in users):
            users.append(op)
    return users if name not in outputs else []


def _match(g: Graph, mean: Op, producers, consumers):
    if mean.kind != "mean":
        return None
    x = mean.inputs[0]
    shape = g.tensors[x].shape
    axes = list(mean.attrs["axes"])
    if not axes or axes != list(range(axes[0], len(shape))) or g.tensors[x].is_const:
        return None
    axis = axes[0]

    def single(name):
        users = _only(consumers, g.outputs, name)
        return users[0] if len(users) == 1 else None

    sub = single(mean.outputs[0])
    if not _binary(sub, "sub") or sub.inputs != [x, mean.outputs[0]]:
        return None
    d = sub.outputs[0]
    users = _only(consumers, g.outputs, d)
    if len(users) != 2:
        return None
    square = next((u for u in users if (u.kind == "pow" and u.attrs.get("alpha") == 2.0)
                   or (_binary(u, "mul") and u.inputs == [d, d])), None)
    div = next((u for u in users if _binary(u, "div") and u.inputs[0] == d), None)
    if square is None or div is None or square is div:
        return None
    mean2 = single(square.outputs[0])
    if mean2 is None or mean2.kind != "mean" or list(mean2.attrs["axes"]) != axes:
        return None
    add = single(mean2.outputs[0])
    if not _binary(add, "add"):
        return None
    other = [i for i in add.inputs if i != mean2.outputs[0]]
    eps = _scalar(g, other[0]) if len(other) == 1 else None
    if eps is None or not eps >= 0:
        return None
    sqrt = single(add.outputs[0])
    if sqrt is None or sqrt.kind != "sqrt" or single(sqrt.outputs[0]) is not div or div.inputs[1] != sqrt.outputs[0]:
        return None
    chain = [mean, sub, square, mean2, add, sqrt, div]
    scale = bias = ""
    last = div
    nxt = single(last.outputs[0])
    if _binary(nxt, "mul"):
        operand = [i for i in nxt.inputs if i != last.outputs[0]]
        block = _block_const(g, operand[0], shape, axis) if len(operand) == 1 else None
        if block is not None:
            scale = g.add_const(operand[0] + "_ln_scale", block)
            chain.append(nxt)
            last = nxt
            nxt = single(last.outputs[0])
    if _binary(nxt, "add"):
        operand = [i for i in nxt.inputs if i != last.outputs[0]]
        block = _block_const(g, operand[0], shape, axis) if len(operand) == 1 else None
        if block is not None:
            bias = g.add_const(operand[0] + "_ln_bias", block)
            chain.append(nxt)
            last = nxt
    if g.tensors[last.outputs[0]].shape != shape:
        return None
    name = common_name([op.name for op in chain], "layer_norm")
    new = Op("layer_norm", name, [x, scale, bias], list(last.outputs),
             {"axis": axis, "epsilon": float(eps), "size": int(np.prod(shape[axis:]))})
    return new, sorted(chain, key=g.ops.index)


def common_name(names: list, what: str) -> str:
    """'/ln/ReduceMean', '/ln/Sub', ... -> '/ln/layer_norm' (else the last name + '_' + what)."""
    prefix = names[0]
    for n in names[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    cut = prefix.rfind("/")
    return prefix[:cut + 1] + what if cut >= 0 else f"{names[-1]}_{what}"


def _macs(g: Graph, op: Op) -> int:
    return 2 * g.tensors[op.inputs[0]].size


register(
    OpDef("layer_norm", _float_ref, _emit_f32, layout=_layout, to_int8=_to_int8, macs=_macs,
          inplace="elementwise"),
    OpDef("layer_norm_s8", lambda g, op, args: golden(args[0], op.int8_params),
          lambda c, op, sym: s8_call(c, op, sym, "td_layer_norm_s8", "s8/layer_norm_s8.c",
                                     "td_layer_norm_s8_params", "xo"),
          macs=_macs, inplace="elementwise"),
)
