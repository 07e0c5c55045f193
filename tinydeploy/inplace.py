"""In-place decisions: which ops may write their output over (part of) an input.

Runs after scheduling (it needs to know where each tensor dies) and BEFORE
kernel selection, so that kernel providers see the decision.  The planner
(planner.py) then chooses offsets that honour it, and codegen emits the
matching kernel (runtime_c/src/s8/inplace_s8.c for the overlapping modes,
emitted by inplace_kernels.py: this module only decides).

op.attrs["inplace"] -- contract for kernel providers (backends/arm.py,
backends/riscv.py, ...).  When an op carries this attribute, its output
buffer MAY share bytes with an input buffer as described by "mode".  A
provider must return None (the portable kernel) unless its variant computes
the same result under that sharing:

  {"mode": "elementwise", "input": X}
      The output pointer may EQUAL the pointer of input X (exact aliasing,
      same size).  Any kernel that reads element i before writing element i
      and never reads elements it has already overwritten qualifies (all
      element-wise kernels that process increasing indices do).

  {"mode": "window", "input": X, "fwd": F, "bwd": B}
      conv2d_s8 / depthwise_conv2d_s8: the output may overlap X.  Either the
      output starts at least F bytes BELOW X (the kernel must then walk the
      output pixels in increasing order, each pixel's channels in increasing
      order, writing each value right after reading its inputs), or at least
      B bytes ABOVE X (decreasing order).  F and B come from deltas() below,
      which models exactly that access order.  Only the portable
      td_*_overlap kernels of inplace_s8.c are known to follow it.

  {"mode": "conv_add", "input": X, "fwd": F, "bwd": B, "add": ADD_OP,
   "residual": R, "output": Y, "conv_is_input1": 0|1}
      conv2d_s8 followed by the add_s8 ADD_OP are executed as one kernel
      (td_conv2d_add_s8): the conv's int8 result is never stored; for every
      output element the kernel reads R's element and writes Y's element at
      the same index (Y may EQUAL R), and Y may overlap X as in "window".
      The add op carries op.attrs["fused_into"] = the conv's name and emits
      no code.

How the issue's in-place cases map to these modes: element-wise ops into
their input are "elementwise"; a residual add fused into the conv producing
one operand and written over the other is "conv_add" (the output takes the
residual's bytes); a depthwise conv computed into its own input is "window"
with F or B about one image row plus one pixel (the lag plays the role of a
line buffer, and costs the same bytes); a 1x1 conv with Cout <= Cin is
"window" with F = B < one pixel (the per-pixel buffer), with Cout > Cin the
output region overlaps and contains the input; a stride-2 conv over its
input is "window" with the shift the consumed rows allow.

After planning, op.attrs["inplace"]["direction"] is "forward", "backward"
(the overlapping modes, when the planned buffers do overlap) or None.
Decisions whose overlap the planner did not use are withdrawn (release()),
so the op can get a faster variant.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .ir import Graph, Op



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


def fuse_residual_adds(g: Graph) -> int:
    """Mark add_s8 ops whose operand comes from a conv2d_s8 read by nothing else:
    they become one conv+add kernel (the conv's output is never stored).
    Returns the number of fused pairs.  Structural: independent of the order."""
    producers, consumers = g.producers(), g.consumers()
    order = {op.name: i for i, op in enumerate(g.ops)}
    fused = 0
    for add in g.ops:
        if add.kind != "add_s8" or "fused_into" in add.attrs or len(add.inputs) != 2:
            continue
        out_shape = g.tensors[add.outputs[0]].shape
        cands = []
        for pos, t in enumerate(add.inputs):
            p = producers.get(t)
            if (p is None or p.kind != "conv2d_s8" or "inplace" in p.attrs or t in g.outputs
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
        f, b = deltas(conv.attrs["q"], False)
        conv.attrs["inplace"] = {"mode": "conv_add", "input": conv.inputs[0], "fwd": f, "bwd": b,
                                 "add": add.name, "residual": add.inputs[1 - pos],
                                 "output": add.outputs[0], "conv_is_input1": int(pos == 0),
                                 "direction": None}
        add.attrs["fused_into"] = conv.name
        fused += 1
    return fused


def candidates(g: Graph, op: Op) -> list[dict]:
    """The in-place modes `op` could use if the input dies here (order-independent)."""
    if "fused_into" in op.attrs:
        return []
    mode = op.attrs.get("inplace")
    if mode is not None and mode["mode"] == "conv_add":
        return [mode]
    out = op.outputs[0] if op.outputs else None
    if out is None or g.tensors[out].is_const:
        return []
    ot = g.tensors[out]
    result = []
    allowed = _inplace_mode(op)
    if allowed == "window" and _is_s8_activation(g, op.inputs[0]):
        f, b = deltas(op.attrs["q"], op.kind == "depthwise_conv2d_s8")
        result.append({"mode": "window", "input": op.inputs[0], "fwd": f, "bwd": b})
    elif allowed == "elementwise":
        for x in op.inputs:
            if not x or g.tensors[x].is_const:
                continue
            t = g.tensors[x]
            if t.shape == ot.shape and t.dtype == ot.dtype:
                result.append({"mode": "elementwise", "input": x})
    return result


def mark(g: Graph, dies_at) -> None:
    """Set op.attrs["inplace"] where an input dies at the op.  dies_at(op, tensor)
    says whether `tensor` is read by nothing after `op` (alias-aware, from the planner)."""
    for op in g.ops:
        if "fused_into" in op.attrs:
            continue
        current = op.attrs.get("inplace")
        if current is not None and current["mode"] == "conv_add":
            continue  # structural; the planner decides which overlap it uses
        op.attrs.pop("inplace", None)
        for cand in candidates(g, op):
            if dies_at(op, cand["input"]):
                op.attrs["inplace"] = dict(cand, direction=None)
                break


def unfuse(g: Graph) -> None:
    """Drop every in-place decision (--no-inplace)."""
    for op in g.ops:
        op.attrs.pop("inplace", None)
        op.attrs.pop("fused_into", None)


def release(g: Graph, used: set) -> list:
    """Withdraw window/elementwise decisions the plan did not use; returns their ops."""
    dropped = []
    for op in g.ops:
        mode = op.attrs.get("inplace")
        if mode is not None and mode["mode"] != "conv_add" and op.name not in used:
            op.attrs.pop("inplace")
            dropped.append(op)
    return dropped


def layer_output(op: Op) -> str:
    """The tensor the op's generated layer writes (the add's output for a fused conv+add)."""
    mode = op.attrs.get("inplace")
    if mode is not None and mode["mode"] == "conv_add":
        return mode["output"]
    return op.outputs[0]
