"""Kernel selection: for each op, the fastest kernel variant the target supports.

Runs after quantization and before memory planning, because a variant may
need scratch memory, which the planner places in the arena. Variants come
from providers (one module per instruction-set family), each returning a
kernel_variants.Choice; the portable kernel
of codegen.EMITTERS is the fallback and the reference every variant is
tested against.
"""
from __future__ import annotations

from typing import Optional

from . import kernels_arm, kernels_riscv
from .ir import Graph
from .kernel_variants import Choice

__all__ = ["Choice", "select"]


def _providers() -> list:
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
