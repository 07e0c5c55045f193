"""Memory planning: every tensor the generated code touches gets an offset in one arena.

What lives in the arena: every intermediate tensor, the model's input (the
caller writes it through NAME_input() or NAME_run copies it in) and output
(NAME_output(), or copied out by NAME_run), and each kernel's scratch buffer
during its op.  Weights stay in flash.  Aliases (reshape) share their
source's bytes.

The problem solved here: items with a size and a lifetime [first, last]
(steps of the schedule) get offsets such that two items live at the same
step do not share bytes -- except where an in-place decision
(tinydeploy/inplace.py) relaxes it:

  * "elementwise" (and the residual of a fused conv+add): the output takes
    exactly the input's bytes; both become one item.
  * "window" / "conv_add": the output item may overlap the input item if it
    starts at least F bytes below it or at least B bytes above it (the
    kernel then walks forward or backward); any other overlap is forbidden.

Two methods, same model:
  * greedy: items in a priority order, each at the lowest offset that is
    feasible against the items placed so far ("lowest fit"); several
    priority orders are tried and the best kept.
  * exact: branch and bound over the placement order with lowest fit.  Every
    optimal packing can be reproduced by lowest fit in order of its offsets
    (each item lands at or below its optimal offset), so exploring all orders
    finds the optimum; bounds and a time limit keep it practical.  The better
    of greedy and exact is used; `optimal` says whether the optimum was proved.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Mapping, Optional

from . import ops
from .ir import Graph
from .kernel_variants import Choice
from .stage_types import InplaceMode, Modes, Schedule, fused_adds, hidden_tensors

Choices = Mapping[str, Choice]  # op name -> the kernel variant chosen for it

ALIGN = 16
ALIAS_KINDS = {"reshape"}
METHODS = ("auto", "greedy", "exact")
SCRATCH_POLICIES = ("fit", "any")
SCRATCH_GROWTH = 0.0625  # default: kernel scratch may grow the arena by at most 1/16 ...
SCRATCH_FLOOR = 512  # ... or by this many bytes, whichever is more (small models)
GREEDY_EVALS = 2000  # local-search placements of the greedy method
AUTO_EXACT_ITEMS = 64  # "auto" runs the exact method up to this many items ...
AUTO_EXACT_NODES = 20000  # ... for this many search nodes (deterministic)
EXACT_TIME_LIMIT = 10.0  # "exact": seconds
FORCE_OVERLAP = None  # tests: "forward", "backward" or "alternate" forces every in-place overlap


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


# --------------------------------------------------------------------------
# The abstract problem and its solvers
# --------------------------------------------------------------------------
@dataclass
class Problem:
    """sizes (aligned), spans [(first, last)], relaxed pairs {(inp, out): (F, B)}."""

    sizes: list
    spans: list
    shifts: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.sizes)
        self.conflicts: list[list[int]] = [[] for _ in range(n)]
        for i in range(n):
            fi, li = self.spans[i]
            for j in range(i + 1, n):
                fj, lj = self.spans[j]
                if fi <= lj and fj <= li:
                    self.conflicts[i].append(j)
                    self.conflicts[j].append(i)
        # rel[(k, p)] = (a, b): with p at x_p, x_k must avoid the open interval (x_p - a, x_p + b)
        self.rel: dict = {}
        for (i, o), (f, b) in self.shifts.items():
            self.rel[(o, i)] = (f, b)  # output o around input i: x_o <= x_i - f or x_o >= x_i + b
            self.rel[(i, o)] = (b, f)

    def gap(self, k: int, p: int) -> tuple[int, int]:
        return self.rel.get((k, p)) or (self.sizes[k], self.sizes[p])

    def lowest_fit(self, k: int, pos: dict) -> int:
        intervals = []
        for p in self.conflicts[k]:
            if p in pos:
                a, b = self.gap(k, p)
                intervals.append((pos[p] - a, pos[p] + b))
        x = 0  # sweep by interval start: x stays at or past the end of every interval seen
        for lo, hi in sorted(intervals):
            if x <= lo:
                return x
            if hi > x:
                x = hi
        return x

    def height(self, pos: dict) -> int:
        return max((pos[k] + self.sizes[k] for k in pos), default=0)

    def lower_bound(self) -> int:
        """Max over steps of the live sizes, minus the overlap the in-place pairs allow."""
        steps = sorted({s for f, l in self.spans for s in (f, l)})
        best = 0
        for s in steps:
            live = [k for k, (f, l) in enumerate(self.spans) if f <= s <= l]
            total = sum(self.sizes[k] for k in live)
            saving = 0  # what the in-place pairs live here may overlap, at most
            for (i, o), (f, b) in self.shifts.items():
                if i in live and o in live:
                    si, so = self.sizes[i], self.sizes[o]
                    foot = min(max(f + si, so), max(b + so, si))
                    saving += max(0, si + so - foot)
            best = max(best, total - saving)
        return best

    def check(self, pos: dict) -> None:
        """Raise AssertionError unless pos satisfies every constraint."""
        for k in range(len(self.sizes)):
            assert pos[k] >= 0 and pos[k] % ALIGN == 0
            for p in self.conflicts[k]:
                a, b = self.gap(k, p)
                assert pos[k] <= pos[p] - a or pos[k] >= pos[p] + b, (k, p, pos[k], pos[p])


def place_in_order(prob: Problem, order) -> dict:
    pos: dict = {}
    for k in order:
        pos[k] = prob.lowest_fit(k, pos)
    return pos


def _greedy_orders(prob: Problem) -> list:
    n = len(prob.sizes)
    idx = range(n)
    dur = [prob.spans[k][1] - prob.spans[k][0] + 1 for k in idx]
    deg = [sum(prob.sizes[p] for p in prob.conflicts[k]) for k in idx]
    keys = [
        lambda k: (-prob.sizes[k], prob.spans[k][0], k),           # TFLM-like: largest first
        lambda k: (-dur[k], -prob.sizes[k], k),                     # longest-lived first
        lambda k: (-prob.sizes[k] * dur[k], k),                     # largest area first
        lambda k: (prob.spans[k][0], -prob.sizes[k], k),            # left edge (by birth)
        lambda k: (-(deg[k] + prob.sizes[k]), -prob.sizes[k], k),   # most conflicted first
        lambda k: (-prob.sizes[k], -dur[k], k),
    ]
    return [sorted(idx, key=key) for key in keys]


def solve_greedy(prob: Problem, max_evals: int = GREEDY_EVALS) -> dict:
    """Lowest fit in several priority orders, then local search on the best order:
    move one item to another place in the order while that lowers the arena
    (deterministic: at most max_evals placements)."""
    best_h, best_order = None, None
    for order in _greedy_orders(prob):
        h = prob.height(place_in_order(prob, order))
        if best_h is None or h < best_h:
            best_h, best_order = h, order
    if best_order is None:
        return {}
    order, n, evals = best_order, len(best_order), 0
    improved = True
    while improved and evals < max_evals:
        improved = False
        for i in range(n):
            for j in range(n):
                if i == j or evals >= max_evals:
                    continue
                trial = order[:i] + order[i + 1:]
                trial.insert(j, order[i])
                evals += 1
                h = prob.height(place_in_order(prob, trial))
                if h < best_h:
                    best_h, order, improved = h, trial, True
                    break
            if improved:
                break
    return place_in_order(prob, order)


def solve_forced(prob: Problem, direction: str) -> dict:
    """A packing where every in-place pair overlaps as much as it may (a testing aid:
    it makes every overlapping kernel really run over its input).  direction:
    "forward", "backward" or "alternate" (along each chain of pairs).  Pairs become
    rigid clusters; clusters are placed by lowest fit, largest first."""
    n = len(prob.sizes)
    cluster = {k: k for k in range(n)}  # item -> cluster id
    members: dict = {k: {k: 0} for k in range(n)}  # cluster id -> {item: offset in the cluster}
    backward_next: dict = {}  # "alternate": the direction of the next pair in a cluster
    for (i, o), (f, b) in sorted(prob.shifts.items(), key=lambda kv: (prob.spans[kv[0][1]][0], kv[0])):
        ci, co = cluster[i], cluster[o]
        if ci == co:
            continue
        backward = backward_next.get(ci, False) if direction == "alternate" else direction == "backward"
        want = members[ci][i] + (b if backward else -f)
        move = want - members[co][o]
        for k, off in members.pop(co).items():
            members[ci][k] = off + move
            cluster[k] = ci
        backward_next[ci] = not backward
    clusters = {c: list(ms) for c, ms in members.items()}
    offs = {}
    for c, ms in members.items():
        low = min(ms.values())
        for k, off in ms.items():
            offs[k] = off - low
    order = sorted(clusters.values(), key=lambda ms: (-max(offs[k] + prob.sizes[k] for k in ms), min(ms)))
    pos: dict = {}
    for ms in order:
        intervals = []
        for k in ms:
            for p in prob.conflicts[k]:
                if p in pos:
                    a, b = prob.gap(k, p)
                    intervals.append((pos[p] - a - offs[k], pos[p] + b - offs[k]))
        x = 0
        for lo, hi in sorted(intervals):
            if x <= lo:
                break
            x = max(x, hi)
        for k in ms:
            pos[k] = x + offs[k]
    return pos


@dataclass
class ExactResult:
    pos: dict
    height: int
    optimal: bool
    nodes: int


def _stack_bound(prob: Problem, pos: dict, remaining: list, floor: int) -> int:
    """Items still to place go at offsets >= floor: at every step the ones live then,
    plus what placed items occupy above floor, must fit above floor."""
    rem = set(remaining)
    best = 0
    for t in {prob.spans[k][0] for k in remaining}:
        live = [k for k in remaining if prob.spans[k][0] <= t <= prob.spans[k][1]]
        need = sum(prob.sizes[k] for k in live)
        related = set()
        saving = 0
        for k in live:
            for p in prob.conflicts[k]:
                if (k, p) in prob.rel:
                    related.add(p)
                    if p in rem and k < p and prob.spans[p][0] <= t <= prob.spans[p][1]:
                        saving += min(prob.sizes[k], prob.sizes[p])
        occupied, reach = 0, floor  # bytes above floor covered by placed items (their union)
        for lo, hi in sorted((max(pos[p], floor), pos[p] + prob.sizes[p]) for p in pos
                             if p not in related and prob.spans[p][0] <= t <= prob.spans[p][1]):
            if hi > reach:
                occupied += hi - max(lo, reach)
                reach = hi
        best = max(best, floor + occupied + need - saving)
    return best


def solve_exact(prob: Problem, time_limit: float = EXACT_TIME_LIMIT, start: Optional[dict] = None,
                node_limit: int = 5_000_000) -> ExactResult:
    """Branch and bound over placement orders (lowest fit); seeded with `start` (or greedy).

    Completeness: take an optimal packing, sort its items by (offset, index) and place
    them in that order by lowest fit: each lands at or below its offset (induction: its
    optimal offset is still feasible).  Repeating this on the result cannot go on forever
    (offsets only decrease), and at the fixed point the order reproduces the offsets
    exactly.  So some optimal packing is produced by an order whose (offset, index) pairs
    increase -- the only orders searched here."""
    n = len(prob.sizes)
    best = dict(start) if start is not None else solve_greedy(prob)
    state = {"best": best, "ub": prob.height(best), "nodes": 0, "timeout": False}
    lb = prob.lower_bound()
    if state["ub"] <= lb or n == 0:
        return ExactResult(best, state["ub"], True, 0)
    deadline = time.monotonic() + time_limit

    def dfs(pos: dict, remaining: list, cur: int, last: tuple) -> None:
        state["nodes"] += 1
        if state["nodes"] % 256 == 0 and (time.monotonic() > deadline or state["nodes"] > node_limit):
            state["timeout"] = True
        if state["timeout"]:
            return
        if not remaining:
            if cur < state["ub"]:
                state["best"], state["ub"] = dict(pos), cur
            return
        floor = last[0]
        fits = {k: prob.lowest_fit(k, pos) for k in remaining}
        bound = max(cur, max(max(fits[k], floor) + prob.sizes[k] for k in remaining))
        if bound >= state["ub"] or _stack_bound(prob, pos, remaining, floor) >= state["ub"]:
            return
        children = [k for k in remaining if (fits[k], k) > last]
        for k in sorted(children, key=lambda k: (fits[k], -prob.sizes[k], k)):
            top = fits[k] + prob.sizes[k]
            if max(cur, top) >= state["ub"]:
                continue
            pos[k] = fits[k]
            dfs(pos, [r for r in remaining if r != k], max(cur, top), (fits[k], k))
            del pos[k]
            if state["ub"] <= lb or state["timeout"]:
                return

    dfs({}, list(range(n)), 0, (-1, -1))
    optimal = not state["timeout"] or state["ub"] <= lb
    return ExactResult(state["best"], state["ub"], optimal, state["nodes"])


# --------------------------------------------------------------------------
# From the graph to the problem and back
# --------------------------------------------------------------------------
@dataclass
class Placement:
    region: str  # "arena"
    offset: int
    nbytes: int


@dataclass
class MemoryPlan:
    placements: dict = field(default_factory=dict)  # tensor name -> Placement
    arena_bytes: int = 0
    lower_bound_bytes: int = 0
    lifetimes: dict = field(default_factory=dict)  # root tensor -> (first step, last step)
    scratch: dict = field(default_factory=dict)  # op name -> arena offset of its scratch buffer
    # op name -> (arena offset, bytes) of the scratch the op's own kernel needs (OpDef.scratch)
    own_scratch: dict = field(default_factory=dict)
    method: str = "greedy"  # the method whose placement is used
    optimal: bool = False  # the exact method proved the tensors' packing minimal (for this
    # schedule and these in-place decisions; kernel scratch is fitted in afterwards)
    greedy_bytes: int = 0
    exact_bytes: Optional[int] = None
    inplace_used: set = field(default_factory=set)  # ops whose in-place decision the plan uses
    dropped_variants: dict = field(default_factory=dict)  # op -> variant whose scratch did not fit
    scratch_budget_bytes: Optional[int] = None  # the arena kernel scratch could grow to
    steps: list = field(default_factory=list)  # op name executed at each step
    timeline: list = field(default_factory=list)  # per step: [{tensor, offset, bytes}]
    # The decisions this placement is for -- what codegen emits:
    inplace_modes: dict = field(default_factory=dict)  # op name -> stage_types.InplaceMode,
    # its direction as planned
    choices: dict = field(default_factory=dict)  # op name -> kernel_variants.Choice whose
    # scratch the plan holds (after falling back to smaller variants or the portable kernel)
    schedule: Optional[Schedule] = None  # the op order it was planned for (api.plan_memory)
    inplace: bool = True  # in-place execution was allowed (False: --no-inplace)

    def mode(self, op_name: str) -> Optional[InplaceMode]:
        """The op's in-place decision, or None."""
        return self.inplace_modes.get(op_name)

    def choice(self, op_name: str) -> Optional[Choice]:
        """The op's kernel variant, or None for its portable kernel (also when the
        portable kernel stands as a variant's compact twin: Choice.portable)."""
        choice = self.choices.get(op_name)
        return None if choice is not None and choice.portable else choice

    @property
    def fused_into(self) -> dict:
        """add op name -> the conv it runs inside (fused conv+add pairs)."""
        return fused_adds(self.inplace_modes)


def alias_roots(g: Graph) -> dict[str, str]:
    """tensor -> the tensor whose bytes it shares."""
    root = {}
    for op in g.ops:
        if op.kind in ALIAS_KINDS:
            src = op.inputs[0]
            root[op.outputs[0]] = root.get(src, src)
    return root


def op_steps(g: Graph, modes: Modes) -> dict[str, int]:
    """op name -> step; an add fused into a conv runs at the conv's step."""
    step = {op.name: i for i, op in enumerate(g.ops)}
    for add, host in fused_adds(modes).items():
        step[add] = step[host]
    return step


def fused_away(g: Graph, modes: Modes) -> set:
    """Tensors never stored: the conv outputs of fused conv+add pairs."""
    return hidden_tensors(g, modes)


def lifetimes(g: Graph, root: Optional[dict] = None, modes: Optional[Modes] = None) -> dict[str, tuple[int, int]]:
    """Root tensor -> (first, last) step.  The input is live from step -1 (written by the
    caller), graph outputs until step len(ops) (read by the caller).  modes: the
    in-place decisions (fused conv+add pairs run at one step, the conv's output unstored)."""
    modes = modes or {}
    root = alias_roots(g) if root is None else root
    step = op_steps(g, modes)
    skip = fused_away(g, modes)
    spans: dict[str, list[int]] = {}

    def touch(name: str, s: int) -> None:
        r = root.get(name, name)
        if r in spans:
            spans[r][0] = min(spans[r][0], s)
            spans[r][1] = max(spans[r][1], s)
        else:
            spans[r] = [s, s]

    for name in g.inputs:
        touch(name, -1)
    for op in g.ops:
        s = step[op.name]
        for name in op.outputs:
            if name not in skip:
                touch(name, s)
        for name in op.inputs:
            if name and not g.tensors[name].is_const and name not in skip:
                touch(name, s)
    for name in g.outputs:
        touch(name, len(g.ops))
    return {k: (v[0], v[1]) for k, v in spans.items()}


def dies_at_fn(g: Graph, modes: Optional[Modes] = None):
    """dies_at(op, tensor): tensor (alias-aware) is read by nothing after op and is no output
    (modes: the fused conv+add pairs, which run at one step)."""
    modes = modes or {}
    root = alias_roots(g)
    spans = lifetimes(g, root, modes)
    step = op_steps(g, modes)
    outs = {root.get(n, n) for n in g.outputs}

    def dies_at(op, tensor: str) -> bool:
        r = root.get(tensor, tensor)
        return r not in outs and r in spans and spans[r][1] == step[op.name]
    return dies_at


def lower_bound_bytes(g: Graph) -> int:
    """Max over steps of the bytes live with no in-place execution (input/output included,
    the conv output of a fused conv+add counted as if stored)."""
    spans = lifetimes(g)  # the graph unfused
    best = 0
    for s in range(-1, len(g.ops) + 1):
        best = max(best, sum(g.tensors[r].nbytes for r, (f, l) in spans.items() if f <= s <= l))
    return best


class _UnionFind:
    def __init__(self):
        self.parent: dict = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b) -> None:
        self.parent[self.find(b)] = self.find(a)


def plan(g: Graph, method: str = "auto", time_limit: Optional[float] = None,
         scratch=SCRATCH_GROWTH, modes: Optional[Modes] = None,
         choices: Optional[Choices] = None) -> MemoryPlan:
    """Offsets for every tensor in one arena, honouring the in-place decisions `modes`
    ({op name: stage_types.InplaceMode}, inplace.py) for the kernel variants `choices`
    ({op name: kernel_variants.Choice}, kernel_select.py).  Neither the graph nor the
    arguments change: the plan holds the decisions as used (MemoryPlan.inplace_modes
    with their directions, MemoryPlan.choices).

    scratch: what kernel variants that need scratch memory (Choice.scratch_bytes)
    may cost.  The tensors are planned first; then each variant's scratch (most
    MACs first) goes to the lowest bytes free during its op below a budget: the
    tensors' arena grown by the fraction `scratch` or SCRATCH_FLOOR bytes,
    whichever is more ("fit": not grown).  A variant whose scratch does not fit
    falls back to its smaller alternative (Choice.smaller), else to the portable
    kernel.  If planning every scratch buffer together with the tensors keeps
    every variant within that budget, that plan is used instead.  "any": every
    scratch buffer planned like a tensor, the arena grows as needed."""
    if method not in METHODS:
        raise ValueError(f"planner method must be one of {METHODS}, not {method!r}")
    if scratch not in SCRATCH_POLICIES and not (isinstance(scratch, (int, float)) and scratch >= 0):
        raise ValueError(f"scratch policy must be one of {SCRATCH_POLICIES} or a growth >= 0, "
                         f"not {scratch!r}")
    modes = dict(modes or {})
    fastest = {name: c for name, c in (choices or {}).items() if c is not None}
    if scratch == "any":
        return _plan_once(g, method, time_limit, "any", modes, fastest)
    budgeted = _plan_once(g, method, time_limit, scratch, modes, fastest)
    if not any(c.scratch_bytes for c in fastest.values()):
        return budgeted
    kept = budgeted.choices
    # variants given up for RAM (not counting scratch_in_room ones: never for growth)
    traded = any(kept.get(n) is not c and not c.scratch_in_room for n, c in fastest.items())
    joint = _plan_once(g, method, time_limit, "any", modes, fastest)
    if joint.arena_bytes <= (budgeted.scratch_budget_bytes if traded else budgeted.arena_bytes):
        joint.scratch_budget_bytes = budgeted.scratch_budget_bytes
        return joint
    return budgeted


def _plan_once(g: Graph, method: str, time_limit: Optional[float], scratch, modes: Modes,
               choices: Choices) -> MemoryPlan:
    choices = dict(choices)  # what the scratch budget leaves of them (returned in the plan)
    root = alias_roots(g)
    spans = lifetimes(g, root, modes)
    step = op_steps(g, modes)
    dies_at = dies_at_fn(g, modes)
    nbytes = {r: g.tensors[r].nbytes for r in spans}

    # items: root tensors, merged where an output takes exactly its input's bytes
    uf = _UnionFind()
    for r in spans:
        uf.find(r)
    merges = []  # (op, input root, output root)
    for op in g.ops:
        mode = modes.get(op.name)
        if mode is None:
            continue
        alias = _alias(mode, choices.get(op.name))
        if mode.mode == "elementwise" or alias:
            x, y = mode.input, op.outputs[0]
        elif (mode.fused and dies_at(op, mode.residual)
              and root.get(mode.residual, mode.residual) != root.get(mode.input, mode.input)):
            x, y = mode.residual, mode.output  # (a residual that is also the conv's input
            # is read through the window: the output may only overlap it shifted)
        else:
            continue
        rx, ry = root.get(x, x), root.get(y, y)
        if (nbytes[rx] == nbytes[ry] or alias) and uf.find(rx) != uf.find(ry):
            uf.union(rx, ry)
            merges.append((op, rx, ry))
    groups: dict = {}
    for r in spans:
        groups.setdefault(uf.find(r), []).append(r)
    keys = sorted(groups, key=lambda k: (min(spans[r][0] for r in groups[k]), k))
    index = {k: i for i, k in enumerate(keys)}
    item_of = {r: index[uf.find(r)] for r in spans}
    sizes = [_align(max(nbytes[r] for r in groups[k])) for k in keys]
    item_spans = [(min(spans[r][0] for r in groups[k]), max(spans[r][1] for r in groups[k])) for k in keys]
    scratch_items = {}
    for op in g.ops:
        choice = choices.get(op.name)
        if choice is not None and choice.scratch_bytes and scratch == "any":
            scratch_items[op.name] = len(sizes)
            sizes.append(_align(choice.scratch_bytes))
            item_spans.append((step[op.name], step[op.name]))
    own_items = {}  # op name -> item of the scratch its own kernel needs (OpDef.scratch): always planned
    for op in g.ops:
        need = ops.scratch_bytes(g, op)
        if need:
            own_items[op.name] = (len(sizes), need)
            sizes.append(_align(need))
            item_spans.append((step[op.name], step[op.name]))
    shifts: dict = {}
    shift_ops = {}  # op name -> (input item, output item)
    for op in g.ops:
        mode = modes.get(op.name)
        if mode is None or not mode.overlaps_shifted or _alias(mode, choices.get(op.name)):
            continue  # (an alias variant's buffers are merged above, or else kept apart)
        x = mode.input
        y = mode.output if mode.fused else op.outputs[0]
        if not dies_at(op, x):
            continue
        i, o = item_of[root.get(x, x)], item_of[root.get(y, y)]
        s = step[op.name]
        # the relaxation only concerns the step where one dies and the other is born
        if i == o or item_spans[i][1] != s or item_spans[o][0] != s or (i, o) in shifts or (o, i) in shifts:
            continue
        shifts[(i, o)] = (max(ALIGN, _align(mode.fwd)), max(ALIGN, _align(mode.bwd)))
        shift_ops[op.name] = (i, o)

    prob = Problem(sizes, item_spans, shifts)
    result = MemoryPlan(lifetimes=spans, steps=[op.name for op in g.ops])
    n_items = len(sizes)
    force = FORCE_OVERLAP
    if force is not None:  # testing aid: every in-place pair really overlaps
        greedy_pos = solve_forced(prob, force)
    else:
        greedy_pos = solve_greedy(prob)
    result.greedy_bytes = prob.height(greedy_pos)
    pos, result.method = greedy_pos, "greedy" if force is None else f"forced-{force}"
    run_exact = force is None and (method == "exact" or (method == "auto" and n_items <= AUTO_EXACT_ITEMS))
    if run_exact:
        if method == "exact":
            ex = solve_exact(prob, time_limit if time_limit is not None else EXACT_TIME_LIMIT,
                             start=greedy_pos, node_limit=10**9)
        else:
            ex = solve_exact(prob, time_limit if time_limit is not None else EXACT_TIME_LIMIT,
                             start=greedy_pos, node_limit=AUTO_EXACT_NODES)
        result.exact_bytes, result.optimal = ex.height, ex.optimal
        if ex.height < result.greedy_bytes:
            pos, result.method = ex.pos, "exact"
    prob.check(pos)
    result.arena_bytes = prob.height(pos)

    for name, t in g.tensors.items():
        if t.is_const:
            continue
        r = root.get(name, name)
        if r in item_of:
            result.placements[name] = Placement("arena", pos[item_of[r]], t.nbytes)
    result.scratch = {name: pos[k] for name, k in scratch_items.items()}
    result.own_scratch = {name: (pos[k], need) for name, (k, need) in own_items.items()}
    if scratch != "any":
        growth = 0.0 if scratch == "fit" else float(scratch)
        extra = 0 if scratch == "fit" else max(SCRATCH_FLOOR, int(result.arena_bytes * growth))
        budget = result.scratch_budget_bytes = (result.arena_bytes + extra) // ALIGN * ALIGN
        live_at = {}
        for k, (f, l) in enumerate(item_spans):
            for s_ in range(max(f, 0), min(l, len(g.ops) - 1) + 1):
                live_at.setdefault(s_, []).append((pos[k], pos[k] + sizes[k]))
        wanted = [op for op in g.ops if choices.get(op.name) is not None
                  and choices[op.name].scratch_bytes]
        aliased = {op.name for op, _, _ in merges if _alias(modes.get(op.name), choices.get(op.name))}
        room = result.arena_bytes  # the tensors' arena (Choice.scratch_in_room)

        def gap(busy: list, c: Choice) -> Optional[int]:
            return _first_gap(busy, _align(c.scratch_bytes), room if c.scratch_in_room else budget)
        for op in sorted(wanted, key=lambda o: (-ops.macs(g, o), step[o.name])):
            busy = live_at.setdefault(step[op.name], [])
            choice = choices[op.name]  # the fastest alternative whose scratch fits
            x = gap(busy, choice)
            while x is None and choice.smaller is not None:
                choice = choices[op.name] = choice.smaller
                x = gap(busy, choice)
            need = _align(choice.scratch_bytes)
            if x is None and op.name in aliased:
                # no portable fallback for an aliased op: its scratch grows the arena
                x = _first_gap(busy, need, 1 << 62)
            if x is None:
                result.dropped_variants[op.name] = choices.pop(op.name).name
            else:
                result.scratch[op.name] = x
                busy.append((x, x + need))
                result.arena_bytes = max(result.arena_bytes, x + need)
    # which in-place decisions the placement uses, and in which direction
    result.inplace_used = {op.name for op, _, _ in merges}
    for op in g.ops:
        mode = modes.get(op.name)
        if mode is None:
            continue
        direction = None
        if mode.overlaps_shifted:
            if _alias(mode, choices.get(op.name)) and op.name in result.inplace_used:
                direction = "alias"  # output exactly over the input
            if op.name in shift_ops:
                i, o = shift_ops[op.name]
                if pos[o] < pos[i] + sizes[i] and pos[i] < pos[o] + sizes[o]:
                    direction = "forward" if pos[o] < pos[i] else "backward"
                    result.inplace_used.add(op.name)
            if mode.fused:
                result.inplace_used.add(op.name)
        result.inplace_modes[op.name] = replace(mode, direction=direction)
    result.choices = choices
    result.lower_bound_bytes = lower_bound_bytes(g)
    result.timeline = _timeline(g, spans, result, root)
    return result


def _alias(mode: Optional[InplaceMode], choice: Optional[Choice]) -> bool:
    """A window op whose chosen variant writes its output exactly over its input."""
    return (mode is not None and mode.mode == "window" and choice is not None
            and choice.alias_inplace)


def _first_gap(busy: list, need: int, limit: int) -> Optional[int]:
    """Lowest offset x with [x, x + need) inside [0, limit) and clear of every busy interval."""
    x = 0
    for lo, hi in sorted(busy):
        if x + need <= lo:
            break
        x = max(x, hi)
    return x if x + need <= limit else None


def _timeline(g: Graph, spans: dict, result: MemoryPlan, root: dict) -> list:
    """Per step: which tensors occupy which bytes (scratch included)."""
    step = op_steps(g, result.inplace_modes)
    fused = result.fused_into
    aliases: dict = {}
    for t, r in root.items():
        aliases.setdefault(r, []).append(t)
    timeline = []
    for s, op in enumerate(g.ops):
        if op.name in fused or op.kind in ALIAS_KINDS:
            continue
        live = [dict(tensor=r, offset=result.placements[r].offset, bytes=g.tensors[r].nbytes,
                     **({"aliases": sorted(aliases[r])} if r in aliases else {}))
                for r, (f, l) in spans.items() if f <= s <= l and r in result.placements]
        if op.name in result.scratch:
            live.append(dict(tensor=f"scratch:{op.name}", offset=result.scratch[op.name],
                             bytes=result.choices[op.name].scratch_bytes))
        if op.name in result.own_scratch:
            offset, nbytes = result.own_scratch[op.name]
            live.append(dict(tensor=f"scratch:{op.name}", offset=offset, bytes=nbytes))
        live.sort(key=lambda e: e["offset"])
        timeline.append(dict(step=step[op.name], op=op.name, live=live,
                             live_bytes=sum(e["bytes"] for e in live)))
    return timeline
