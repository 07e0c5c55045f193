"""Kernel selection: for each op, the fastest kernel variant the target supports.

Runs after quantization and before memory planning, because a variant may
need scratch memory, which the planner places in the arena. Variants come
from the target's backend (tinydeploy/backends/<name>.py, named by the
target's JSON), which returns a kernel_variants.Choice; the op's portable
kernel (OpDef.emit) is the fallback and the reference every variant is
tested against.
"""
from __future__ import annotations

from typing import Optional

from . import backends
from .ir import Graph
from .kernel_variants import Choice

__all__ = ["Choice", "select"]


def select(g: Graph, target) -> None:
    """Set op.attrs['choice'] for ops that get a variant from the target's backend."""
    backend = backends.load(target.backend)
    for op in g.ops:
        op.attrs.pop("choice", None)
        choice: Optional[Choice] = backend.choose(g, op, target)
        if choice is not None:
            op.attrs["choice"] = choice
