"""Numerical safety of an int8 graph: no int32 intermediate can overflow.

The int8 kernels (portable C, every SIMD variant, the golden model) add up
products in int32 and requantize with MultiplyByQuantizedMultiplier, whose
positive shifts are left shifts of that int32 value. Each int8 layer's op
(OpDef.check in tinydeploy/ops) bounds, from the layer's actual integer
parameters (weights, bias, zero points, multipliers and shifts), the largest
magnitude any intermediate
can reach for ANY int8 input, and refuses the layer (TinydeployError naming
it) when the bound does not fit in int32:

* conv2d / depthwise / fully connected: per output channel
  |bias| + (128 + |input_offset|) * sum|w|  -- sound for every order of
  accumulation and for kernels that fold input_offset * sum(w) into the
  bias -- and that bound times 2^shift when the requantization shifts left;
* add: (x + offset) << left_shift, the rescaled sum, and its output shift;
* mul: the product of the two offset inputs, then the output shift;
* batch matmul: k * (128 + |a_offset|) * (128 + |b_offset|), then the shift;
* average pool: the window sum; mean: the sum over the reduced axes plus
  offset * count, then the shift;
* softmax: the Q12.19 sum of up to `depth` exponentials (depth < 4096);
* requantize, leaky ReLU, concat inputs, sigmoid/tanh: the shifted input;
* every shift must be a valid C shift count (-31..30).
"""
from __future__ import annotations

from . import ops
from .errors import TinydeployError
from .ir import Graph
from .overflow import Overflow


def layer_problems(g: Graph) -> list[str]:
    """One line per int8 layer whose int32 arithmetic could overflow (each op's OpDef.check)."""
    problems = []
    for op in g.ops:
        d = ops.lookup(op.kind)
        if d is None or d.check is None or op.int8_params is None:
            continue
        try:
            d.check(g, op)
        except Overflow as exc:
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
