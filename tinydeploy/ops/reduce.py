"""Reductions over adjacent axes: mean (ReduceMean, GlobalAveragePool).

The tensor is viewed as [outer][reduce][inner]. Portable kernels: td_mean_f32
(f32/mean.c), td_mean_s8 (s8/pool_s8.c).
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk, qmath
from ..ctext import Call
from ..errors import TinydeployError
from ..ir import Graph, Op
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
        op.inputs[0] = x = lay.want(x, lay.ident(x))
        phys = sorted(axes)
        if phys != list(range(phys[0], phys[0] + len(phys))):
            raise TinydeployError(f"node '{op.name}': a {what} over non-adjacent axes is not supported")
    op.attrs["axes"] = phys
    lay.set_out(op, lay.perm[x])


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    out_shape = g.tensors[op.outputs[0]].shape
    return args[0].mean(axis=tuple(op.attrs["axes"]), keepdims=True).reshape(out_shape)


def _emit_f32(c, op: Op, sym: str) -> Call:
    outer, reduce, inner = outer_reduce_inner(c.shape(op.inputs[0]), op.attrs["axes"])
    return Call("td_mean_f32", "f32/mean.c",
                [str(outer), str(reduce), str(inner), c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)])


def _to_int8(g: Graph, op: Op) -> None:
    x = op.inputs[0]
    in_q, out_q = scalar_q(g, x, op), scalar_q(g, op.outputs[0], op)
    outer, reduce, inner = outer_reduce_inner(g.tensors[x].shape, op.attrs["axes"])
    q = qmath.mean_params(in_q[0], in_q[1], out_q[0], out_q[1], reduce)
    q.update(outer=outer, reduce=reduce, inner=inner)
    op.kind, op.attrs["q"] = "mean_s8", q


def _check(g: Graph, op: Op) -> None:
    q = op.attrs["q"]
    n = int(q["reduce"])
    fits(f"the sum over {n:,} values", 128 * n)
    shifted(f"the sum over {n:,} values plus the zero-point term", offset_bound(q["input_offset"]) * n,
            q["shift"])


register(
    OpDef("mean", _float_ref, _emit_f32, layout=lambda lay, op: adjacent_layout(lay, op, "mean"),
          to_int8=_to_int8),
    OpDef("mean_s8", lambda g, op, args: gk.mean(args[0], op.attrs["q"]),
          lambda c, op, sym: s8_call(c, op, sym, "td_mean_s8", "s8/pool_s8.c", "td_mean_s8_params", "xo"),
          check=_check),
)
