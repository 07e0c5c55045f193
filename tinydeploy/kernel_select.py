"""Kernel selection: for each op, the fastest kernel variant the target supports.

Runs after quantization and before memory planning, because a variant may
need scratch memory, which the planner places in the arena. Variants come
from the target's backend (tinydeploy/backends/<name>.py, named by the
target's JSON), which returns a kernel_variants.Choice; the op's portable
kernel (OpDef.emit) is the fallback and the reference every variant is
tested against.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

from . import backends
from .ir import Graph
from .kernel_variants import Choice
from .stage_types import Modes, fused_adds

__all__ = ["Choice", "select", "OPTIMIZE_MODES"]

# --optimize: which of a variant and its compact twin (Choice.compact: int8 instead of
# pre-widened int16 weights) each layer runs.  speed: the fast one everywhere; size: the
# most compact one everywhere (a twin's own twin: compact requantization records too);
# balanced: the first twin (unless it is size_only), except the layers balance() picks.
OPTIMIZE_MODES = ("size", "balanced", "speed")
# Not a user's mode: size's choices and the fit_only twins too (api.compile takes it when
# the size build is over the board's flash).
FIT = "fit"


def select(g: Graph, target, modes: Optional[Modes] = None, optimize: str = "balanced",
           keep_fast: frozenset = frozenset()) -> dict[str, Choice]:
    """{op name: Choice} for the ops that get a variant from the target's backend.
    modes: the in-place decisions ({op name: stage_types.InplaceMode}); the backend
    sees each op's and offers only variants correct under it.  An add fused into
    its conv (conv_add) runs inside the conv's kernel and gets none.  optimize: one
    of OPTIMIZE_MODES; keep_fast: in balanced mode, the layers that keep their fast
    variant (balance())."""
    modes = modes or {}
    backend = backends.load(target.backend)
    fused = fused_adds(modes)
    choices: dict[str, Choice] = {}
    for op in g.ops:
        if op.name in fused:
            continue
        if g.int4_weights(op) and not getattr(backend, "HANDLES_INT4", False):
            continue  # int4 weights: the portable s4 kernels, unless the backend reads them packed
        choice: Optional[Choice] = backend.choose(g, op, target, modes.get(op.name))
        if choice is not None:
            choices[op.name] = choice
    fast = set(choices) if optimize == "speed" else keep_fast if optimize == "balanced" else set()
    return {k: replace(c, compact=None) if k in fast or c.compact is None else
            _smallest(c.compact, optimize == FIT) if optimize in ("size", FIT) else
            replace(c, compact=None) if c.compact.size_only else c.compact
            for k, c in choices.items()}


def _smallest(c: Choice, fit: bool = False) -> Choice:
    """The end of a chain of compact twins (e.g. int8 weights, then compact records too);
    fit_only twins only when `fit`."""
    while c.compact is not None and (fit or not c.compact.fit_only):
        c = c.compact
    return c


def balance(choices: dict[str, Choice], headroom: int) -> frozenset:
    """The layers (running compact twins in `choices`) that get their fast variant back
    in balanced mode: most instructions saved per extra flash byte first, while the
    extra bytes stay within `headroom`."""
    twins = {k: c for k, c in choices.items() if c.flash_saved > 0 and c.extra_instructions > 0}
    fast, spent = set(), 0
    for k in sorted(twins, key=lambda k: (-twins[k].extra_instructions / twins[k].flash_saved, k)):
        if spent + twins[k].flash_saved <= headroom:
            fast.add(k)
            spent += twins[k].flash_saved
    return frozenset(fast)
