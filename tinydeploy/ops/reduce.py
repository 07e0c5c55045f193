"""Reductions: mean (ReduceMean, GlobalAveragePool), reduce_max (ReduceMax) and
reduce_sum (ReduceSum) over any axes.

The kernels view the tensor as [outer][reduce][inner]: the reduced axes must be
adjacent in memory, which the layout rule arranges (moving them innermost with a
transpose when neither the current nor the logical order has them adjacent).
Portable kernels: td_mean_f32 (f32/mean.c), td_mean_s8 (s8/pool_s8.c),
td_reduce_max_f32 / td_reduce_sum_f32 (f32/reduce.c), td_reduce_max_s8
(s8/reduce_s8.c). int8 ReduceMax is data movement (the output keeps the input's
quantization); int8 ReduceSum is td_mean_s8 with TFLite SUM's requantization
(multiplier input_scale / output_scale, no 1/count factor).
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk, qmath
from ..ctext import Call
from ..ir import Graph, Int8Params, Op
from ..overflow import fits, offset_bound, shifted
from .base import OpDef, register
from .common import s8_call, scalar_q


def outer_reduce_inner(shape, axes) -> tuple[int, int, int]:
    """[outer][reduce][inner] sizes of a reduction over the adjacent axes."""
    first, last = axes[0], axes[-1]
    return (int(np.prod(shape[:first])), int(np.prod(shape[first:last + 1])), int(np.prod(shape[last + 1:])))


def adjacent_layout(lay, op: Op, what: str) -> None:
    """Reduced axes must be adjacent in memory; restore the logical order if needed."""
    x = op.inputs[0]
    axes = op.attrs["axes"]
    phys = sorted(lay.perm[x].index(a) for a in axes)
    if phys != list(range(phys[0], phys[0] + len(phys))):
        ident = lay.ident(x)
        if sorted(axes) == list(range(min(axes), min(axes) + len(axes))):
            want = ident
        else:  # the kept axes in their current order, then the reduced ones
            want = tuple(a for a in lay.perm[x] if a not in axes) + tuple(sorted(axes))
        op.inputs[0] = x = lay.want(x, want)
        phys = sorted(lay.perm[x].index(a) for a in axes)
    op.attrs["axes"] = phys
    lay.set_out(op, lay.perm[x])


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    out_shape = g.tensors[op.outputs[0]].shape
    fn = {"mean": np.mean, "reduce_max": np.max, "reduce_sum": np.sum}[op.kind]
    return fn(args[0], axis=tuple(op.attrs["axes"]), keepdims=True).astype(np.float32).reshape(out_shape)


def _emit_f32(c, op: Op, sym: str) -> Call:
    outer, reduce, inner = outer_reduce_inner(c.shape(op.inputs[0]), op.attrs["axes"])
    fn, source = {"mean": ("td_mean_f32", "f32/mean.c"), "reduce_max": ("td_reduce_max_f32", "f32/reduce.c"),
                  "reduce_sum": ("td_reduce_sum_f32", "f32/reduce.c")}[op.kind]
    return Call(fn, source, [str(outer), str(reduce), str(inner), c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)])


def _to_int8(g: Graph, op: Op) -> None:
    x = op.inputs[0]
    in_q, out_q = scalar_q(g, x, op), scalar_q(g, op.outputs[0], op)
    outer, reduce, inner = outer_reduce_inner(g.tensors[x].shape, op.attrs["axes"])
    q = qmath.mean_params(in_q[0], in_q[1], out_q[0], out_q[1], reduce)
    q.update(outer=outer, reduce=reduce, inner=inner)
    op.kind, op.int8_params = "mean_s8", Int8Params(q)


def _sum_to_int8(g: Graph, op: Op) -> None:
    """TFLite SUM: the sum of (x - input zero point), requantized by input/output scale."""
    x = op.inputs[0]
    in_q, out_q = scalar_q(g, x, op), scalar_q(g, op.outputs[0], op)
    outer, reduce, inner = outer_reduce_inner(g.tensors[x].shape, op.attrs["axes"])
    m, shift = qmath.requant_multiplier(float(np.float32(in_q[0])) / float(np.float32(out_q[0])))
    op.kind, op.int8_params = "mean_s8", Int8Params({
        "input_offset": -int(in_q[1]), "output_offset": int(out_q[1]), "multiplier": m, "shift": shift,
        "outer": outer, "reduce": reduce, "inner": inner})


def _max_to_int8(g: Graph, op: Op) -> None:
    op.kind = "reduce_max_s8"
    op.int8_params = Int8Params(zip(("outer", "reduce", "inner"),
                                    outer_reduce_inner(g.tensors[op.inputs[0]].shape, op.attrs["axes"])))


def _max_s8(g: Graph, op: Op, args: list) -> np.ndarray:
    q = op.int8_params
    return np.asarray(args[0]).reshape(q["outer"], q["reduce"], q["inner"]).max(axis=1).reshape(
        g.tensors[op.outputs[0]].shape)


def _emit_max_s8(c, op: Op, sym: str) -> Call:
    q = op.int8_params
    return Call("td_reduce_max_s8", "s8/reduce_s8.c", [str(q["outer"]), str(q["reduce"]), str(q["inner"]),
                                                        c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)])


def _check(g: Graph, op: Op) -> None:
    q = op.int8_params
    n = int(q["reduce"])
    fits(f"the sum over {n:,} values", 128 * n)
    shifted(f"the sum over {n:,} values plus the zero-point term", offset_bound(q["input_offset"]) * n,
            q["shift"])


register(
    OpDef("mean", _float_ref, _emit_f32, layout=lambda lay, op: adjacent_layout(lay, op, "mean"),
          to_int8=_to_int8),
    OpDef("reduce_sum", _float_ref, _emit_f32, layout=lambda lay, op: adjacent_layout(lay, op, "sum"),
          to_int8=_sum_to_int8),
    OpDef("reduce_max", _float_ref, _emit_f32, layout=lambda lay, op: adjacent_layout(lay, op, "max"),
          to_int8=_max_to_int8, quant="propagates"),
    OpDef("reduce_max_s8", _max_s8, _emit_max_s8),
    OpDef("mean_s8", lambda g, op, args: gk.mean(args[0], op.int8_params),
          lambda c, op, sym: s8_call(c, op, sym, "td_mean_s8", "s8/pool_s8.c", "td_mean_s8_params", "xo"),
          check=_check),
)
