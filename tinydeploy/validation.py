"""Validation of a deployed model against the original one (`tinydeploy validate`).

`verify` proves the C computes what the golden model computes. This module answers the
other question a product team asks: how far is the deployed model from the model it was
made from, on the user's own data? It runs the original ONNX model in onnxruntime and
compares each output of the deployed model with it, with the metric set ST Edge AI's
`validate` reports (RMSE, MAE, L2 relative error, cosine similarity, SQNR, top-1
agreement and accuracy against labels), plus each int8 layer's SQNR against the float
model. A service below the API: api.validate compiles, runs and calls it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import golden
from .errors import TinydeployError
from .ir import Graph


@dataclass
class OutputMetrics:
    """One output of the deployed model against the same output of the original model."""

    name: str
    shape: list  # per sample
    rmse: float
    mae: float
    l2_relative: float  # ||deployed - original|| / ||original||
    cosine: float
    sqnr_db: Optional[float]  # None: the outputs are identical (no error at all)
    top1_agreement: Optional[float] = None  # fraction of samples whose argmax agrees (classifiers)
    accuracy: Optional[float] = None  # deployed model, against the labels
    reference_accuracy: Optional[float] = None  # original model, against the labels


@dataclass
class ValidateResult:
    model: str
    reference: str  # the original model run in onnxruntime
    target: str
    dtype: str  # the deployed model's: int8 or float32
    samples: int
    matches_golden: bool  # the C equals the golden model (bit for bit for int8)
    max_abs_diff_golden: float
    outputs: list  # [OutputMetrics]
    layers: list = field(default_factory=list)  # [{name, op, sqnr_db}] int8 vs float, worst first
    instructions_per_inference: Optional[int] = None

    def to_json(self) -> dict:
        return asdict(self)


def output_metrics(name: str, got: np.ndarray, want: np.ndarray, labels=None) -> OutputMetrics:
    """The metric set for one output: got (deployed) and want (original), [N, ...] floats."""
    n = len(want)
    got = got.reshape(n, -1).astype(np.float64)
    want = want.reshape(n, -1).astype(np.float64)
    err = got - want
    signal, noise = float(np.sum(want ** 2)), float(np.sum(err ** 2))
    norms = np.linalg.norm(got) * np.linalg.norm(want)
    m = OutputMetrics(
        name, [int(d) for d in want.shape[1:]],
        rmse=float(np.sqrt(np.mean(err ** 2))), mae=float(np.mean(np.abs(err))),
        l2_relative=float(np.sqrt(noise / signal)) if signal > 0 else float(noise > 0),
        cosine=float(np.sum(got * want) / norms) if norms > 0 else float(noise == 0),
        sqnr_db=float(10 * np.log10(max(signal, 1e-300) / noise)) if noise > 0 else None)
    if want.shape[1] > 1:
        pred, ref = got.argmax(axis=1), want.argmax(axis=1)
        m.top1_agreement = float(np.mean(pred == ref))
        if labels is not None:
            m.accuracy = float(np.mean(pred == labels))
            m.reference_accuracy = float(np.mean(ref == labels))
    return m


def run_original(path: str, inputs: dict, output_names: list, int8_inputs: Optional[dict] = None,
                 output_quant: Optional[dict] = None) -> dict:
    """The original model's outputs in onnxruntime, one sample at a time ({name: [N, ...]}).

    inputs: {input name: float samples [N, ...]} in the model's own layout; int8_inputs the
    same samples quantized, for a model whose input is int8 (a QDQ export with an int8
    input); output_quant {name: (scale, zero point)} dequantizes its int8 outputs. Outputs
    are matched to output_names (the deployed model's) by name, or by position when the
    original model names them differently (e.g. a float model beside its QDQ export)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise TinydeployError("validate runs the original model in onnxruntime, which is not installed: "
                              "pip install onnxruntime (or pip install 'tinydeploy[validate]')") from None
    if Path(path).suffix.lower() == ".tflite":
        raise TinydeployError(f"{path} is a .tflite file, which onnxruntime cannot run: pass the original "
                              "ONNX model with --reference MODEL.onnx")
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own message says what it could not load
        raise TinydeployError(f"onnxruntime cannot load the reference model {path}: "
                              f"{str(exc).splitlines()[0]}") from None
    feeds = sess.get_inputs()
    missing = [i.name for i in feeds if i.name not in inputs]
    if missing:
        if len(feeds) == 1 and len(inputs) == 1:  # one input under another name
            inputs = {feeds[0].name: next(iter(inputs.values()))}
        else:
            raise TinydeployError(f"the reference model {path} has inputs {[i.name for i in feeds]}; "
                                  f"the data has {sorted(inputs)}")
    outs = sess.get_outputs()
    names = [o.name for o in outs]
    if all(n in names for n in output_names):
        chosen = list(output_names)
    elif len(outs) == len(output_names):
        chosen = names
    else:
        raise TinydeployError(f"the reference model {path} has outputs {names}; the deployed model has "
                              f"{output_names}: they cannot be matched by name or by position")
    if missing and int8_inputs is not None and len(int8_inputs) == 1:
        int8_inputs = {feeds[0].name: next(iter(int8_inputs.values()))}
    n = len(next(iter(inputs.values())))
    result: dict = {name: [] for name in output_names}
    for k in range(n):
        feed = {}
        for i in feeds:
            if i.type == "tensor(int8)" and int8_inputs is not None:
                x = np.asarray(int8_inputs[i.name][k], dtype=np.int8)
            else:
                x = np.asarray(inputs[i.name][k], dtype=np.float32)
            if len(i.shape) == x.ndim + 1:
                x = x[None]
            feed[i.name] = x
        try:
            ys = sess.run(chosen, feed)
        except Exception as exc:
            raise TinydeployError(f"onnxruntime could not run the reference model {path}: "
                                  f"{str(exc).splitlines()[0]}") from None
        for name, y in zip(output_names, ys):
            y = np.asarray(y)
            if y.dtype == np.int8 and output_quant and name in output_quant:
                scale, zero_point = output_quant[name]
                y = (y.astype(np.float32) - zero_point) * np.float32(scale)
            result[name].append(y.astype(np.float32))
    return {name: np.stack(v) for name, v in result.items()}


def layer_sqnr(float_graph: Graph, g: Graph, xs: dict, limit: int = 64) -> list:
    """Each int8 layer's output SQNR against the float model on samples xs ({input name:
    [N, ...]}, at most `limit` of them), worst first: [{name, op, output, sqnr_db}]."""
    by_op = golden.layer_sqnr_db(float_graph, g, {k: v[:limit] for k, v in xs.items()})
    rows = [dict(name=op.name, op=op.kind, output=op.outputs[0], sqnr_db=by_op[op.name])
            for op in g.ops if op.name in by_op]
    return sorted(rows, key=lambda r: r["sqnr_db"])

