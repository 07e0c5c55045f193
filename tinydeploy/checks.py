"""Numerical safety of an int8 graph: no int32 intermediate can overflow.

The int8 kernels (portable C, every SIMD variant, the golden model) add up
products in int32 and requantize with MultiplyByQuantizedMultiplier, whose
positive shifts are left shifts of that int32 value. For each int8 layer this
module bounds, from the layer's actual integer parameters (weights, bias,
zero points, multipliers and shifts), the largest magnitude any intermediate
can reach for ANY int8 input, and refuses the layer (TinydeployError naming
it) when the bound does not fit in int32:

* conv2d / depthwise / fully connected: per output channel
  |bias| + (128 + |input_offset|) * sum|w|  -- sound for every order of
  accumulation and for kernels that fold input_offset * sum(w) into the
  bias -- and that bound times 2^shift when the requantization shifts left;
* add: (x + offset) << left_shift, the rescaled sum, and its output shift;
* mul: the product of the two offset inputs, then the output shift;
* average pool: the window sum; mean: the sum over the reduced axes plus
  offset * count, then the shift;
* softmax: the Q12.19 sum of up to `depth` exponentials (depth < 4096);
* requantize, leaky ReLU, concat inputs, sigmoid/tanh: the shifted input;
* every shift must be a valid C shift count (-31..30).
"""
from __future__ import annotations

import numpy as np

from .errors import TinydeployError
from .ir import Graph, Op

INT32_MAX = (1 << 31) - 1
MIN_SHIFT, MAX_SHIFT = -31, 30


class _Overflow(Exception):
    pass


def _fits(what: str, bound: int) -> None:
    if bound > INT32_MAX:
        raise _Overflow(f"{what} can reach {bound:,} (int32 holds {INT32_MAX:,})")


def _shifted(what: str, bound: int, shift: int) -> int:
    """Check a MultiplyByQuantizedMultiplier input of magnitude <= bound; return the output bound."""
    shift = int(shift)
    if not MIN_SHIFT <= shift <= MAX_SHIFT:
        raise _Overflow(f"the requantization shift {shift} is out of range ({MIN_SHIFT}..{MAX_SHIFT}); "
                        "the scales of its input, weights and output are too far apart")
    _fits(what, bound)
    if shift > 0:
        _fits(f"{what} shifted left by {shift} bits for requantization", bound << shift)
    # |srdhm(x, m)| <= |x| (m < 2^31); rdbpot only shrinks it: output <= bound * 2^max(shift, 0).
    return (bound << max(shift, 0)) + 1


def _offset_bound(offset: int) -> int:
    """max |x + offset| over int8 x (and over the x * w + offset * w split)."""
    return 128 + abs(int(offset))


def _mac_layer(g: Graph, op: Op, sums: np.ndarray, q: dict) -> None:
    """sums[c]: sum |w| of output channel c."""
    bias = g.const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    bias = np.zeros(len(sums), np.int64) if bias is None else \
        np.broadcast_to(np.abs(np.asarray(bias, np.int64)).reshape(-1), sums.shape)
    acc = bias + _offset_bound(q["input_offset"]) * sums
    shifts = np.broadcast_to(np.asarray(q["shift"], np.int64).reshape(-1), sums.shape)
    for c in range(len(sums)):
        _shifted(f"the int32 accumulator of output channel {c} (|bias| {int(bias[c]):,}, "
                 f"sum |w| {int(sums[c]):,})", int(acc[c]), int(shifts[c]))


def _conv(g: Graph, op: Op) -> None:
    w = np.abs(np.asarray(g.const(op.inputs[1]), np.int64))
    if op.kind.startswith("depthwise"):  # [k_h][k_w][out_c]
        sums = w.reshape(-1, w.shape[-1]).sum(axis=0)
    else:  # [out_c][k_h][k_w][in_c / groups] or [out][in]
        sums = w.reshape(w.shape[0], -1).sum(axis=1)
    _mac_layer(g, op, sums, op.attrs["q"])


def _add(g: Graph, op: Op) -> None:
    q = op.attrs["q"]
    total = 0
    for i in (1, 2):
        shifted = _offset_bound(q[f"input{i}_offset"]) << int(q["left_shift"])
        _fits(f"input {i} shifted left by {q['left_shift']} bits", shifted)
        total += _shifted(f"rescaled input {i}", shifted, q[f"input{i}_shift"])
    _shifted("the sum of the rescaled inputs", total, q["output_shift"])


def _mul(g: Graph, op: Op) -> None:
    q = op.attrs["q"]
    prod = _offset_bound(q["input1_offset"]) * _offset_bound(q["input2_offset"])
    _shifted("the product of the inputs", prod, q["output_shift"])


def _avg_pool(g: Graph, op: Op) -> None:
    q = op.attrs["q"]
    _fits(f"the sum over a {q['k_h']}x{q['k_w']} window", 128 * int(q["k_h"]) * int(q["k_w"]))


def _mean(g: Graph, op: Op) -> None:
    q = op.attrs["q"]
    n = int(q["reduce"])
    _fits(f"the sum over {n:,} values", 128 * n)
    _shifted(f"the sum over {n:,} values plus the zero-point term", _offset_bound(q["input_offset"]) * n,
             q["shift"])


def _softmax(g: Graph, op: Op) -> None:
    depth = int(op.attrs["q"]["depth"])
    _fits(f"the Q12.19 sum of {depth:,} exponentials", depth << 19)


def _requantize(g: Graph, op: Op) -> None:
    q = op.attrs["q"]
    _shifted("the input minus its zero point", _offset_bound(q["input_zero_point"]), q["shift"])


def _leaky_relu(g: Graph, op: Op) -> None:
    q = op.attrs["q"]
    for which in ("alpha", "identity"):
        _shifted(f"the input minus its zero point ({which} branch)", _offset_bound(q["input_zero_point"]),
                 q[f"output_shift_{which}"])


def _q4(g: Graph, op: Op) -> None:
    q = op.attrs["q"]
    shift = int(q["input_left_shift"])
    if shift < MIN_SHIFT:  # (large left shifts come with an input range radius of 0)
        raise _Overflow(f"the input rescaling shift {shift} is out of range; the input scale is "
                        "too small for TFLite's int8 "
                        f"{op.kind[:-3]}")


def _concat(g: Graph, op: Op) -> None:
    for i, inp in enumerate(op.attrs["q"]["inputs"]):
        if inp["requantize"]:
            _shifted(f"input {i} minus its zero point", _offset_bound(inp["input_zero_point"]), inp["shift"])


CHECKS = {
    "conv2d_s8": _conv, "depthwise_conv2d_s8": _conv, "fully_connected_s8": _conv,
    "add_s8": _add, "mul_s8": _mul, "avg_pool_s8": _avg_pool, "mean_s8": _mean,
    "softmax_s8": _softmax, "requantize_s8": _requantize, "leaky_relu_s8": _leaky_relu,
    "sigmoid_s8": _q4, "tanh_s8": _q4, "concat_s8": _concat,
}


def layer_problems(g: Graph) -> list[str]:
    """One line per int8 layer whose int32 arithmetic could overflow."""
    problems = []
    for op in g.ops:
        check = CHECKS.get(op.kind)
        if check is None or "q" not in op.attrs:
            continue
        try:
            check(g, op)
        except _Overflow as exc:
            problems.append(f"layer '{op.name}' ({op.kind}): {exc}")
    return problems


def check_graph(g: Graph) -> None:
    """Refuse a graph with a layer whose worst case could overflow int32."""
    problems = layer_problems(g)
    if problems:
        raise TinydeployError(
            f"{len(problems)} layer(s) could overflow int32 arithmetic for some inputs:\n  "
            + "\n  ".join(problems)
            + "\nsuch a layer would give wrong results; reduce its weights, bias or reduction "
              "length, or fix its quantization scales (or compile with --quantize float32)")
