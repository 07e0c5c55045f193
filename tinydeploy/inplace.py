"""In-place decisions: which ops may write their output over (part of) an input.

Runs after scheduling (it needs to know where each tensor dies) and BEFORE
kernel selection, so that kernel providers see the decision.  The planner
(planner.py) then chooses offsets that honour it, and codegen emits the
matching kernel (runtime_c/src/s8/inplace_s8.c for the overlapping modes,
emitted by inplace_kernels.py: this module only decides).

The decisions are stage_types.InplaceMode records, keyed by op name, which
this module returns (it does not edit the ops); that class documents the
contract kernel providers follow for each mode ("elementwise", "window",
"conv_add").  A conv_add mode names the add_s8 op fused into the conv: that
add emits no code of its own.

How the issue's in-place cases map to these modes: element-wise ops into
their input are "elementwise"; a residual add fused into the conv producing
one operand and written over the other is "conv_add" (the output takes the
residual's bytes); a depthwise conv computed into its own input is "window"
with F or B about one image row plus one pixel (the lag plays the role of a
line buffer, and costs the same bytes); a 1x1 conv with Cout <= Cin is
"window" with F = B < one pixel (the per-pixel buffer), with Cout > Cin the
output region overlaps and contains the input; a stride-2 conv over its
input is "window" with the shift the consumed rows allow.

The planner returns the decisions it was given with each one's direction
filled in (MemoryPlan.inplace_modes): "forward", "backward" (the overlapping
modes, when the planned buffers do overlap), "alias" or None.  Decisions whose
overlap the planner did not use can be withdrawn (release()), so the op can
get a faster variant.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .ir import Graph, Op
from .stage_types import InplaceMode, Modes, fused_adds, layer_output  # noqa: F401 (layer_output: public here)


def _inplace_mode(op: Op):
    """What the op's kernels allow (OpDef.inplace): "elementwise", "window" or None."""
    d = ops.lookup(op.kind)
    return d.inplace if d is not None else None


# --------------------------------------------------------------------------
# Access-order model of the overlapping kernels
# --------------------------------------------------------------------------
def _tap_range(origin: np.ndarray, dil: int, k: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Valid taps [lo, hi) with 0 <= origin + t * dil < size (as valid_taps() in the C)."""
    lo = np.where(origin < 0, (-origin + dil - 1) // dil, 0)
    last_ok = origin + (k - 1) * dil >= size
    hi_edge = np.where(size - origin > 0, (size - origin + dil - 1) // dil, 0)
    hi = np.where(last_ok, hi_edge, k)
    return lo, np.maximum(hi, lo)


def unit_reads(q: dict, depthwise: bool) -> tuple[np.ndarray, np.ndarray]:
    """For every output byte u (NHWC order): the lowest input byte offset its
    computation reads and one past the highest (lo = +big, hi = -1 if it reads none)."""
    oy = np.arange(q["out_h"]) * q["stride_h"] - q["pad_top"]
    ox = np.arange(q["out_w"]) * q["stride_w"] - q["pad_left"]
    ky0, ky1 = _tap_range(oy, q["dil_h"], q["k_h"], q["in_h"])
    kx0, kx1 = _tap_range(ox, q["dil_w"], q["k_w"], q["in_w"])
    y_lo, y_hi = oy + ky0 * q["dil_h"], oy + (ky1 - 1) * q["dil_h"]
    x_lo, x_hi = ox + kx0 * q["dil_w"], ox + (kx1 - 1) * q["dil_w"]
    empty = (ky1 <= ky0)[:, None] | (kx1 <= kx0)[None, :]
    pmin = (y_lo[:, None] * q["in_w"] + x_lo[None, :]).reshape(-1)
    pmax = (y_hi[:, None] * q["in_w"] + x_hi[None, :]).reshape(-1)
    empty = empty.reshape(-1)
    in_c, out_c = q["in_c"], q["out_c"]
    oc = np.arange(out_c)
    if depthwise:
        ch = oc // (out_c // in_c)
        c_lo, c_hi = ch, ch + 1
    else:
        cg, ocg = in_c // q["groups"], out_c // q["groups"]
        grp = oc // ocg
        c_lo, c_hi = grp * cg, (grp + 1) * cg
    lo = (pmin[:, None] * in_c + c_lo[None, :]).astype(np.int64)
    hi = (pmax[:, None] * in_c + c_hi[None, :]).astype(np.int64)
    big = np.int64(1) << 40
    lo[empty] = big
    hi[empty] = -1
    return lo.reshape(-1), hi.reshape(-1)


def deltas(q: dict, depthwise: bool) -> tuple[int, int]:
    """(F, B): the output may start F bytes below the input (forward order) or
    B bytes above it (backward order) -- see the module docstring."""
    lo, hi = unit_reads(q, depthwise)
    n = lo.size
    u = np.arange(n, dtype=np.int64)
    big = np.int64(1) << 40
    # forward: writing byte u must not clobber any byte read by a later unit
    nxt = np.minimum.accumulate(lo[::-1])[::-1]
    later_min = np.concatenate([nxt[1:], [big]])
    fwd = int(max(0, np.max(u + 1 - later_min)))
    # backward: units processed n-1 .. 0; writing u must not clobber reads of units < u
    prev = np.maximum.accumulate(hi)
    earlier_max = np.concatenate([[-1], prev[:-1]])
    bwd = int(max(0, np.max(earlier_max - u)))
    return fwd, bwd


# --------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------
def _is_s8_activation(g: Graph, name: str) -> bool:
    t = g.tensors.get(name)
    return t is not None and not t.is_const and t.dtype == "int8"


def fuse_residual_adds(g: Graph) -> dict[str, InplaceMode]:
    """The conv2d_s8 ops whose output is read only by an add_s8: each pair becomes
    one conv+add kernel (the conv's output is never stored).  Returns
    {conv name: its conv_add mode}.  Structural: independent of the order."""
    producers, consumers = g.producers(), g.consumers()
    order = {op.name: i for i, op in enumerate(g.ops)}
    modes: dict[str, InplaceMode] = {}
    fused: set = set()
    for add in g.ops:
        if add.kind != "add_s8" or add.name in fused or len(add.inputs) != 2:
            continue
        out_shape = g.tensors[add.outputs[0]].shape
        cands = []
        for pos, t in enumerate(add.inputs):
            p = producers.get(t)
            if (p is None or p.kind != "conv2d_s8" or p.name in modes or t in g.outputs
                    or g.int4_weights(p)  # the fused kernel reads int8 weights
                    or len(consumers.get(t, [])) != 1 or g.tensors[t].shape != out_shape
                    or not _is_s8_activation(g, t)):
                continue
            other = add.inputs[1 - pos]
            # x + conv(x): the residual is the conv's own input, which the output may overlap at a
            # shift; the kernels read the residual at the output's index only, so they would read
            # bytes the shifted output already overwrote (found by the differential fuzzer)
            if other == t or other == p.inputs[0] or g.tensors[other].shape != out_shape \
                    or not _is_s8_activation(g, other):
                continue
            cands.append((order[p.name], pos, p))
        if not cands:
            continue
        _, pos, conv = max(cands, key=lambda c: c[0])  # the later-produced operand: the main path
        f, b = deltas(conv.int8_params, False)
        modes[conv.name] = InplaceMode("conv_add", conv.inputs[0], f, b, add=add.name,
                                       residual=add.inputs[1 - pos], output=add.outputs[0],
                                       conv_is_input1=int(pos == 0))
        fused.add(add.name)
    return modes


def candidates(g: Graph, op: Op, modes: Modes) -> list[InplaceMode]:
    """The in-place modes `op` could use if the input dies here (order-independent).
    modes: the structural decisions so far (fuse_residual_adds)."""
    if op.name in fused_adds(modes):
        return []
    mode = modes.get(op.name)
    if mode is not None and mode.fused:
        return [mode]
    out = op.outputs[0] if op.outputs else None
    if out is None or g.tensors[out].is_const:
        return []
    ot = g.tensors[out]
    result = []
    allowed = _inplace_mode(op)
    # the overlapping (window) kernels read int8 weights: int4 layers run their own kernels
    if allowed == "window" and _is_s8_activation(g, op.inputs[0]) and not g.int4_weights(op):
        f, b = deltas(op.int8_params, op.kind == "depthwise_conv2d_s8")
        result.append(InplaceMode("window", op.inputs[0], f, b))
    elif allowed == "elementwise":
        for x in op.inputs:
            if not x or g.tensors[x].is_const:
                continue
            t = g.tensors[x]
            if t.shape == ot.shape and t.dtype == ot.dtype:
                result.append(InplaceMode("elementwise", x))
    return result


def mark(g: Graph, dies_at, modes: Modes) -> dict[str, InplaceMode]:
    """The structural (conv_add) decisions of `modes`, plus a window or elementwise
    mode for every other op where an input dies.  dies_at(op, tensor) says whether
    `tensor` is read by nothing after `op` (alias-aware, from the planner)."""
    fused = fused_adds(modes)
    result: dict[str, InplaceMode] = {}
    for op in g.ops:
        if op.name in fused:
            continue
        current = modes.get(op.name)
        if current is not None and current.fused:
            result[op.name] = current  # structural; the planner decides which overlap it uses
            continue
        for cand in candidates(g, op, modes):
            if dies_at(op, cand.input):
                result[op.name] = cand
                break
    return result


def release(modes: Modes, used: set) -> dict[str, InplaceMode]:
    """`modes` without the window/elementwise decisions the plan did not use."""
    return {name: m for name, m in modes.items() if m.fused or name in used}
