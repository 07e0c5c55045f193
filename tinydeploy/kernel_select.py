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
from .stage_types import Modes, fused_adds

__all__ = ["Choice", "select"]


def select(g: Graph, target, modes: Optional[Modes] = None) -> dict[str, Choice]:
    """{op name: Choice} for the ops that get a variant from the target's backend.
    modes: the in-place decisions ({op name: stage_types.InplaceMode}); the backend
    sees each op's and offers only variants correct under it.  An add fused into
    its conv (conv_add) runs inside the conv's kernel and gets none."""
    modes = modes or {}
    backend = backends.load(target.backend)
    fused = fused_adds(modes)
    choices: dict[str, Choice] = {}
    for op in g.ops:
        if op.name in fused:
            continue
        choice: Optional[Choice] = backend.choose(g, op, target, modes.get(op.name))
        if choice is not None:
            choices[op.name] = choice
    return choices
