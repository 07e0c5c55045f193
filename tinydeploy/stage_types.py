"""Typed records the planning stages hand forward (instead of op.attrs keys).

    schedule.py        orders the ops                  Schedule (api applies its order to g.ops)
    inplace.py         decides InplaceModes            {op name: InplaceMode}
    kernel_select.py   picks kernel variants           {op name: kernel_variants.Choice}
    planner.py         places tensors and returns both, as used (MemoryPlan.inplace_modes,
                       MemoryPlan.choices), with each overlap's direction filled in
    codegen / backends emit from the graph and the plan; neither changes the graph

A leaf module: it imports nothing of tinydeploy, so every stage can use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

MODES = ("elementwise", "window", "conv_add")
SCHEDULE_METHODS = ("trivial", "dp", "greedy")


@dataclass(frozen=True)
class Schedule:
    """The execution order schedule.reorder chose: op names, first to last, and the
    estimated peak memory of the graph's own order (before) and of this one (after)."""

    order: tuple  # op names
    method: str  # one of SCHEDULE_METHODS
    peak_before: int
    peak_after: int

    def __post_init__(self):
        if self.method not in SCHEDULE_METHODS:
            raise ValueError(f"schedule method {self.method!r} is not one of {SCHEDULE_METHODS}")
DIRECTIONS = (None, "forward", "backward", "alias")


@dataclass(frozen=True)
class InplaceMode:
    """An op's output MAY share bytes with one of its inputs, as described by `mode`.

    Contract for kernel providers (backends/arm.py, backends/riscv.py, ...): when
    an op has a mode, a provider must return None (the portable kernel) unless its
    variant computes the same result under that sharing.

      "elementwise"  the output pointer may EQUAL the pointer of `input` (exact
                     aliasing, same size).  Any kernel that reads element i before
                     writing element i, and never reads elements it has already
                     overwritten, qualifies.
      "window"       conv2d_s8 / depthwise_conv2d_s8: the output may overlap
                     `input`.  Either it starts at least `fwd` bytes BELOW the input
                     (the kernel walks output pixels in increasing order, each
                     pixel's channels in increasing order, writing each value right
                     after reading its inputs), or at least `bwd` bytes ABOVE it
                     (decreasing order).  inplace.deltas() models that order.
      "conv_add"     conv2d_s8 and the add_s8 op `add` run as one kernel: the conv's
                     int8 result is never stored; for every output element the
                     kernel reads `residual`'s element and writes `output`'s element
                     at the same index (`output` may EQUAL `residual`), and
                     `output` may overlap `input` as in "window".  The add emits no
                     code of its own (it is "fused into" the conv).
    """

    mode: str  # one of MODES
    input: str  # the input tensor the output may overwrite (conv_add: the conv's input)
    fwd: int = 0  # window/conv_add: least bytes the output starts below `input` (forward order)
    bwd: int = 0  # window/conv_add: least bytes the output starts above `input` (backward order)
    add: Optional[str] = None  # conv_add: name of the add_s8 op fused into the conv
    residual: Optional[str] = None  # conv_add: the add's other operand
    output: Optional[str] = None  # conv_add: the add's output, which the fused kernel writes
    conv_is_input1: int = 1  # conv_add: 1 if the conv's result is the add's first operand
    # Set by the planner: how the planned buffers overlap.  "forward"/"backward":
    # the output overlaps the input shifted (window/conv_add, the kernel walks in
    # that order); "alias": the output is exactly over the input (a variant with
    # Choice.alias_inplace); None: the planned buffers do not overlap that way.
    direction: Optional[str] = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"in-place mode must be one of {MODES}, not {self.mode!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"in-place direction must be one of {DIRECTIONS}, not {self.direction!r}")
        if (self.mode == "conv_add") != (self.add is not None):
            raise ValueError("an in-place mode names its fused add exactly when it is conv_add")

    @property
    def fused(self) -> bool:
        """The op runs together with the add op `add` (conv_add)."""
        return self.mode == "conv_add"

    @property
    def overlaps_shifted(self) -> bool:
        """The mode lets the output overlap the input at a shift (window, conv_add)."""
        return self.mode in ("window", "conv_add")


Modes = Mapping[str, InplaceMode]  # op name -> its in-place decision


def fused_adds(modes: Modes) -> dict[str, str]:
    """add op name -> name of the conv it is fused into (conv_add modes)."""
    return {m.add: conv for conv, m in modes.items() if m.fused}


def hidden_tensors(g, modes: Modes) -> set:
    """Tensors never stored: the conv outputs of fused conv+add pairs."""
    return {op.outputs[0] for op in g.ops if op.name in modes and modes[op.name].fused}


def layer_output(op, mode: Optional[InplaceMode]) -> str:
    """The tensor the op's generated layer writes (the add's output for a fused conv+add)."""
    if mode is not None and mode.fused:
        return mode.output
    return op.outputs[0]
