"""A numpy interpreter of the float IR (after the passes: NHWC, fused).

Used to calibrate int8 quantization (observe every tensor's range) and to
measure each layer's quantization error. Batch 1, like the generated code.
Each op's semantics is its OpDef.evaluate (tinydeploy/ops).
"""
from __future__ import annotations

import numpy as np

from . import ops
from .ir import Graph, Op


def evaluate(g: Graph, op: Op, args: list) -> np.ndarray:
    d = ops.lookup(op.kind)
    if d is None or d.is_int8:
        raise NotImplementedError(f"float reference: op {op.kind}")
    return np.asarray(d.evaluate(g, op, args)).astype(np.float32, copy=False)


def run(g: Graph, x: np.ndarray, keep_all: bool = False) -> dict:
    """One sample (with batch dim) -> {tensor name: value} (only outputs unless keep_all)."""
    values = {g.inputs[0]: x.astype(np.float32).reshape(g.tensors[g.inputs[0]].shape)}
    for op in g.ops:
        args = [values[i] if i in values else g.const(i) for i in op.inputs if i]
        values[op.outputs[0]] = evaluate(g, op, args)
    return values if keep_all else {o: values[o] for o in g.outputs}
