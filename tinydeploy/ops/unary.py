"""Element-wise unary functions (activations) and requantize.

Float: one IR kind per function, one kernel td_unary_f32 (f32/unary.c) with a
td_unary_kind. int8: sigmoid/tanh as TFLite's fixed-point kernels (fixed
output quantization), hard-swish and leaky ReLU as TFLite's, requantize; any
other function becomes a 256-entry lookup table of the float function (lut_s8).
All kernels allow output == input. sigmoid and tanh use TFLite's kernels only at
TFLite's fixed output quantization (QDQ and .tflite models); calibrated models keep
their own output range and get the exact table, which uses all 256 codes.
"""
from __future__ import annotations

import math

import numpy as np

from .. import golden_kernels as gk, qmath
from ..ctext import Call
from ..ir import Graph, Int8Params, Op
from ..overflow import MIN_SHIFT, Overflow, offset_bound, shifted
from .base import OpDef, register
from .common import s8_call, scalar_q


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


_ERF = np.frompyfunc(math.erf, 1, 1)


def _erf(x):
    return _ERF(np.asarray(x, np.float64)).astype(np.float32)


# kind: (float function, td_unary_kind in td_kernels_f32.h)
FUNCTIONS = {
    "clip": (lambda op, x: np.clip(x, op.attrs["lo"], op.attrs["hi"]), "TD_CLIP"),
    "leaky_relu": (lambda op, x: np.where(x >= 0, x, x * op.attrs["alpha"]), "TD_LEAKY_RELU"),
    "sigmoid": (lambda op, x: _sigmoid(x), "TD_SIGMOID"),
    "tanh": (lambda op, x: np.tanh(x), "TD_TANH"),
    "hard_sigmoid": (lambda op, x: np.clip(op.attrs["alpha"] * x + op.attrs["beta"], 0, 1), "TD_HARD_SIGMOID"),
    "hard_swish": (lambda op, x: x * np.clip(x / 6 + 0.5, 0, 1), "TD_HARD_SWISH"),
    "exp": (lambda op, x: np.exp(x), "TD_EXP"),
    "neg": (lambda op, x: -x, "TD_NEG"),
    "abs": (lambda op, x: np.abs(x), "TD_ABS"),
    "sqrt": (lambda op, x: np.sqrt(x), "TD_SQRT"),
    "pow": (lambda op, x: np.power(x, np.float32(op.attrs["alpha"])), "TD_POW"),  # alpha: the exponent
    "erf": (lambda op, x: _erf(x), "TD_ERF"),
    "elu": (lambda op, x: np.where(x < 0, op.attrs["alpha"] * np.expm1(np.minimum(x, 0)), x), "TD_ELU"),
    "softplus": (lambda op, x: np.logaddexp(np.float32(0), x), "TD_SOFTPLUS"),
}
FIXED = {"sigmoid": (1.0 / 256, -128), "tanh": (1.0 / 128, 0)}  # TFLite's int8 output quantization


def float_function(kind: str):
    """(op, x) -> f(x) of a float unary kind."""
    return FUNCTIONS[kind][0]


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    return FUNCTIONS[op.kind][0](op, args[0]).astype(np.float32)


def _emit_f32(c, op: Op, sym: str) -> Call:
    a = op.attrs
    lo, hi = (a["lo"], a["hi"]) if op.kind == "clip" else (-np.inf, np.inf)
    params = dict(size=c.g.tensors[op.inputs[0]].size, kind=FUNCTIONS[op.kind][1],
                  alpha=float(a.get("alpha", 0.0)), beta=float(a.get("beta", 0.0)),
                  act_min=float(lo), act_max=float(hi))
    return Call("td_unary_f32", "f32/unary.c", [c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)],
                "td_unary_f32_params", params)


def _to_int8(g: Graph, op: Op) -> None:
    x, out = op.inputs[0], op.outputs[0]
    in_q, out_q = scalar_q(g, x, op), scalar_q(g, out, op)
    size = g.tensors[x].size
    fixed = FIXED.get(op.kind)
    if fixed is not None and np.float32(out_q[0]) == np.float32(fixed[0]) and out_q[1] == fixed[1]:
        # TFLite's fixed-point kernel, whose output quantization is fixed (bit-exact with TFLM)
        q = (qmath.sigmoid_params if op.kind == "sigmoid" else qmath.tanh_params)(*in_q)
    elif fixed is not None:
        _lut(op, in_q, out_q, size)  # any other output scale: the exact table, not fixed + requantize
        return
    elif op.kind == "hard_swish":
        q = qmath.hardswish_params(in_q[0], in_q[1], out_q[0], out_q[1])
    elif op.kind == "leaky_relu":
        q = qmath.leaky_relu_params(in_q[0], in_q[1], out_q[0], out_q[1], op.attrs["alpha"])
    elif op.kind == "requantize":
        q = qmath.requantize_params(in_q[0], in_q[1], out_q[0], out_q[1])
    else:  # any other element-wise function: a 256-entry table of the float function
        _lut(op, in_q, out_q, size)
        return
    q["size"] = size
    op.kind = {"hard_swish": "hardswish"}.get(op.kind, op.kind) + "_s8"
    op.int8_params = Int8Params(q)


def _lut(op: Op, in_q, out_q, size: int) -> None:
    """The op as a 256-entry table of its float function: for every int8 input code, the
    output code nearest to f(input) (the best any int8 kernel can do)."""
    real = (np.arange(-128, 128) - in_q[1]) * np.float64(in_q[0])
    y = FUNCTIONS[op.kind][0](op, real.astype(np.float32)).astype(np.float64)
    table = np.clip(np.round(y / out_q[0]) + out_q[1], -128, 127).astype(np.int8)
    op.kind, op.int8_params = "lut_s8", Int8Params({"size": size, "table": table})


# -- int8 overflow checks ----------------------------------------------------
def _check_requantize(g: Graph, op: Op) -> None:
    q = op.int8_params
    shifted("the input minus its zero point", offset_bound(q["input_zero_point"]), q["shift"])


def _check_leaky_relu(g: Graph, op: Op) -> None:
    q = op.int8_params
    for which in ("alpha", "identity"):
        shifted(f"the input minus its zero point ({which} branch)", offset_bound(q["input_zero_point"]),
                q[f"output_shift_{which}"])


def _check_q4(g: Graph, op: Op) -> None:
    shift = int(op.int8_params["input_left_shift"])
    if shift < MIN_SHIFT:  # (large left shifts come with an input range radius of 0)
        raise Overflow(f"the input rescaling shift {shift} is out of range; the input scale is "
                       "too small for TFLite's int8 "
                       f"{op.kind[:-3]}")


def _s8(fn_name: str, golden, ptype: str, check=None) -> OpDef:
    kind = fn_name[3:]  # td_<kind>
    return OpDef(kind, lambda g, op, args: golden(args[0], op.int8_params),
                 lambda c, op, sym: s8_call(c, op, sym, fn_name, "s8/activation_s8.c", ptype, "xo"),
                 check=check, inplace="elementwise")


def _emit_lut(c, op: Op, sym: str) -> Call:
    q = op.int8_params
    table = c.const(sym, "table", q["table"], "int8_t")
    return Call("td_lut_s8", "s8/activation_s8.c",
                [str(q["size"]), table.sym, c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)],
                consts=[table])


register(
    # sigmoid/tanh are calibrated like any op: at TFLite's fixed output quantization they
    # run TFLite's kernel, at any other (e.g. a tanh whose outputs stay within +-0.5) a table
    *(OpDef(kind, _float_ref, _emit_f32, to_int8=_to_int8, inplace="elementwise") for kind in FUNCTIONS),
    # requantize: inserted by the int8 stage (a change of scale); identity in float
    OpDef("requantize", lambda g, op, args: args[0], to_int8=_to_int8),
    _s8("td_sigmoid_s8", gk.sigmoid, "td_sigmoid_s8_params", _check_q4),
    _s8("td_tanh_s8", gk.tanh, "td_tanh_s8_params", _check_q4),
    _s8("td_hardswish_s8", gk.hardswish, "td_hardswish_s8_params"),
    _s8("td_leaky_relu_s8", gk.leaky_relu, "td_leaky_relu_s8_params", _check_leaky_relu),
    _s8("td_requantize_s8", gk.requantize, "td_requantize_s8_params", _check_requantize),
    OpDef("lut_s8", lambda g, op, args: gk.lut(args[0], op.int8_params["table"]), _emit_lut,
          inplace="elementwise"),
)
