"""Architecture: the modules of tinydeploy/ import each other without cycles.

Every import counts, at module level or inside a function (a lazy import
hides a cycle from Python but not from the reader), relative or absolute;
`from . import x` and `from .pkg import x` count as imports of module x when x
is a module, and so does importlib.import_module with a literal name. The test
names the cycles it finds.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "tinydeploy"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py")) if "_data" not in p.parts}


def _resolve_from(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    """The absolute module a `from X import ...` statement names."""
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]  # a module's relative imports start at its package
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _resolve_import_module(call: ast.Call, current: str, is_package: bool) -> str:
    """The module of importlib.import_module("name" or ".name", __name__ or __package__);
    "" when the name is not a literal."""
    if not call.args or not isinstance(call.args[0], ast.Constant) or not isinstance(call.args[0].value, str):
        return ""
    name = call.args[0].value
    if not name.startswith("."):
        return name
    anchor = call.args[1].id if len(call.args) > 1 and isinstance(call.args[1], ast.Name) else ""
    if anchor == "__name__":
        base = current.split(".")
    elif anchor == "__package__":
        base = current.split(".") if is_package else current.split(".")[:-1]
    else:
        return ""
    level = len(name) - len(name.lstrip("."))
    base = base[:len(base) - (level - 1)]
    return ".".join(base + [name.lstrip(".")])


def _is_import_module(call: ast.Call) -> bool:
    f = call.func
    return (isinstance(f, ast.Attribute) and f.attr == "import_module") or \
        (isinstance(f, ast.Name) and f.id == "import_module")


def imports_of(path: Path, current: str, modules: set[str]) -> set[str]:
    """The tinydeploy modules `path` imports anywhere in its code."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Call) and _is_import_module(node):
            names = [_resolve_import_module(node, current, is_package)]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(node, current, is_package)
            # `from pkg import x`: module pkg.x if x is a module, else a name in pkg
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for name in names:
            # `import a.b.c` imports a, a.b and a.b.c; the deepest existing module is the edge
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != current:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    names = set(modules)
    return {m: imports_of(p, m, names) for m, p in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components in no particular order."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(sorted(component))
    return result


def shortest_path(graph: dict[str, set[str]], start: str, goal: str) -> list[str]:
    """A shortest import chain start -> ... -> goal (breadth-first), [] if there is none."""
    parent = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if node == goal:
            path = [node]
            while parent[path[-1]] is not None:
                path.append(parent[path[-1]])
            return path[::-1]
        for child in sorted(graph[node]):
            if child not in parent:
                parent[child] = node
                queue.append(child)
    return []


def cycles_to_report(graph: dict[str, set[str]]) -> list[list[str]]:
    """For every import u -> v inside a strongly connected component, the shortest cycle
    through it (u -> v -> ... -> u), each cycle once: every two-module cycle is listed."""
    found = set()
    for component in strongly_connected(graph):
        members = set(component)
        if len(members) < 2:
            continue
        for u in component:
            for v in sorted(graph[u] & members):
                cycle = [u] + shortest_path(graph, v, u)[:-1]
                first = cycle.index(min(cycle))  # one spelling per cycle: start at its smallest name
                found.add(tuple(cycle[first:] + cycle[:first]))
    return [list(c) + [c[0]] for c in sorted(found)]


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert [c for c in strongly_connected(graph) if len(c) > 1] == [["a", "b", "c"]]
    assert shortest_path(graph, "b", "a") == ["b", "c", "a"] and shortest_path(graph, "a", "d") == []
    assert cycles_to_report(graph) == [["a", "b", "c", "a"]]
    graph = {"a": {"b", "c"}, "b": {"a"}, "c": {"a", "b"}}
    assert cycles_to_report(graph) == [["a", "b", "a"], ["a", "c", "a"], ["a", "c", "b", "a"]]


def test_imports_are_resolved(tmp_path):
    modules = {"tinydeploy", "tinydeploy.api", "tinydeploy.verify", "tinydeploy.ir", "tinydeploy.sub",
               "tinydeploy.sub.x"}
    src = tmp_path / "m.py"
    src.write_text("import numpy\nfrom . import verify, __version__\nfrom .ir import Graph\n"
                   "def f():\n    import tinydeploy.api\n    from .sub import x\n")
    assert imports_of(src, "tinydeploy.m", modules) == {
        "tinydeploy", "tinydeploy.verify", "tinydeploy.ir", "tinydeploy.api", "tinydeploy.sub.x"}
    init = tmp_path / "__init__.py"
    init.write_text("import importlib\ndef g(name):\n    return importlib.import_module('.api', __name__)\n"
                    "def h():\n    from .sub import x\n    return importlib.import_module(name)\n")
    assert imports_of(init, "tinydeploy", modules) == {"tinydeploy.api", "tinydeploy.sub.x"}


def test_no_import_cycles():
    graph = import_graph()
    assert "tinydeploy.api" in graph and graph["tinydeploy.api"], "the import graph was not built"
    cycles = cycles_to_report(graph)
    message = "\n".join("  " + " -> ".join(m.removeprefix(PACKAGE + ".") for m in c) for c in cycles)
    assert not cycles, f"import cycles in {PACKAGE}/ (fix them by moving code, not by hiding imports):\n{message}"


# --------------------------------------------------------------------------
# Stages hand their decisions forward as typed records (stage_types), not as
# op.attrs keys: in-place modes, fused adds and kernel choices live in the plan,
# an int8 layer's kernel parameters in Op.int8_params (ir.Int8Params).
# --------------------------------------------------------------------------
DECISION_KEYS = ("inplace", "choice", "fused_into", "report", "q")


def decision_attr_uses(source: str) -> list[str]:
    """`X.attrs[...]`, `X.attrs.get/pop/setdefault(...)` and `... in X.attrs` with one
    of DECISION_KEYS as a literal key, found in Python source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "attrs":
            key = node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "attrs" \
                and node.args:
            key = node.args[0]
        elif isinstance(node, ast.Compare) and len(node.comparators) == 1 \
                and isinstance(node.comparators[0], ast.Attribute) and node.comparators[0].attr == "attrs":
            key = node.left
        if isinstance(key, ast.Constant) and key.value in DECISION_KEYS:
            found.append(f"line {node.lineno}: attrs[{key.value!r}]")
    return found


def test_the_decision_attr_finder_finds_uses():
    src = ('a = op.attrs["choice"]\nop.attrs.get("inplace")\nif "fused_into" in op.attrs: pass\n'
           'op.attrs["inplace"] = {}\nop.attrs["q"] = 1\nop.attrs.get("act")\n')
    assert [u.split(":")[0] for u in decision_attr_uses(src)] == ["line 1", "line 2", "line 3", "line 4", "line 5"]


def test_planning_decisions_are_not_op_attrs():
    """inplace.py, kernel_select.py and planner.py return in-place modes and kernel
    choices (stage_types.InplaceMode, kernel_variants.Choice); codegen and the
    backends read them from the plan.  No module keeps them in op.attrs, nor an
    int8 layer's kernel parameters (quantization sets Op.int8_params)."""
    uses = {m: decision_attr_uses(p.read_text()) for m, p in _modules().items()}
    uses = {m: u for m, u in uses.items() if u}
    assert not uses, f"op.attrs used for planning decisions: {uses}"
