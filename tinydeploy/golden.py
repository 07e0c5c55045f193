"""The golden model: a bit-exact numpy interpreter of the int8 IR.

Each int8 op runs its OpDef.evaluate (tinydeploy/ops), which calls
tinydeploy.golden_kernels with the same integer parameters (op.int8_params)
the generated C receives, so C and golden agree bit for bit.
"""
from __future__ import annotations

import numpy as np

from . import float_ref, ops
from .ir import Graph, Op


def evaluate(g: Graph, op: Op, args: list) -> np.ndarray:
    """One int8 op by its OpDef.evaluate (the golden kernel); reshape is an alias."""
    d = ops.lookup(op.kind)
    if d is None or not (d.is_int8 or op.kind == "reshape"):
        raise NotImplementedError(f"golden model: op {op.kind}")
    y = d.evaluate(g, op, args)
    return np.asarray(y, np.int8).reshape(g.tensors[op.outputs[0]].shape)


def run_sample(g: Graph, x, keep_all: bool = False) -> dict:
    """One int8 sample -> {tensor name: value} (only the outputs unless keep_all).  x: a
    dict {input name: value}, or one array: the input (several inputs: their values
    flattened and concatenated in the graph's input order, as the firmware harness
    and the host driver pass them)."""
    values = float_ref.input_values(g, x, np.int8)
    for op in g.ops:
        args = [values[i] if i in values else g.const(i) for i in op.inputs if i]
        values[op.outputs[0]] = evaluate(g, op, args)
    return values if keep_all else {o: values[o] for o in g.outputs}


def packed_outputs(g: Graph, values: dict) -> np.ndarray:
    """Every graph output of one sample, flattened and concatenated in the graph's order
    (one output: that output, flat)."""
    return np.concatenate([values[o].reshape(-1) for o in g.outputs])


def run(g: Graph, x: np.ndarray) -> np.ndarray:
    """int8 samples [N, ...] -> int8 outputs [N, size] (several inputs: samples as
    run_sample takes them; several outputs: each row holds them all, in order)."""
    return np.stack([packed_outputs(g, run_sample(g, s)) for s in x])


def reference_outputs(g: Graph, samples) -> np.ndarray:
    """The outputs [N, size] a build must give for samples [N, ...] (as the library takes
    them; any iterable, e.g. one wrapped in a progress bar): the bit-exact golden model
    for int8 builds, the float interpreter (float_ref) for float32 builds.  Several
    inputs or outputs: each sample and each row holds them all, flattened and
    concatenated in the graph's order."""
    if g.tensors[g.outputs[0]].dtype == "int8":
        return np.stack([packed_outputs(g, run_sample(g, s)) for s in samples])
    return np.stack([packed_outputs(g, float_ref.run(g, s)) for s in samples])


def layer_sqnr_db(float_graph: Graph, g: Graph, x) -> dict:
    """Each layer's output SQNR (dB), int8 golden vs float on samples x ({input name: [N, ...]},
    or one array for a one-input model): {op name: dB}."""
    inq = {n: g.tensors[n].quant.scalar() for n in g.inputs}
    signal: dict = {}
    noise: dict = {}
    xs = x if isinstance(x, dict) else {g.inputs[0]: x}
    for i in range(len(xs[g.inputs[0]])):
        sample = {n: xs[n][i] for n in g.inputs}
        ref = float_ref.run(float_graph, sample, keep_all=True)
        xq = {n: np.clip(np.round(sample[n] / inq[n][0]) + inq[n][1], -128, 127).astype(np.int8)
              for n in g.inputs}
        got = run_sample(g, xq, keep_all=True)
        for op in g.ops:
            name = op.outputs[0]
            if name not in ref or op.kind == "reshape":
                continue
            s, z = g.tensors[name].quant.scalar()
            deq = (got[name].astype(np.float64) - z) * s
            signal[name] = signal.get(name, 0.0) + float(np.sum(ref[name].astype(np.float64) ** 2))
            noise[name] = noise.get(name, 0.0) + float(np.sum((ref[name] - deq.reshape(ref[name].shape)) ** 2))
    return {op.name: round(float(10 * np.log10(max(signal[op.outputs[0]], 1e-30)
                                               / max(noise[op.outputs[0]], 1e-30))), 2)
            for op in g.ops if op.outputs[0] in signal}


def output_sqnr_db(float_graph: Graph, g: Graph, x) -> float:
    """The model's output SQNR (dB) over samples x ({input name: [N, ...]}): the int8 golden
    outputs, dequantized, against the float model's (every output's signal and noise summed)."""
    inq = {n: g.tensors[n].quant.scalar() for n in g.inputs}
    signal = noise = 0.0
    for i in range(len(x[g.inputs[0]])):
        sample = {n: x[n][i] for n in g.inputs}
        ref = float_ref.run(float_graph, sample)
        xq = {n: np.clip(np.round(sample[n] / inq[n][0]) + inq[n][1], -128, 127).astype(np.int8)
              for n in g.inputs}
        got = run_sample(g, xq)
        for fo, o in zip(float_graph.outputs, g.outputs):
            s, z = g.tensors[o].quant.scalar()
            want = ref[fo].astype(np.float64).reshape(-1)
            deq = (got[o].astype(np.float64).reshape(-1) - z) * s
            signal += float(np.sum(want ** 2))
            noise += float(np.sum((want - deq) ** 2))
    return float(10 * np.log10(max(signal, 1e-30) / max(noise, 1e-30)))
