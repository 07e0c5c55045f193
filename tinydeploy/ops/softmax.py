"""Softmax over any axis: the kernels take it innermost ([outer][depth]), the layout
pass moves it there.

int8 follows TFLite (fixed output quantization 1/256, -128). Portable kernels:
td_softmax_f32 (f32/softmax.c), td_softmax_s8 (s8/softmax_s8.c), and for long softmaxes
td_softmax_table_s8 (s8/softmax_table_s8.c, td_softmax_table_s8.h).

The table kernel: x - max(row) takes only the 256 values -255..0, so the fixed-point
exponential TFLite computes per element (the difference rescaled by the input multiplier
and shift, exp_on_negative_values, compared with diff_min) is computed here at compile time,
with the golden model's own integer functions, into an int32 table (`exp_table`); the
kernel sums and scales table entries exactly as the reference sums and scales the
exponentials, so it is bit-exact with golden_kernels.softmax (the op's golden model,
unchanged; `table_softmax` is the kernel's steps in numpy, checked against it). The
entries need their 31 bits (the output rounds SRDHM(reciprocal, entry) at full
precision), so the table is only cut after its last non-zero entry (one 0 follows, read
for every larger difference): at most 1 KB of flash, shared by the softmaxes of one model
with the same input quantization (one C symbol named by the multiplier and shift).

When (uses_table): an op of at least TABLE_MIN_ELEMENTS elements (outer * depth) per
inference, where the table's flash pays for itself (attention: rows of tokens; about 330
instructions per element on Cortex-M for the per-element exponential), or with rows of
TABLE_MIN_DEPTH or more: there the Q12.19 sum can reach 2^28 and the final rounding shift
(35 - clz(sum)) 32 or more, which td_softmax_s8 shifts an int32 by (undefined in C; e.g. a
constant row of 600 gives 127 on x86-64 where the reference gives -128; TFLite Micro aborts
on gemmlowp's exponent check); the table kernel rounds such shifts to 0 as the golden
model's 64-bit arithmetic does. Smaller ones (a final softmax over a few classes) keep
td_softmax_s8 and generate the same C as before.
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk, qmath
from ..ctext import Call, Const
from ..ir import Graph, Int8Params, Op
from ..overflow import fits
from .base import OpDef, register
from .common import fixed_output, s8_call, scalar_q

FIXED = (1.0 / 256, -128)
TABLE_MIN_ELEMENTS = 1024  # outer * depth from which the table kernel is used
TABLE_MIN_DEPTH = 512  # and rows of this depth or more (see above)


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    x, axis = args[0], op.attrs["axis"]
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def _layout(lay, op: Op) -> None:
    """The kernels take the softmax axis innermost ([outer][depth]): the input keeps its
    order if it already is, else the logical order if it is there, else the axis is moved
    last (a transpose before; the output keeps that order, transposed back where needed)."""
    x = op.inputs[0]
    perm, shape = lay.perm[x], lay.logical[x]
    axis = op.attrs["axis"]
    if any(shape[a] != 1 for a in perm[perm.index(axis) + 1:]):
        if any(d != 1 for d in shape[axis + 1:]):
            want = tuple(a for a in perm if a != axis) + (axis,)
        else:
            want = lay.ident(x)
        op.inputs[0] = x = lay.want(x, want)
        perm = lay.perm[x]
    op.attrs["axis"] = perm.index(axis)
    lay.set_out(op, perm)


def _emit_f32(c, op: Op, sym: str) -> Call:
    axis_size = c.shape(op.inputs[0])[op.attrs["axis"]]
    outer = c.g.tensors[op.inputs[0]].size // axis_size
    return Call("td_softmax_f32", "f32/softmax.c",
                [str(outer), str(axis_size), c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)])


def _to_int8(g: Graph, op: Op) -> None:
    x = op.inputs[0]
    fixed_output(g, op, FIXED)
    in_q = scalar_q(g, x, op)
    depth = g.tensors[x].shape[op.attrs["axis"]]
    q = qmath.softmax_params(in_q[0])
    q.update(outer=g.tensors[x].size // depth, depth=depth)
    op.kind, op.int8_params = "softmax_s8", Int8Params(q)


def _check(g: Graph, op: Op) -> None:
    depth = int(op.int8_params["depth"])
    fits(f"the Q12.19 sum of {depth:,} exponentials", depth << 19)


def exp_table(q: dict) -> tuple[np.ndarray, int]:
    """(table, last): the Q0.31 exponential TFLite's int8 softmax computes for the
    difference -i to the row maximum, at table[i] for i in 0..last-1 (0 where -i <
    diff_min), then table[last] = 0, the entry of every larger i; last is one past the
    last non-zero entry (1..256: i = 0 gives 2^31 - 1). With last = 256 no i reaches it
    and the table has just the 256 entries."""
    i = np.arange(256, dtype=np.int64)
    scaled = qmath.srdhm(qmath.wrap32(-i << int(q["input_left_shift"])), int(q["input_multiplier"]))
    e = np.where(-i >= int(q["diff_min"]), qmath.exp_on_negative_values(scaled, 5), 0)
    last = int(np.flatnonzero(e)[-1]) + 1
    return np.r_[e[:last], 0][:256].astype(np.int32), last


def table_softmax(x, q: dict, table: np.ndarray, last: int) -> np.ndarray:
    """What td_softmax_table_s8 computes, step for step (numpy, int64): the tests check it
    against golden_kernels.softmax, the op's golden model."""
    x = np.asarray(x, np.int64).reshape(q["outer"], q["depth"])
    i = np.minimum(x.max(axis=1, keepdims=True) - x, last)  # i <= 255: table[256] is never read
    e = table.astype(np.int64)[i]
    sums = ((e >> 12) + ((e >> 11) & 1)).sum(axis=1, keepdims=True)
    recip, bits_over_unit = qmath.get_reciprocal(sums, 12)
    out = qmath.rdbpot(qmath.srdhm(recip, e), bits_over_unit + 31 - 8) + qmath.INT8_MIN
    return np.minimum(out, 127).astype(np.int8)


def uses_table(q: dict) -> bool:
    """Whether the op runs td_softmax_table_s8 (else td_softmax_s8): see the module doc."""
    depth = int(q["depth"])
    return int(q["outer"]) * depth >= TABLE_MIN_ELEMENTS or depth >= TABLE_MIN_DEPTH


def _emit_s8(c, op: Op, sym: str) -> Call:
    if not uses_table(op.int8_params):
        return s8_call(c, op, sym, "td_softmax_s8", "s8/softmax_s8.c", "td_softmax_s8_params", "xo")
    return emit_table(c, op, sym)


def table_const(c, q: dict) -> Const:
    """The exponential table of a softmax with int8 parameters q, as a weights array."""
    table, last = exp_table(q)
    m, s = int(q["input_multiplier"]), int(q["input_left_shift"])
    # named by what determines it (diff_min follows from the shift): softmaxes with one input
    # quantization share the array (codegen keeps the first of identical ones)
    return Const(f"{c.name}_softmax_exp_m{m}_s{s}".replace("-", "n"), table, "int32_t",
                 f"softmax exp table: Q0.31 exp for max - x = 0..{last - 1}{', then 0' if last < 256 else ''} "
                 f"(input multiplier {m}, left shift {s}, diff_min {q['diff_min']})")


def emit_table(c, op: Op, sym: str, fn: str = "td_softmax_table_s8",
               source: str = "s8/softmax_table_s8.c") -> Call:
    """The call of a table kernel (the portable one, or a backend's variant `fn` in
    `source` with the same parameters, declared in td_softmax_table_s8.h)."""
    q = op.int8_params
    last = exp_table(q)[1]
    k = table_const(c, q)
    params = {"outer": q["outer"], "depth": q["depth"], "table_last": last, "table": k.sym}
    return Call(fn, source, [c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)], "td_softmax_table_s8_params",
                params, consts=[k])


register(
    OpDef("softmax", _float_ref, _emit_f32, layout=_layout, to_int8=_to_int8, quant="fixed",
          fixed_output=FIXED),
    OpDef("softmax_s8", lambda g, op, args: gk.softmax(args[0], op.int8_params),
          _emit_s8,
          check=_check, inplace="elementwise"),
)
