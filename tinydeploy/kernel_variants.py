"""What a kernel provider returns: the description of one kernel variant.

A module of its own below kernel_select and the backends (tinydeploy/backends):
the backends build Choices, kernel_select asks the target's backend.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class Choice:
    """A kernel variant chosen for one op (a backend's choose() makes it,
    kernel_select collects it, the planner keeps it or one of its `smaller`
    alternatives in MemoryPlan.choices, codegen calls its emitter)."""

    name: str  # e.g. "arm_dsp_conv_1x1"; recorded in report.json
    emit: Callable  # (codegen._Ctx, op, sym) -> codegen.Call
    scratch_bytes: int = 0
    # The variant is correct with its output EXACTLY over its "window" input
    # (out == in).  The planner then merges the two buffers instead of
    # overlapping them with a shift, and the scratch becomes mandatory.
    alias_inplace: bool = False
    # A slower alternative needing less scratch, tried by the planner when
    # this one's scratch does not fit its budget.
    smaller: Optional["Choice"] = None
    detail: str = ""  # how the variant is configured (report.json "variant_detail")
    # The same kernel storing less flash (int8 instead of pre-widened int16 weights) at
    # some instructions' cost; kernel_select takes it by the --optimize mode.
    compact: Optional["Choice"] = None
    const_bytes: int = 0  # the constant data (weights, biases, records) the variant ships
    # A compact twin's cost against its fast variant: estimated instructions per inference
    # more, and the flash bytes it saves.
    extra_instructions: int = 0
    flash_saved: int = 0
    # The op's portable kernel standing as a variant's compact twin (its emit unused:
    # MemoryPlan.choice gives None for it, so codegen emits the portable kernel).
    portable: bool = False
    # A compact twin only --optimize size takes (balanced keeps the variant it twins):
    # flash for instructions and RAM no other mode would trade.
    size_only: bool = False
    # A compact twin taken only when even --optimize size's build is over the board's
    # flash (kernel_select "fit"): e.g. the portable kernel where a fast one's code is large.
    fit_only: bool = False
    # The scratch only where the arena has room for it (it never grows the arena): a
    # speed-up not worth RAM, e.g. a GEMM's weights widened once per tile of pixels.
    scratch_in_room: bool = False
