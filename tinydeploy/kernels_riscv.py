"""Kernel variants for RISC-V (scalar rv32, vector Zve32x/V)."""
from __future__ import annotations

from typing import Optional

from .ir import Graph, Op
from .kernel_select import Choice


def choose(g: Graph, op: Op, target) -> Optional[Choice]:
    """The variant for `op` on `target`, or None for the portable kernel."""
    return None
