"""The int8 stage: import QDQ annotations or calibrate, then convert ops to int8.

Every activation tensor ends up with per-tensor int8 quantization; weights
are per-channel symmetric int8 and biases int32. Each int8 op carries its
complete kernel parameters in `op.int8_params` (field names = the C struct's,
values from qmath), so the golden model and the generated C use the very
same integers.
"""
from __future__ import annotations

import copy
from typing import Optional

import numpy as np

from . import float_ref, ops, passes, qmath, weight_rounding
from .data import load_calibration
from .errors import TinydeployError
from .ir import Graph, Op, QuantParams
from .ops.common import quant_from_range


def _quant_rule(op: Op) -> str:
    """The op's int8 output rule (OpDef.quant): own, propagates, follows_input or fixed."""
    d = ops.lookup(op.kind)
    return d.quant if d is not None else "own"


# --------------------------------------------------------------------------
# QDQ import
# --------------------------------------------------------------------------
def _qparams(op: Op) -> QuantParams:
    zp = op.attrs["zero_point"] - (128 if op.attrs["qtype"] == "uint8" else 0)
    return QuantParams(np.float32(op.attrs["scale"]), np.int32(zp))


def absorb_qdq(g: Graph) -> None:
    """QuantizeLinear/DequantizeLinear pairs become quantization annotations on tensors."""
    for op in list(g.ops):
        if op.kind not in ("quantize", "dequantize"):
            continue
        src = g.tensors[op.inputs[0]]
        q = _qparams(op)
        if src.quant is None:
            src.quant = q
        elif not q.same_as(src.quant):
            op.kind, op.attrs = "requantize", {}  # a real change of scale
            g.tensors[op.outputs[0]].quant = q
            continue
        passes._bypass(g, op)
    for t in g.tensors.values():
        if not t.is_const:
            t.dtype = "float32"  # float semantics with annotations until conversion
    _propagate_through_moves(g)


def _propagate_through_moves(g: Graph) -> None:
    """Data movement (OpDef.quant == "propagates") keeps its input's quantization, both ways."""
    changed = True
    while changed:
        changed = False
        for op in g.ops:
            if _quant_rule(op) != "propagates":
                continue
            a, b = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
            if a.quant is None and b.quant is not None:
                a.quant, changed = b.quant, True
            elif b.quant is None and a.quant is not None:
                b.quant, changed = a.quant, True


# --------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------
def _range_of(values: np.ndarray, method: str) -> tuple[float, float]:
    if method == "minmax":
        return float(values.min()), float(values.max())
    if method == "percentile":
        return float(np.percentile(values, 0.01)), float(np.percentile(values, 99.99))
    return _mse_range(values)


def _mse_range(values: np.ndarray) -> tuple[float, float]:
    """The clipping range (shrunk from min/max) with the least quantization MSE."""
    lo, hi = float(values.min()), float(values.max())
    best, best_err = (lo, hi), np.inf
    for f in np.linspace(1.0, 0.3, 15):
        a, b = min(lo * f, 0.0), max(hi * f, 0.0)
        scale = max(b - a, 1e-12) / 255.0
        q = np.clip(np.round(values / scale), np.round(a / scale), np.round(b / scale)) * scale
        err = float(np.mean((values - q) ** 2))
        if err < best_err:
            best, best_err = (a, b), err
    return best


def calibrate(g: Graph, x: np.ndarray, method: str, progress=None) -> None:
    """Run the float graph over the samples and annotate every activation."""
    samples: dict[str, list] = {}
    rng = np.random.default_rng(0)
    xs = x if isinstance(x, dict) else {g.inputs[0]: x}  # {input name: samples}
    rows = [{n: xs[n][i] for n in g.inputs} for i in range(len(xs[g.inputs[0]]))]
    iterator = progress(rows, "calibrating") if progress else rows
    for sample in iterator:
        with np.errstate(all="ignore"):  # non-finite values are reported below, not warned about
            values = float_ref.run(g, sample, keep_all=True)
        for op in g.ops:  # values inside ops that to_int8 needs (an LSTM's cell state)
            d = ops.lookup(op.kind)
            if d is not None and d.internal_ranges is not None:
                args = [values[i] if i in values else g.const(i) for i in op.inputs if i]
                with np.errstate(all="ignore"):
                    for key, v in d.internal_ranges(g, op, args).items():
                        op.internal_absmax[key] = max(op.internal_absmax.get(key, 0.0), float(v))
        for name, v in values.items():
            flat = v.reshape(-1)
            keep = flat if method == "minmax" or flat.size <= 4096 else rng.choice(flat, 4096, replace=False)
            entry = samples.setdefault(name, [])
            if method == "minmax":
                entry[:] = [min(entry[0], float(flat.min())) if entry else float(flat.min()),
                            max(entry[1], float(flat.max())) if entry else float(flat.max())]
            else:
                entry.append(keep)
    producers = g.producers()
    for name in list(g.inputs) + [o for op in g.ops for o in op.outputs]:
        op = producers.get(name)
        t = g.tensors[name]
        rule = _quant_rule(op) if op is not None else "own"
        if rule == "fixed":
            scale, zero_point = ops.get(op.kind).fixed_output
            t.quant = QuantParams(np.float32(scale), np.int32(zero_point))
        elif rule in ("propagates", "follows_input"):
            t.quant = g.tensors[op.inputs[0]].quant
        else:
            s = samples[name]
            lo, hi = (s[0], s[1]) if method == "minmax" else _range_of(np.concatenate(s), method)
            if not (np.isfinite(lo) and np.isfinite(hi)):
                where = f"the output of node '{op.name}'" if op is not None else "the model input"
                raise TinydeployError(f"calibration: tensor '{name}' ({where}) takes non-finite values "
                                      "(NaN or infinity) on the calibration data; fix the model (e.g. a "
                                      "Sqrt of negative values) or the data")
            t.quant = quant_from_range(lo, hi)


# --------------------------------------------------------------------------
# Conversion to int8 ops (each op's OpDef.to_int8, tinydeploy/ops)
# --------------------------------------------------------------------------
def _convert_op(g: Graph, op: Op) -> None:
    """Convert one op; qmath's refusals of a parameter combination become user errors."""
    kind = op.kind
    try:
        ops.get(kind, op.name).to_int8(g, op)
    except ValueError as exc:
        tb = exc.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        if tb.tb_frame.f_globals.get("__name__") != qmath.__name__:
            raise
        raise TinydeployError(f"node '{op.name}' ({kind}): its quantization cannot be represented in "
                              f"int8 ({exc})") from None


def convert(g: Graph) -> None:
    for op in list(g.ops):
        if op.kind == "reshape" or op.kind.endswith("_s8"):
            continue
        d = ops.lookup(op.kind)
        if d is None or d.to_int8 is None:
            raise TinydeployError(f"node '{op.name}': no int8 kernel for op '{op.kind}'; "
                                  "compile with --quantize float32")
        _convert_op(g, op)
    for op in list(g.ops):  # requantizes inserted after fixed-output ops
        if op.kind == "requantize":
            _convert_op(g, op)
    for t in g.tensors.values():
        if not t.is_const:
            if t.quant is None:
                raise TinydeployError(f"tensor '{t.name}' has no int8 quantization parameters")
            t.dtype = "int8"
    g.remove_unused()


def optimized_float(g: Graph) -> Graph:
    """The float IR the int8 conversion starts from (QDQ pairs absorbed, optimized, in place):
    the float model each int8 layer is compared with (its tensors keep their names)."""
    absorb_qdq(g)
    passes.optimize(g, for_int8=True)
    _propagate_through_moves(g)
    return g


# --------------------------------------------------------------------------
# Weight precision (--weights): int8 everywhere, int4 everywhere, or int4 where it is cheap
# --------------------------------------------------------------------------
WEIGHT_MODES = ("int8", "int4", "mixed")
INT4_KINDS = ("conv2d", "fully_connected")  # the float kinds whose weights may be int4
DEFAULT_INT4_BUDGET_DB = 1.0
MIXED_SAMPLES = 32  # calibration samples --weights mixed measures the output SQNR on


def int4_candidates(g: Graph) -> list:
    """The layers whose weights may be int4: convolutions (plain, grouped, depthwise) and
    fully connected layers, with constant weights."""
    return [op for op in g.ops if op.kind in INT4_KINDS and g.tensors[op.inputs[1]].is_const]


def _with_int4(g: Graph, names, rounded: dict) -> Graph:
    """A copy of the calibrated float graph, converted to int8 with int4 weights in `names`
    (rounded: weight_rounding.int4_weights of those it has)."""
    trial = copy.deepcopy(g)
    _mark_int4(trial, names, rounded)
    convert(trial)
    from .ops import attention
    attention.fuse_int8(trial)
    return trial


def _mark_int4(g: Graph, names, rounded: dict) -> None:
    for op in g.ops:
        if op.name in names:
            op.attrs["weight_bits"] = 4
    weight_rounding.attach(g, {n: rounded[n] for n in names if n in rounded})


def _samples(x: dict, n: int) -> list:
    return [{k: v[i] for k, v in x.items()} for i in range(min(n, len(next(iter(x.values())))))]


def choose_int4(g: Graph, float_graph: Graph, x, budget_db: float, rounded: dict) -> dict:
    """--weights mixed: {layer name: output SQNR it costs alone (dB)} of the layers that get
    int4 weights.  Each layer's cost alone is measured first (the model's output SQNR on the
    calibration samples x, int8 weights elsewhere); then, the layers that save the most bytes
    first, a layer whose cost alone is within budget_db is kept when the whole model's SQNR
    with it stays within budget_db of the all-int8 model's.  (Costs do not add up: errors of
    two layers may cancel or compound, so each addition is measured; the largest first
    because flash is what int4 buys.)"""
    from .golden import output_sqnr_db
    base = output_sqnr_db(float_graph, _with_int4(g, (), rounded), x)
    saved = {op.name: g.tensors[op.inputs[1]].size // 2 for op in int4_candidates(g)}
    cost = {n: base - output_sqnr_db(float_graph, _with_int4(g, (n,), rounded), x) for n in saved}
    chosen: dict = {}
    for n in sorted(saved, key=lambda n: (-saved[n], n)):
        if cost[n] > budget_db:
            continue
        trial = set(chosen) | {n}
        if base - output_sqnr_db(float_graph, _with_int4(g, trial, rounded), x) <= budget_db:
            chosen[n] = round(float(cost[n]), 2)
    return chosen


def to_int8(g: Graph, calib=None, method: str = "minmax", progress=None, weights: str = "int8",
            int4_budget_db: float = DEFAULT_INT4_BUDGET_DB) -> Graph:
    """Float or QDQ IR (ONNX layout) -> optimized int8 IR.  weights: WEIGHT_MODES (int4
    weights in every convolution and fully connected layer, or where they cost at most
    int4_budget_db of output SQNR on the calibration data)."""
    if weights not in WEIGHT_MODES:
        raise TinydeployError(f"--weights must be one of {', '.join(WEIGHT_MODES)}, not '{weights}'")
    if weights == "mixed" and calib is None:
        raise TinydeployError("--weights mixed measures what int4 weights cost on the calibration data: "
                              "pass --calib DATA.npz (or use --weights int4)")
    optimized_float(g)
    float_graph = None
    if calib is not None:
        x = load_calibration(calib, g)
        calibrate(g, x, method, progress)
        float_graph, calib_x = copy.deepcopy(g), x
    int4: dict = {}
    rounded: dict = {}
    if weights != "int8" and calib is not None:  # int4 rounding that knows the layers' inputs
        rounded = weight_rounding.int4_weights(g, int4_candidates(g), _samples(calib_x, MIXED_SAMPLES))
    if weights == "int4":
        int4 = {op.name: None for op in int4_candidates(g)}
    elif weights == "mixed":
        int4 = choose_int4(g, float_graph, {n: v[:MIXED_SAMPLES] for n, v in calib_x.items()}, int4_budget_db,
                           rounded)
    for op in g.ops:
        if op.name in int4:
            op.int4_cost_db = int4[op.name]
    _mark_int4(g, int4, rounded)
    convert(g)
    from .ops import attention  # after calibration: the fused op keeps the scores' quantization
    attention.fuse_int8(g)
    if float_graph is not None:
        from .golden import layer_sqnr_db
        sqnr = layer_sqnr_db(float_graph, g, {n: v[:32] for n, v in calib_x.items()})
        for op in g.ops:
            if op.name in sqnr:
                op.sqnr_db = sqnr[op.name]
    return g
