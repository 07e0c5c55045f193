"""Memory planning: every intermediate tensor gets an offset in one arena.

Aliases (reshape-like ops) share their source's bytes. The model's input is
read in place from the caller's buffer and the final op writes straight into
the caller's output buffer, so neither takes arena space.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .ir import Graph

ALIGN = 16
ALIAS_KINDS = {"reshape"}


@dataclass
class Placement:
    region: str  # "arena", "input" or "output"
    offset: int
    nbytes: int


@dataclass
class MemoryPlan:
    placements: dict = field(default_factory=dict)  # tensor name -> Placement
    arena_bytes: int = 0
    lower_bound_bytes: int = 0
    lifetimes: dict = field(default_factory=dict)  # root tensor -> (first step, last step)
    scratch: dict = field(default_factory=dict)  # op name -> arena offset of its scratch buffer


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def alias_roots(g: Graph) -> dict[str, str]:
    """tensor -> the tensor whose bytes it shares."""
    root = {}
    for op in g.ops:
        if op.kind in ALIAS_KINDS:
            src = op.inputs[0]
            root[op.outputs[0]] = root.get(src, src)
    return root


def lifetimes(g: Graph, root: dict) -> dict[str, tuple[int, int]]:
    spans: dict[str, list[int]] = {}
    for step, op in enumerate(g.ops):
        for name in op.outputs:
            r = root.get(name, name)
            spans.setdefault(r, [step, step])
        for name in op.inputs:
            if name and not g.tensors[name].is_const:
                r = root.get(name, name)
                spans.setdefault(r, [step, step])[1] = step
    return {k: (v[0], v[1]) for k, v in spans.items()}


def plan(g: Graph) -> MemoryPlan:
    root = alias_roots(g)
    spans = lifetimes(g, root)
    io = {root.get(n, n): "input" for n in g.inputs}
    io.update({root.get(n, n): "output" for n in g.outputs if root.get(n, n) not in io})
    arena = [r for r in spans if r not in io]
    sizes = {r: g.tensors[r].nbytes for r in arena}
    for step, op in enumerate(g.ops):  # kernel scratch lives during its op only
        choice = op.attrs.get("choice")
        if choice is not None and choice.scratch_bytes:
            key = ("scratch", op.name)
            arena.append(key)
            spans[key] = (step, step)
            sizes[key] = choice.scratch_bytes
    offsets = _greedy_offsets(arena, spans, sizes)
    result = MemoryPlan(lifetimes=spans)
    for name, t in g.tensors.items():
        if t.is_const:
            continue
        r = root.get(name, name)
        if r in io:
            result.placements[name] = Placement(io[r], 0, t.nbytes)
        elif r in offsets:
            result.placements[name] = Placement("arena", offsets[r], t.nbytes)
    result.scratch = {k[1]: offsets[k] for k in arena if isinstance(k, tuple)}
    result.arena_bytes = max((offsets[r] + _align(sizes[r]) for r in arena), default=0)
    result.lower_bound_bytes = _lower_bound(g, spans)
    return result


def _greedy_offsets(names, spans, sizes) -> dict[str, int]:
    """Largest first, each at the lowest offset free for its whole lifetime."""
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offsets = {}
    for name in sorted(names, key=lambda n: (-sizes[n], spans[n][0], str(n))):
        first, last = spans[name]
        size = _align(sizes[name])
        busy = sorted((o, s) for o, s, f, l in placed if f <= last and first <= l)
        offset = 0
        for o, s in busy:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        offsets[name] = offset
        placed.append((offset, size, first, last))
    return offsets


def _lower_bound(g: Graph, spans) -> int:
    """Max over steps of the bytes live at once (inputs and outputs included)."""
    best = 0
    for step in range(len(g.ops)):
        live = sum(g.tensors[r].nbytes for r, (f, l) in spans.items()
                   if f <= step <= l and not isinstance(r, tuple))
        best = max(best, live)
    return best
