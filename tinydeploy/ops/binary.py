"""Element-wise binary ops with NumPy broadcasting: add, sub, mul, div, max, min.

Float: one IR kind "binary" (attrs["op"] names the function) and one kernel,
td_binary_f32 (f32/binary.c). int8: add_s8 and mul_s8 (s8/binary_s8.c), with
TFLite's requantization; a constant operand is quantized per tensor; minmax_s8
(s8/minmax_s8.c) compares codes of inputs requantized to the output's
quantization (TFLite MAXIMUM/MINIMUM).
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk, qmath
from ..ctext import MAX_DIMS, Call
from ..errors import TinydeployError
from ..ir import Graph, Int8Params, Op, QuantParams
from ..overflow import fits, offset_bound, shifted
from .base import OpDef, register
from .common import act_params, act_range, clamp, int8_constant, padded, s8_call, scalar_q

FUNCTIONS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
             "max": np.maximum, "min": np.minimum}
# td_binary_kind in td_kernels_f32.h, by name.
C_KIND = {"add": "TD_ADD", "sub": "TD_SUB", "mul": "TD_MUL",
          "div": "TD_DIV", "max": "TD_MAX", "min": "TD_MIN"}


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    a, b = args
    shape = g.tensors[op.outputs[0]].shape
    a = a.reshape((1,) * (len(shape) - a.ndim) + a.shape)
    b = b.reshape((1,) * (len(shape) - b.ndim) + b.shape)
    return clamp(FUNCTIONS[op.attrs["op"]](a, b).astype(np.float32), op)


# The physical order an element-wise result is best kept in, by rank: images NHWC (what
# the convolutions read), everything else (token sequences, features) in its logical order
# (what layer norms, MatMuls and fully connected layers read).
CANONICAL_ORDER = {4: (0, 2, 3, 1)}


def _layout(lay, op: Op) -> None:
    """Both operands in the order of the larger activation (of two as large, the one already
    in the rank's canonical order, so a residual stream does not stay transposed because
    its first add read a transposed tensor); constants re-laid to match."""
    g = lay.g
    acts = [i for i in op.inputs if not g.tensors[i].is_const]
    rank = len(lay.logical[op.outputs[0]])
    if not acts:
        raise TinydeployError(f"node '{op.name}': both inputs are constants after folding")
    canonical = CANONICAL_ORDER.get(rank, tuple(range(rank)))
    lead = max(acts, key=lambda n: (g.tensors[n].size, lay.perm[n] == canonical))
    perm = lay.perm[lead] if len(lay.logical[lead]) == rank else tuple(range(rank))
    new_inputs = []
    for name in op.inputs:
        if g.tensors[name].is_const:
            new_inputs.append(lay.const_physical(name, rank, perm))
        elif len(lay.logical[name]) != rank:
            if perm != tuple(range(rank)):
                raise TinydeployError(f"node '{op.name}': broadcasting activations of different "
                                      "ranks across a layout change is not supported")
            new_inputs.append(name)
        else:
            new_inputs.append(lay.want(name, perm))
    op.inputs = new_inputs
    op.attrs["rank"] = rank
    lay.set_out(op, perm)


def _broadcast_strides(shape, out_shape) -> list:
    shape = padded(shape)
    strides, step = [0] * MAX_DIMS, 1
    for d in reversed(range(MAX_DIMS)):
        strides[d] = 0 if shape[d] == 1 and out_shape[d] != 1 else step
        step *= shape[d]
    return strides


def _emit_f32(c, op: Op, sym: str) -> Call:
    a, b = op.inputs
    if len(c.shape(op.outputs[0])) > MAX_DIMS:
        raise TinydeployError(f"node '{op.name}': more than {MAX_DIMS} dimensions")
    out = padded(c.shape(op.outputs[0]))
    params = dict(out_shape=out, a_strides=_broadcast_strides(c.shape(a), out),
                  b_strides=_broadcast_strides(c.shape(b), out),
                  kind=C_KIND[op.attrs["op"]], **act_params(op))
    return Call("td_binary_f32", "f32/binary.c",
                [c.ptr(a), c.ptr(b), c.ptr(op.outputs[0], False)], "td_binary_f32_params", params)


def _by_constant(g: Graph, op: Op) -> str:
    """x - c and x / c with a constant c become x + (-c) and x * (1/c) (HardSwish exported
    as x * relu6(x + 3) / 6, mean subtraction); returns the kind to convert."""
    kind = op.attrs["op"]
    b = g.tensors[op.inputs[1]]
    if kind not in ("sub", "div") or not b.is_const or b.dtype == "int8":
        return kind
    if kind == "div" and np.any(b.data == 0):
        raise TinydeployError(f"node '{op.name}': division by a constant that holds zeros")
    data = -b.data if kind == "sub" else np.float32(1) / b.data
    op.inputs = [op.inputs[0], g.add_const(op.inputs[1] + ("_neg" if kind == "sub" else "_recip"),
                                           data.astype(np.float32))]
    op.attrs["op"] = "add" if kind == "sub" else "mul"
    return op.attrs["op"]


def _minmax_to_int8(g: Graph, op: Op) -> None:
    """TFLite MAXIMUM/MINIMUM: the inputs share the output's quantization, so activations
    with another are requantized before (a requantize op), constants quantized with it."""
    out_q = scalar_q(g, op.outputs[0], op)
    inputs = []
    for k, name in enumerate(op.inputs):
        t = g.tensors[name]
        if t.is_const:
            data = np.clip(np.round(t.data / np.float32(out_q[0])) + out_q[1], -128, 127).astype(np.int8)
            new = g.add_const(name + "_s8", data)
            g.tensors[new].quant = QuantParams(np.float32(out_q[0]), np.int32(out_q[1]))
        elif scalar_q(g, name, op) != out_q:
            new = g.add_activation(f"{name}_rq_{op.name}", t.shape)
            g.tensors[new].quant = QuantParams(np.float32(out_q[0]), np.int32(out_q[1]))
            g.ops.insert(g.ops.index(op), Op("requantize", f"{op.name}_requantize{k}", [name], [new], {}))
        else:
            new = name
        inputs.append(new)
    op.inputs = inputs
    q = gk.broadcast_geometry(g.tensors[inputs[0]].shape, g.tensors[inputs[1]].shape)
    lo, hi = act_range(op, out_q)
    q.update(is_max=int(op.attrs["op"] == "max"), act_min=lo, act_max=hi)
    op.kind, op.int8_params = "minmax_s8", Int8Params(q)


def _minmax_golden(g: Graph, op: Op, args: list) -> np.ndarray:
    q = op.int8_params
    shape = tuple(q["out_shape"])
    a, b = (np.broadcast_to(np.asarray(x, np.int32).reshape(_padded_shape(np.shape(x))), shape) for x in args)
    y = np.maximum(a, b) if q["is_max"] else np.minimum(a, b)
    out = np.clip(y, q["act_min"], q["act_max"]).astype(np.int8)
    return out.reshape(g.tensors[op.outputs[0]].shape)


def _padded_shape(shape) -> tuple:
    return tuple(padded(list(shape)))


def _to_int8(g: Graph, op: Op) -> None:
    kind = _by_constant(g, op)
    if kind in ("max", "min"):
        _minmax_to_int8(g, op)
        return
    if kind not in ("add", "mul"):
        raise TinydeployError(f"node '{op.name}': there is no int8 kernel for element-wise '{kind}' "
                              "(supported: add, mul, max, min, and sub or div by a constant); compile with "
                              "--quantize float32")
    for name in op.inputs:  # constant operands: quantize them per-tensor
        t = g.tensors[name]
        if t.is_const and t.dtype != "int8":
            new = int8_constant(g, name)
            op.inputs = [new if i == name else i for i in op.inputs]
    a, b = op.inputs
    qa, qb, qo = (scalar_q(g, n, op) for n in (a, b, op.outputs[0]))
    fn = qmath.add_params if kind == "add" else qmath.mul_params
    q = fn(qa[0], qa[1], qb[0], qb[1], qo[0], qo[1], act_range=act_range(op, qo))
    q.update(gk.broadcast_geometry(g.tensors[a].shape, g.tensors[b].shape))
    op.kind = f"{kind}_s8"
    op.int8_params = Int8Params(q)


def _check_add(g: Graph, op: Op) -> None:
    q = op.int8_params
    total = 0
    for i in (1, 2):
        scaled = offset_bound(q[f"input{i}_offset"]) << int(q["left_shift"])
        fits(f"input {i} shifted left by {q['left_shift']} bits", scaled)
        total += shifted(f"rescaled input {i}", scaled, q[f"input{i}_shift"])
    shifted("the sum of the rescaled inputs", total, q["output_shift"])


def _check_mul(g: Graph, op: Op) -> None:
    q = op.int8_params
    prod = offset_bound(q["input1_offset"]) * offset_bound(q["input2_offset"])
    shifted("the product of the inputs", prod, q["output_shift"])


register(
    OpDef("binary", _float_ref, _emit_f32, layout=_layout, to_int8=_to_int8, inplace="elementwise"),
    OpDef("add_s8", lambda g, op, args: gk.add(args[0], args[1], op.int8_params),
          lambda c, op, sym: s8_call(c, op, sym, "td_add_s8", "s8/binary_s8.c", "td_add_s8_params", "abo"),
          check=_check_add, inplace="elementwise"),
    OpDef("minmax_s8", _minmax_golden,
          lambda c, op, sym: s8_call(c, op, sym, "td_minmax_s8", "s8/minmax_s8.c", "td_minmax_s8_params", "abo")),
    OpDef("mul_s8", lambda g, op, args: gk.mul(args[0], args[1], op.int8_params),
          lambda c, op, sym: s8_call(c, op, sym, "td_mul_s8", "s8/binary_s8.c", "td_mul_s8_params", "abo"),
          check=_check_mul, inplace="elementwise"),
)
