"""The golden model: a bit-exact numpy interpreter of the int8 IR.

Each int8 op runs its OpDef.evaluate (tinydeploy/ops), which calls
tinydeploy.golden_kernels with the same integer parameters (op.attrs["q"])
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


def run_sample(g: Graph, x: np.ndarray, keep_all: bool = False) -> dict:
    values = {g.inputs[0]: np.asarray(x, np.int8).reshape(g.tensors[g.inputs[0]].shape)}
    for op in g.ops:
        args = [values[i] if i in values else g.const(i) for i in op.inputs if i]
        values[op.outputs[0]] = evaluate(g, op, args)
    return values if keep_all else {o: values[o] for o in g.outputs}


def run(g: Graph, x: np.ndarray) -> np.ndarray:
    """int8 samples [N, ...] -> int8 outputs [N, ...] of the model's one output."""
    return np.stack([run_sample(g, s)[g.outputs[0]].reshape(-1) for s in x])


def reference_outputs(g: Graph, samples) -> np.ndarray:
    """The outputs [N, size] a build must give for samples [N, ...] (as the library takes
    them; any iterable, e.g. one wrapped in a progress bar): the bit-exact golden model
    for int8 builds, the float interpreter (float_ref) for float32 builds."""
    out = g.outputs[0]
    if g.tensors[out].dtype == "int8":
        return np.stack([run_sample(g, s)[out].reshape(-1) for s in samples])
    return np.stack([float_ref.run(g, s[None])[out].reshape(-1) for s in samples])


def layer_sqnr(float_graph: Graph, g: Graph, x: np.ndarray) -> None:
    """Each layer's output SQNR (dB), int8 golden vs float, into op.sqnr_db."""
    inq = g.tensors[g.inputs[0]].quant.scalar()
    signal: dict = {}
    noise: dict = {}
    for sample in x:
        ref = float_ref.run(float_graph, sample[None], keep_all=True)
        xq = np.clip(np.round(sample / inq[0]) + inq[1], -128, 127).astype(np.int8)
        got = run_sample(g, xq, keep_all=True)
        for op in g.ops:
            name = op.outputs[0]
            if name not in ref or op.kind == "reshape":
                continue
            s, z = g.tensors[name].quant.scalar()
            deq = (got[name].astype(np.float64) - z) * s
            signal[name] = signal.get(name, 0.0) + float(np.sum(ref[name].astype(np.float64) ** 2))
            noise[name] = noise.get(name, 0.0) + float(np.sum((ref[name] - deq.reshape(ref[name].shape)) ** 2))
    for op in g.ops:
        name = op.outputs[0]
        if name in signal:
            sqnr = 10 * np.log10(max(signal[name], 1e-30) / max(noise[name], 1e-30))
            op.sqnr_db = round(float(sqnr), 2)
