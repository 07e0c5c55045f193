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


def input_values(g: Graph, x, dtype) -> dict:
    """One sample of the graph's inputs -> {input name: array of its shape}.  x: a dict
    {input name: value}, or one array: the input (several inputs: their values
    flattened and concatenated in the graph's input order)."""
    if isinstance(x, dict):
        return {n: np.asarray(x[n]).astype(dtype, copy=False).reshape(g.tensors[n].shape) for n in g.inputs}
    flat = np.asarray(x).astype(dtype, copy=False).reshape(-1)
    values, at = {}, 0
    for n in g.inputs:
        size = g.tensors[n].size
        values[n] = flat[at:at + size].reshape(g.tensors[n].shape)
        at += size
    if at != flat.size:
        raise ValueError(f"a sample of {flat.size} values for inputs of {at} values")
    return values


def run(g: Graph, x, keep_all: bool = False) -> dict:
    """One sample (with batch dim) -> {tensor name: value} (only outputs unless keep_all).
    x: as input_values takes it (several inputs: a dict by name)."""
    values = input_values(g, x, np.float32)
    for op in g.ops:
        args = [values[i] if i in values else g.const(i) for i in op.inputs if i]
        values[op.outputs[0]] = evaluate(g, op, args)
    return values if keep_all else {o: values[o] for o in g.outputs}
