"""Compositions of element-wise functions of one activation (GELU in either of its
forms, SiLU/Swish, decomposed HardSwish, ...) as one op: `elementwise_fn`, whose
attrs["steps"] are the original ops (unary functions, binary ops with a scalar
constant or with two operands computed from the same source) in order, as
(kind, attrs, args) with args ("x",), ("v", step) or ("c", scalar).

`fuse(g)` (run by the int8 pipeline, quantize.optimized_float, before the other
passes) finds, for each float activation x, the largest connected subgraph of such
ops that computes one tensor y from x alone, whose intermediate tensors feed only
the subgraph (and are not model outputs) and have x's shape, and that uses x more
than once (some binary op combines two values computed from x: x * f(x)), and
replaces it by one `elementwise_fn` op (chains of one-input steps keep their ops:
each already is one int8 op or table). In int8 it becomes one exact 256-entry table
(lut_s8, see ops/unary.py): for every input code, the output code nearest to the
composed float function, better than quantizing every step and as fast as any
activation. When the composition is GELU (erf or tanh form), SiLU or HardSwish
(checked numerically, whatever the order of the steps), the op is named after it
("<scope>/gelu") so reports show it. Subgraphs whose intermediate tensors all carry their
own imported quantization (a QDQ model that quantizes every step) are left alone:
each step has its int8 op, as the model asks. When a QDQ model leaves some
intermediate in float (onnxruntime's quantizer writes GELU's x / sqrt(2) -> Erf
without a QDQ pair), the subgraph is fused: its table needs only x's and y's
quantization. Float builds
(fuse(g, for_int8=False), passes.optimize) fuse only the subgraphs that compute GELU,
tanh-GELU or SiLU, into the float kinds `gelu`, `gelu_tanh`, `silu` (td_unary_f32's
TD_GELU, TD_GELU_TANH, TD_SILU); other compositions keep their ops there (elementwise_fn
has no float kernel). The opset-20 Gelu op is lowered to the ops PyTorch writes
for it (frontend._gelu), so it takes the same path.
"""
from __future__ import annotations

import heapq
import math

import numpy as np

from ..ctext import Call
from ..errors import TinydeployError
from ..ir import Graph, Int8Params, Op
from . import binary, unary
from .base import OpDef, register
from .common import clamp, scalar_q
from .layer_norm import common_name

BINARY_OPS = tuple(binary.FUNCTIONS)


def _const_scalar(g: Graph, name: str, rank: int):
    t = g.tensors[name]
    if t.is_const and t.data.size == 1 and t.data.dtype.kind == "f" and len(t.shape) <= rank:
        return np.float32(t.data.reshape(-1)[0])
    return None


def _eligible(g: Graph, op: Op, rank: int) -> bool:
    if op.kind in unary.FUNCTIONS:
        return len(op.inputs) == 1
    if op.kind == "binary" and op.attrs["op"] in BINARY_OPS:
        return all(not g.tensors[i].is_const or _const_scalar(g, i, rank) is not None for i in op.inputs) \
            and any(not g.tensors[i].is_const for i in op.inputs)
    return False


def compose(steps: list, x: np.ndarray) -> np.ndarray:
    """The float function of a list of steps: (kind, attrs, args) with args ("x",), ("v", i)
    (step i's value) or ("c", value), evaluated in float32 as the original ops are."""
    values = []

    def arg(a):
        return x if a[0] == "x" else values[a[1]] if a[0] == "v" else np.float32(a[1])

    for kind, attrs, args in steps:
        op = Op(kind, "", [], [], attrs)
        if kind == "binary":
            y = binary.FUNCTIONS[attrs["op"]](arg(args[0]), arg(args[1]))
            y = clamp(np.asarray(y, np.float32), op)
        else:
            y = unary.FUNCTIONS[kind][0](op, arg(args[0]))
        values.append(np.asarray(y, np.float32))
    return values[-1]


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    with np.errstate(all="ignore"):
        return compose(op.attrs["steps"], np.asarray(args[0], np.float32)).astype(np.float32)


def _to_int8(g: Graph, op: Op) -> None:
    """One 256-entry table (lut_s8): for every input code, the output code nearest to the
    composed function of its real value (as ops/unary.py's tables)."""
    in_q, out_q = scalar_q(g, op.inputs[0], op), scalar_q(g, op.outputs[0], op)
    real = ((np.arange(-128, 128) - in_q[1]) * np.float64(in_q[0])).astype(np.float32)
    with np.errstate(all="ignore"):
        y = np.asarray(_values(g, op, [real]), np.float64) / out_q[0] + out_q[1]
    y = np.nan_to_num(y, nan=float(out_q[1]), posinf=127.0, neginf=-128.0)
    table = np.clip(np.round(y), -128, 127).astype(np.int8)
    op.kind, op.int8_params = "lut_s8", Int8Params({"size": g.tensors[op.inputs[0]].size, "table": table})


def _values(g: Graph, op: Op, args: list) -> np.ndarray:
    """The float function of an elementwise_fn op or a named kind."""
    return _float_ref(g, op, args) if op.kind == "elementwise_fn" else _named_ref(g, op, args)


def _emit_f32(c, op: Op, sym: str):
    raise TinydeployError(f"node '{op.name}' (elementwise_fn): the fused element-wise function has no "
                          "float32 kernel (float builds keep the original ops)")


# -- naming -------------------------------------------------------------------
_ERF = np.frompyfunc(math.erf, 1, 1)
NAMED = {
    "gelu": lambda x: 0.5 * x * (1 + _ERF(x / math.sqrt(2)).astype(np.float64)),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "hard_swish": lambda x: x * np.clip(x + 3, 0, 6) / 6,
}
# Float builds: the named functions with a C kernel (td_unary_kind in td_kernels_f32.h)
FLOAT_KINDS = {"gelu": "TD_GELU", "gelu_tanh": "TD_GELU_TANH", "silu": "TD_SILU"}


def _named_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    with np.errstate(all="ignore"):
        return NAMED[op.kind](np.asarray(args[0], np.float64)).astype(np.float32)


def _emit_named(c, op: Op, sym: str) -> Call:
    params = dict(size=c.g.tensors[op.inputs[0]].size, kind=FLOAT_KINDS[op.kind], alpha=0.0, beta=0.0,
                  act_min=-math.inf, act_max=math.inf)
    return Call("td_unary_f32", "f32/unary.c", [c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)],
                "td_unary_f32_params", params)


def function_name(steps: list) -> str:
    """'gelu', 'gelu_tanh', 'silu', 'hard_swish' when the composition is one of them, else
    'elementwise'."""
    x = np.linspace(-8, 8, 1601).astype(np.float32)
    with np.errstate(all="ignore"):
        y = compose(steps, x).astype(np.float64)
    for name, fn in NAMED.items():
        ref = fn(x.astype(np.float64))
        if np.all(np.abs(y - ref) <= 2e-5 * (1 + np.abs(ref))):
            return name
    return "elementwise"


# -- the pass --------------------------------------------------------------------
def fuse(g: Graph, for_int8: bool = True) -> None:
    """Collapse every fusable element-wise subgraph (see the module docstring); float builds
    (for_int8=False) only those that are a named function with a float kernel (FLOAT_KINDS)."""
    changed = True
    while changed:
        changed = False
        consumers = g.consumers()
        order = {id(op): i for i, op in enumerate(g.ops)}
        for x in list(g.inputs) + [o for op in g.ops for o in op.outputs]:
            t = g.tensors[x]
            if t.is_const or t.dtype != "float32":
                continue
            region = _best_region(g, x, consumers, order, for_int8)
            if region is not None:
                _replace(g, x, *region, for_int8)
                changed = True
                break


def _best_region(g: Graph, x: str, consumers, order, for_int8: bool = True):
    """The largest list of ops (in graph order, >= 2) computing one tensor from x alone
    (None if there is none). order: {id(op): its index in g.ops}."""
    shape = g.tensors[x].shape
    rank = len(shape)
    derived, region, seen = {x}, [], set()
    frontier = [(order[id(op)], id(op), op) for op in consumers.get(x, [])]
    heapq.heapify(frontier)
    while frontier:  # every eligible op whose activation inputs all derive from x, in graph order
        _, _, op = heapq.heappop(frontier)
        if id(op) in seen or not _eligible(g, op, rank):
            continue
        if any(not g.tensors[i].is_const and i not in derived for i in op.inputs):
            continue
        if g.tensors[op.outputs[0]].shape != shape:
            continue
        seen.add(id(op))
        region.append(op)
        derived.add(op.outputs[0])
        for user in consumers.get(op.outputs[0], []):
            heapq.heappush(frontier, (order[id(user)], id(user), user))
    if not any(_reuses(g, op) for op in region):
        return None  # nothing combines two values of x: chains of one-input steps stay as they are
    region.sort(key=lambda op: order[id(op)])
    best = None
    for exit_op in reversed(region):  # the ops y = exit_op's output needs, checked for leaks
        y = exit_op.outputs[0]
        need, want = [], {y}
        for op in reversed(region):
            if op.outputs[0] in want:
                need.append(op)
                want.update(i for i in op.inputs if i != x and not g.tensors[i].is_const)
        need.reverse()
        inner = [op.outputs[0] for op in need if op is not exit_op]
        members = {id(op) for op in need}
        if len(need) < 2 or not any(_reuses(g, op) for op in need) or \
                all(g.tensors[n].quant is not None for n in inner) or \
                any(n in g.outputs or any(id(u) not in members for u in consumers.get(n, [])) for n in inner):
            continue
        if not for_int8 and function_name(_steps(g, x, need)) not in FLOAT_KINDS:
            continue
        if best is None or len(need) > len(best[0]):
            best = (need, exit_op)
    return best


def _reuses(g: Graph, op: Op) -> bool:
    """A binary op of two activations (in a region: two values computed from x)."""
    return op.kind == "binary" and not any(g.tensors[i].is_const for i in op.inputs)


def _steps(g: Graph, x: str, ops: list) -> list:
    index = {op.outputs[0]: i for i, op in enumerate(ops)}
    rank = len(g.tensors[x].shape)
    steps = []
    for op in ops:
        args = []
        for i in op.inputs:
            if i == x:
                args.append(("x",))
            elif i in index:
                args.append(("v", index[i]))
            else:
                args.append(("c", float(_const_scalar(g, i, rank))))
        steps.append((op.kind, dict(op.attrs), args))
    return steps


def _replace(g: Graph, x: str, ops: list, exit_op: Op, for_int8: bool = True) -> None:
    steps = _steps(g, x, ops)
    name = function_name(steps)
    full_name = common_name([op.name for op in ops], name)
    if for_int8:
        fused = Op("elementwise_fn", full_name, [x], list(exit_op.outputs), {"steps": steps, "function": name})
    else:
        fused = Op(name, full_name, [x], list(exit_op.outputs), {})
    at = g.ops.index(exit_op)
    g.ops[at] = fused
    for op in ops:
        if op is not exit_op:
            g.ops.remove(op)
    g.remove_unused()


register(
    OpDef("elementwise_fn", _float_ref, _emit_f32, to_int8=_to_int8, inplace="elementwise"),
    *(OpDef(kind, _named_ref, _emit_named, to_int8=_to_int8, inplace="elementwise") for kind in FLOAT_KINDS),
)
