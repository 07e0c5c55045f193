"""Kernel selection: for each op, the fastest kernel variant the target supports.

Runs after quantization and before memory planning, because a variant may
need scratch memory, which the planner places in the arena. Variants come
from providers (one module per instruction-set family); the portable kernel
of codegen.EMITTERS is the fallback and the reference every variant is
tested against.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .ir import Graph, Op


@dataclass
class Choice:
    """A kernel variant chosen for one op."""

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


def _providers() -> list:
    from . import kernels_arm, kernels_riscv
    return [kernels_arm.choose, kernels_riscv.choose]


def select(g: Graph, target) -> None:
    """Set op.attrs['choice'] for ops that get a target-specific variant."""
    providers = _providers()
    for op in g.ops:
        op.attrs.pop("choice", None)
        for choose in providers:
            choice: Optional[Choice] = choose(g, op, target)
            if choice is not None:
                op.attrs["choice"] = choice
                break
