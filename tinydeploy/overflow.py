"""Bounds of int32 intermediates in the int8 kernels (used by the ops' overflow checks).

The int8 kernels add up products in int32 and requantize with
MultiplyByQuantizedMultiplier, whose positive shifts are left shifts of that
int32 value. Each int8 op's `check` (tinydeploy/ops) bounds, from the layer's
actual integer parameters, the largest magnitude an intermediate can reach for
ANY int8 input with these helpers; tinydeploy.checks refuses the layer when
the bound does not fit int32.
"""
from __future__ import annotations

import numpy as np

from .ir import Graph, Op

INT32_MAX = (1 << 31) - 1
MIN_SHIFT, MAX_SHIFT = -31, 30


class Overflow(Exception):
    """An int8 layer whose int32 arithmetic could overflow (raised by OpDef.check)."""


def fits(what: str, bound: int) -> None:
    if bound > INT32_MAX:
        raise Overflow(f"{what} can reach {bound:,} (int32 holds {INT32_MAX:,})")


def shifted(what: str, bound: int, shift: int) -> int:
    """Check a MultiplyByQuantizedMultiplier input of magnitude <= bound; return the output bound."""
    shift = int(shift)
    if not MIN_SHIFT <= shift <= MAX_SHIFT:
        raise Overflow(f"the requantization shift {shift} is out of range ({MIN_SHIFT}..{MAX_SHIFT}); "
                       "the scales of its input, weights and output are too far apart")
    fits(what, bound)
    if shift > 0:
        fits(f"{what} shifted left by {shift} bits for requantization", bound << shift)
    # |srdhm(x, m)| <= |x| (m < 2^31); rdbpot only shrinks it: output <= bound * 2^max(shift, 0).
    return (bound << max(shift, 0)) + 1


def offset_bound(offset: int) -> int:
    """max |x + offset| over int8 x (and over the x * w + offset * w split)."""
    return 128 + abs(int(offset))


def mac_layer(g: Graph, op: Op, sums: np.ndarray, q: dict) -> None:
    """sums[c]: sum |w| of output channel c."""
    bias = g.const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    bias = np.zeros(len(sums), np.int64) if bias is None else \
        np.broadcast_to(np.abs(np.asarray(bias, np.int64)).reshape(-1), sums.shape)
    acc = bias + offset_bound(q["input_offset"]) * sums
    shifts = np.broadcast_to(np.asarray(q["shift"], np.int64).reshape(-1), sums.shape)
    for c in range(len(sums)):
        shifted(f"the int32 accumulator of output channel {c} (|bias| {int(bias[c]):,}, "
                f"sum |w| {int(sums[c]):,})", int(acc[c]), int(shifts[c]))


