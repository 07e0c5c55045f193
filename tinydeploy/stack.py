"""Stack usage of a generated library, measured by the compiler.

Every C file of the library (the run function and the kernels it calls; the
weights file holds no code) is compiled with the target's compiler and flags
and `-fstack-usage -fcallgraph-info=su`: GCC writes each function's frame
size and the calls it makes. The worst-case stack of one inference is the
heaviest call path from `NAME_run`: its own frame plus the deepest chain of
frames below it (e.g. NAME_run -> NAME_invoke -> td_conv2d_s8 -> helper).

Calls into the C library (memcpy, expf, ...) are listed as `unresolved`:
their frames are not part of the figure. Indirect calls, recursion and
dynamically sized frames (alloca, VLAs) make the figure a lower bound and
are named in `notes`; the generated code and kernels have none of them.

Kernel files are the same in many builds: their parsed results are cached
by (compiler, flags, file contents), so repeated compiles in one process
only compile the model's own NAME.c.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .emulator import elf_function_sizes, elf_sizes

# Flags that would change or break a compile-only stack measurement.
_DROP_FLAGS = {"-flto", "-g", "-g3", "-ggdb"}
_NODE = re.compile(r'node:\s*\{\s*title:\s*"([^"]+)"\s*label:\s*"([^"]*)"')
_EDGE = re.compile(r'edge:\s*\{\s*sourcename:\s*"([^"]+)"\s*targetname:\s*"([^"]+)"')
_BYTES = re.compile(r"(\d+) bytes \(([a-z,]+)\)")
_INDIRECT = "__indirect_call"


@dataclass
class Unit:
    """One translation unit: its functions' frames and the calls they make."""

    frames: dict = field(default_factory=dict)   # function -> bytes
    kinds: dict = field(default_factory=dict)    # function -> static | dynamic | dynamic,bounded
    calls: dict = field(default_factory=dict)    # function -> [callee names]
    flash_bytes: int = 0  # the object's text + rodata + data (code and parameter structs)
    code: dict = field(default_factory=dict)  # function -> bytes of its code


_CACHE: dict = {}


def _title(title: str) -> str:
    """GCC names a file's static functions 'path/file.c:fn': keep 'file.c:fn'."""
    head, sep, fn = title.rpartition(":")
    return f"{os.path.basename(head)}:{fn}" if sep and "/" in head else title


def parse_callgraph(text: str) -> Unit:
    """Parse GCC's -fcallgraph-info=su output (VCG) of one translation unit."""
    unit = Unit()
    for title, label in _NODE.findall(text):
        m = _BYTES.search(label)
        if m:
            title = _title(title)
            unit.frames[title] = int(m.group(1))
            unit.kinds[title] = m.group(2)
            unit.calls.setdefault(title, [])
    for src, dst in _EDGE.findall(text):
        calls = unit.calls.setdefault(_title(src), [])
        if _title(dst) not in calls:
            calls.append(_title(dst))
    return unit


def _compiler(tgt) -> tuple[Optional[str], str]:
    """(compiler path or None, its name as the target file gives it)."""
    cc = getattr(tgt, "cc", None) or "gcc"
    if getattr(tgt, "arch", "host") == "host":
        cc = os.environ.get("CC", cc)
    return shutil.which(cc), cc


def _flags(tgt) -> list:
    flags = [f for f in getattr(tgt, "cflags", ()) if f not in _DROP_FLAGS]
    if not any(f.startswith("-O") for f in flags):
        flags.append("-O2")
    return flags


def _compile_unit(cc: str, flags: list, source: Path, include: Path, work: Path) -> Unit:
    data = source.read_bytes()
    key = (cc, tuple(flags), hashlib.sha256(data).hexdigest())
    if key in _CACHE:
        return _CACHE[key]
    obj = work / (hashlib.sha1(str(source).encode()).hexdigest()[:12] + ".o")
    cmd = [cc, *flags, "-std=c99", "-w", "-fstack-usage", "-fcallgraph-info=su",
           "-I", str(include), "-c", str(source), "-o", str(obj)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(cc).name} failed on {source.name}: "
                           f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    ci = obj.with_suffix(".ci")
    unit = parse_callgraph(ci.read_text() if ci.exists() else "")
    unit.flash_bytes = elf_sizes(obj)["flash"]
    unit.code = elf_function_sizes(obj)
    _CACHE[key] = unit
    return unit


def _address_taken(unit: Unit) -> list:
    called = {c for calls in unit.calls.values() for c in calls}
    return [fn for fn in unit.frames if ":" in fn and fn not in called]


def deepest(units: dict, entry: str) -> dict:
    """The heaviest call path from `entry` over the units' call graphs.

    units: {unit name: Unit}. A callee resolves to a function of the caller's
    own unit first (static functions), then to any unit that defines it.
    """
    where: dict = {}
    for uname, unit in units.items():
        for fn in unit.frames:
            where.setdefault(fn, uname)
    if entry not in where:
        return dict(max_stack_bytes=None, path=[], unresolved=[], notes=[f"{entry} not found"])
    unresolved, notes = set(), []
    memo: dict = {}
    on_path: set = set()

    def visit(fn: str, uname: str) -> tuple[int, list]:
        key = (uname, fn)
        if key in memo:
            return memo[key]
        unit = units[uname]
        if unit.kinds.get(fn, "static") == "dynamic":
            notes.append(f"{fn} has a dynamically sized frame")
        on_path.add(key)
        best, best_path = 0, []
        callees = []
        for callee in unit.calls.get(fn, []):
            if callee == _INDIRECT:
                # The kernels' callbacks are static functions of their own file: a
                # static function nobody calls directly is one whose address is taken.
                targets = _address_taken(unit)
                if not targets:
                    notes.append(f"{fn} makes an indirect call to an unknown function")
                callees += targets
            else:
                callees.append(callee)
        for callee in callees:
            cu = uname if callee in unit.frames else where.get(callee)
            if cu is None:
                unresolved.add(callee)
                continue
            if (cu, callee) in on_path:
                notes.append(f"{fn} -> {callee} is recursive")
                continue
            depth, path = visit(callee, cu)
            if depth > best:
                best, best_path = depth, path
        on_path.discard(key)
        memo[key] = (unit.frames[fn] + best, [fn] + best_path)
        return memo[key]

    total, path = visit(entry, where[entry])
    return dict(max_stack_bytes=total, path=path, unresolved=sorted(unresolved),
                notes=sorted(set(notes)))


def measure(lib_dir: Path, name: str, tgt, jobs: int = 2) -> dict:
    """Stack usage of the library in lib_dir built for `tgt`.

    Returns {"max_stack_bytes": int or None, "compiler", "entry", "path",
    "functions": {function: frame bytes}, "unresolved": [...], "notes": [...],
    "code_bytes": the objects' text + rodata + data, i.e. the library's flash
    without the weights file (absent when nothing was compiled), "units": {C file:
    {"flash_bytes": its object's, "functions": {function: bytes of its code}}}}.
    Never raises: a missing compiler gives max_stack_bytes None and a note.
    """
    lib_dir = Path(lib_dir)
    entry = f"{name}_run"
    cc_path, cc_name = _compiler(tgt)
    result = dict(max_stack_bytes=None, compiler=cc_name, entry=entry, path=[], functions={},
                  unresolved=[], notes=[])
    if cc_path is None:
        result["notes"] = [f"compiler '{cc_name}' not found: stack usage not measured"]
        return result
    flags = _flags(tgt)
    sources = sorted(p for p in lib_dir.glob("*.c") if p.name != f"{name}_weights.c")
    try:
        with tempfile.TemporaryDirectory(prefix="tinydeploy-stack-") as tmp:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                units = dict(zip((p.name for p in sources), pool.map(
                    lambda p: _compile_unit(cc_path, flags, p, lib_dir, Path(tmp)), sources)))
    except (OSError, RuntimeError) as exc:
        result["notes"] = [f"stack usage not measured: {exc}"]
        return result
    for unit in units.values():
        for fn, size in unit.frames.items():
            result["functions"][fn] = max(size, result["functions"].get(fn, 0))
    result.update(deepest(units, entry))
    # the same compile measures the library's code: every object but the weights file's
    result["code_bytes"] = sum(unit.flash_bytes for unit in units.values())
    result["units"] = {n: dict(flash_bytes=u.flash_bytes, functions=dict(u.code))
                       for n, u in units.items()}
    return result
