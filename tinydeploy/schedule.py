"""Memory-aware scheduling: the operator order with the smallest peak of live bytes.

For graphs with branches (residual blocks, inception modules, U-Nets) the
order in which the branches run changes how many tensors are live at once.
`reorder` searches all topological orders by dynamic programming over the
sets of executed ops (the "down-sets" of the DAG): best(S) = min over ops u
ready after S of max(cost(S, u), best(S + u)), where cost(S, u) is the
bytes live while u runs -- every produced tensor some op outside S still
reads, u's inputs and outputs -- minus what u's best in-place mode saves
(tinydeploy/inplace.py) when an input dies at u.  Chains and graphs with a
few parallel branches have few down-sets; when there are more than
MAX_STATES, a greedy list scheduler (smallest cost next) is used instead.

A conv fused with the add that consumes it (inplace.fuse_residual_adds)
is one unit: the add always runs right after its conv.
"""
from __future__ import annotations


from typing import Optional

from .ir import Graph
from . import inplace as ip
from .stage_types import Modes, Schedule, fused_adds, hidden_tensors
from .planner import ALIAS_KINDS, _align

MAX_STATES = 20000


class _Model:
    """Units, their tensors and the cost of running a unit after a set of units."""

    def __init__(self, g: Graph, use_inplace: bool, modes: Modes):
        self.g = g
        units: list[list] = []
        where: dict[str, int] = {}
        fused = fused_adds(modes)
        for op in g.ops:
            host = fused.get(op.name)
            if host is not None and host in where:
                units[where[host]].append(op)
                where[op.name] = where[host]
            else:
                where[op.name] = len(units)
                units.append([op])
        self.units = units
        root: dict[str, str] = {}
        for op in g.ops:
            if op.kind in ALIAS_KINDS:
                root[op.outputs[0]] = root.get(op.inputs[0], op.inputs[0])
        self.root = root
        hidden = hidden_tensors(g, modes)
        r = lambda t: root.get(t, t)  # noqa: E731
        self.size: dict[str, int] = {}
        self.producer: dict[str, int] = {}
        self.readers: dict[str, set] = {}
        for u, ops in enumerate(units):
            for op in ops:
                for t in op.outputs:
                    if t not in hidden and op.kind not in ALIAS_KINDS:
                        self.producer[r(t)] = u
                        self.size[r(t)] = _align(g.tensors[r(t)].nbytes)
                for t in op.inputs:
                    if t and not g.tensors[t].is_const and t not in hidden:
                        self.readers.setdefault(r(t), set()).add(u)
        for t in g.inputs:
            self.size[r(t)] = _align(g.tensors[r(t)].nbytes)
            self.producer.setdefault(r(t), -1)
        self.outputs = {r(t) for t in g.outputs}
        self.deps = [set() for _ in units]
        made_by = {t: where[op.name] for op in g.ops for t in op.outputs}
        for u, ops in enumerate(units):
            for op in ops:
                for t in op.inputs:
                    p = made_by.get(t) if t else None
                    if p is not None and p != u:
                        self.deps[u].add(p)
        self.dep_mask = [sum(1 << d for d in ds) for ds in self.deps]
        self.reader_mask = {t: sum(1 << u for u in us) for t, us in self.readers.items()}
        # in-place savings per unit: (input root, saving if it dies here)
        self.savings: list[list] = []
        for ops in units:
            opts = []
            if use_inplace:
                for cand in ip.candidates(g, ops[0], modes):
                    opts.extend(self._saving(ops[0], cand))
            self.savings.append(opts)

    def _saving(self, op, cand) -> list:
        r = lambda t: self.root.get(t, t)  # noqa: E731
        if cand.mode == "elementwise":
            x = r(cand.input)
            return [(x, min(self.size[x], self.size[r(op.outputs[0])]))]
        out = r(cand.output) if cand.fused else r(op.outputs[0])
        x = r(cand.input)
        si, so = self.size[x], self.size[out]
        f, b = max(16, _align(cand.fwd)), max(16, _align(cand.bwd))
        foot = min(max(f + si, so), max(b + so, si))
        opts = [(x, max(0, si + so - foot))]
        if cand.fused and r(cand.residual) != x:
            res = r(cand.residual)
            opts.append((res, min(self.size[res], so)))
        return opts

    def cost(self, done: int, u: int) -> int:
        after = done | (1 << u)
        total = 0
        for t, p in self.producer.items():
            if p != -1 and not (after >> p) & 1:
                continue
            readers = self.reader_mask.get(t, 0)
            if t in self.outputs or p == u or readers & ~done:
                total += self.size[t]
        save = 0
        for t, s in self.savings[u]:
            if t not in self.outputs and not (self.reader_mask.get(t, 0) & ~after):
                save = max(save, s)
        return total - save

    def ready(self, done: int) -> list:
        return [u for u in range(len(self.units))
                if not (done >> u) & 1 and (self.dep_mask[u] & done) == self.dep_mask[u]]


def _count_states(m: _Model, cap: int) -> bool:
    """True if the number of down-sets is at most cap."""
    seen = {0}
    frontier = [0]
    while frontier:
        nxt = []
        for s in frontier:
            for u in m.ready(s):
                t = s | (1 << u)
                if t not in seen:
                    seen.add(t)
                    if len(seen) > cap:
                        return False
                    nxt.append(t)
        frontier = nxt
    return True


def _dp_order(m: _Model) -> tuple[int, list]:
    """The order of least peak over all down-sets (iterative: chains of any length)."""
    full = (1 << len(m.units)) - 1
    best = {full: (0, -1)}  # down-set -> (least peak of the rest, the unit to run next)
    stack = [0]
    while stack:
        done = stack[-1]
        if done in best:
            stack.pop()
            continue
        ready = m.ready(done)
        todo = [done | (1 << u) for u in ready if done | (1 << u) not in best]
        if todo:
            stack.extend(todo)
            continue
        result = None
        for u in ready:  # the first unit of least peak, as listed by ready()
            peak = max(best[done | (1 << u)][0], m.cost(done, u))
            if result is None or peak < result[0]:
                result = (peak, u)
        best[done] = result
        stack.pop()
    order, done = [], 0
    while done != full:
        u = best[done][1]
        order.append(u)
        done |= 1 << u
    return best[0][0], order


def _greedy_order(m: _Model) -> tuple[int, list]:
    done, order, peak = 0, [], 0
    for _ in range(len(m.units)):
        u = min(m.ready(done), key=lambda v: (m.cost(done, v), v))
        peak = max(peak, m.cost(done, u))
        order.append(u)
        done |= 1 << u
    return peak, order


def estimate_peak(g: Graph, use_inplace: bool = True, modes: Optional[Modes] = None) -> int:
    """The cost model's peak for the graph's current order (modes: the fused conv+add
    pairs, inplace.fuse_residual_adds)."""
    m = _Model(g, use_inplace, modes or {})
    done, peak = 0, 0
    for u in range(len(m.units)):
        peak = max(peak, m.cost(done, u))
        done |= 1 << u
    return peak


def _units_in_order(m: _Model) -> bool:
    """Does g.ops run every unit after the units it reads?  A fused conv+add runs at its
    conv, so the graph's own order may read the add's other operand before it exists
    (an FPN: lateral conv + the upsampled coarser level, produced after the conv)."""
    unit_of = {op.name: u for u, ops in enumerate(m.units) for op in ops}
    done: set = set()
    for op in m.g.ops:
        u = unit_of[op.name]
        if u not in done:
            if not m.deps[u] <= done:
                return False
            done.add(u)
    return True


def reorder(g: Graph, use_inplace: bool = True, max_states: int = MAX_STATES,
            modes: Optional[Modes] = None) -> Schedule:
    """A topological order of g.ops that minimizes the estimated peak memory (the graph's
    own order when nothing is better and it runs fused units in order); g is not changed.
    modes: the fused conv+add pairs (inplace.fuse_residual_adds), each run as one unit."""
    modes = modes or {}
    m = _Model(g, use_inplace, modes)
    before = estimate_peak(g, use_inplace, modes)
    own = tuple(op.name for op in g.ops)
    if len(m.units) <= 1:
        return Schedule(own, "trivial", before, before)
    if _count_states(m, max_states):
        peak, order, method = *_dp_order(m), "dp"
    else:
        peak, order, method = *_greedy_order(m), "greedy"
    if peak < before or not _units_in_order(m):
        return Schedule(tuple(op.name for u in order for op in m.units[u]), method, before, peak)
    return Schedule(own, method, before, before)


def apply(g: Graph, sched: Schedule) -> None:
    """Run g's ops in the schedule's order (op names are unique: api.build_graph)."""
    by_name = {op.name: op for op in g.ops}
    if sorted(by_name) != sorted(sched.order) or len(by_name) != len(g.ops):
        raise ValueError("the schedule does not order this graph's ops")
    g.ops = [by_name[name] for name in sched.order]
