"""Shared by the backends' int4 variants (not a backend: the name starts with "_").

Every int4 kernel is called the same way: the layer's int8 parameter struct, its input,
a few constant arrays the backend prepared at compile time (starting accumulators,
packed weights, requantization tables), its output, and sometimes a scratch buffer and
a size.  `packed_choice` builds that Choice; `halves_fc` prepares the fully connected
layers of the vector kernels, whose weights are packed in halves (pack_int4_halves).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..ctext import Call, s8_params
from ..ir import Graph, Op
from ..kernel_variants import Choice
from ..ops.common import pack_int4_halves

INT32_MAX = 2 ** 31 - 1


def packed_choice(op: Op, variant: str, fn: str, source: str, ptype: str, arrays: list,
                  scratch: int = 0, extra: Optional[Callable] = None) -> Choice:
    """The variant calling fn(&params, input, arrays..., output[, extra(ctx, op)...]) with
    the op's int8 parameters as the struct ptype; arrays: (field, data, ctype, note[,
    aligned]), emitted as the layer's constant arrays in that order."""
    q = op.int8_params

    def emit(ctx, op_, sym):
        consts = [ctx.const(sym, a[0], a[1], a[2], note=f"{sym}: {a[3]}", aligned=len(a) > 4 and a[4])
                  for a in arrays]
        args = [ctx.ptr(op_.inputs[0])] + [k.sym for k in consts] + [ctx.ptr(op_.outputs[0], False)]
        params = s8_params(ctx, q, sym, consts, ptype)  # appends the per-channel arrays it names
        return Call(fn, source, args + (extra(ctx, op_) if extra else []), ptype, params,
                    consts=consts)
    size = {"int32_t": 4, "uint8_t": 1}
    return Choice(variant, emit, scratch,
                  const_bytes=sum(size[a[2]] * np.asarray(a[1]).size for a in arrays))


def starting_accumulators(g: Graph, op: Op, w: np.ndarray, scale: int = 1) -> Optional[np.ndarray]:
    """bias + input_offset * the sum of each channel's weights (w: [channel][taps]), or
    None when scale times a channel's sums could leave int32 (|x| <= 128)."""
    q = op.int8_params
    b = op.inputs[2] if len(op.inputs) > 2 else ""
    start = (g.tensors[b].data.astype(np.int64).reshape(-1) if b else np.zeros(w.shape[0], np.int64)) \
        + int(q["input_offset"]) * w.sum(1)
    if int(np.max((np.abs(start) + 128 * np.abs(w).sum(1)) * scale)) > INT32_MAX:
        return None
    return start


def halves_fc(g: Graph, op: Op, variant: str, fn: str, source: str) -> Optional[Choice]:
    """A fully connected layer for the vector int4 kernels (td_rvv_fc_s4, td_mve_fc_s4):
    an even input count, the weights in halves (byte j: weight j low, weight H + j high),
    the starting accumulators computed here."""
    w4 = g.tensors[op.inputs[1]].data.astype(np.int64)  # int8 values in [-8, 7], [out][in]
    n_in = w4.shape[1]
    start = starting_accumulators(g, op, w4) if n_in % 2 == 0 else None
    if start is None:
        return None
    return packed_choice(op, variant, fn, source, "td_fc_s8_params", [
        ("start", start, "int32_t", "starting accumulators"),
        ("w", pack_int4_halves(w4), "uint8_t", f"int4 weights, two per byte (weights j and {n_in // 2} + j)")])
