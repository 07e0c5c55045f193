"""Code generation: the planned IR -> a C library (Jinja2 templates + runtime kernels).

Each layer's call comes from its kernel variant (kernel_select), its in-place
variant (inplace_kernels), or its op's portable emitter (OpDef.emit, tinydeploy/ops):
which kernel to call, with which compile-time parameter struct (rendered as
designated initializers into flash) and which buffers. Emitters only read the graph and the plan: the
constant arrays a kernel needs (re-laid-out weights, folded biases,
multiplier tables) come back as Call.consts, and every constant array goes
to NAME_weights.c. The templates only lay the file out.
"""
from __future__ import annotations

import functools
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import jinja2
import numpy as np

from . import inplace, inplace_kernels, ops, toolchain
from .ctext import (C_TYPES, CONST_TYPES, ELEM_BYTES, MAX_DIMS, STRUCT_FIELDS, STRUCT_FIELD_NAMES, STRUCT_HEADERS,  # noqa: F401
                    Call, Const, c_array_body, c_float, c_ident, c_value)
from .version import __version__
from .errors import TinydeployError
from .resources import CODEGEN_TEMPLATES, RUNTIME_C, data_dir
from .ir import Graph, Op
from .planner import MemoryPlan

TEMPLATES = data_dir(CODEGEN_TEMPLATES)
RUNTIME = data_dir(RUNTIME_C)
_NUMPY_OF = {"int8_t": np.int8, "uint8_t": np.uint8, "int16_t": np.int16, "uint16_t": np.uint16,
             "int32_t": np.int32, "float": np.float32}


@dataclass
class Layer:
    index: int
    op: Op
    call: Call
    sym: str
    out_ptr: str
    out_bytes: int
    weight_bytes: int = 0  # bytes of the NAME_weights.c arrays attributed to this layer
    shared_with: Optional[int] = None  # the earlier layer whose generated function(s) this one runs

    @property
    def function(self) -> str:
        """The C function the layer calls."""
        return self.call.fn


# --------------------------------------------------------------------------
# Emitters
# --------------------------------------------------------------------------
class _Ctx:
    """Per-generation state: which graph constants the layers reference.  The
    graph and the plan are only read."""

    def __init__(self, g: Graph, plan: MemoryPlan, name: str):
        self.g, self.plan, self.name = g, plan, name
        self.weights: dict[str, str] = {}  # tensor -> C symbol
        self.owner: dict[str, int] = {}  # tensor -> the first layer referencing it
        self.layer = -1  # index of the layer being emitted

    def ctype(self, tensor: str) -> str:
        return C_TYPES[self.g.tensors[tensor].dtype]

    def ptr(self, tensor: str, const: bool = True) -> str:
        if not tensor:
            return "NULL"
        t = self.g.tensors[tensor]
        if t.dtype == "int4":  # only kernels of int4 weights read them, packed (ops.common.s8_call)
            raise TinydeployError(f"internal error: the int4 weights '{tensor}' reached a kernel "
                                  "that reads int8 weights")
        if t.is_const:
            if tensor not in self.weights:
                self.weights[tensor] = f"{self.name}_w{len(self.weights)}"
                self.owner[tensor] = self.layer
            return self.weights[tensor]
        p = self.plan.placements[tensor]
        ct = self.ctype(tensor)
        if p.region == "input":
            return "input"
        if p.region == "output":
            return "output"
        qual = "const " if const else ""
        return f"({qual}{ct} *)(void *)({self.name}_arena + {p.offset})"

    def const(self, sym: str, field: str, data, ctype: Optional[str] = None, note: str = "",
              aligned: bool = False) -> Const:
        """The constant array `field` of layer `sym` (no state changes: the emitter
        puts it in its Call.consts and names it by .sym in its C text)."""
        data = np.asarray(data)
        if ctype is None:
            ctype = CONST_TYPES[data.dtype.name]
        if ctype in STRUCT_FIELDS:
            rows = np.asarray(data, np.int64).reshape(-1, STRUCT_FIELDS[ctype])
            arr = rows.astype(np.int32)
            if not np.array_equal(arr, rows):
                raise TinydeployError(f"{sym}_{field}: a value does not fit int32_t")
        else:
            flat = data.reshape(-1)
            arr = flat.astype(_NUMPY_OF[ctype])
            if ctype != "float" and not np.array_equal(arr.astype(np.int64), flat.astype(np.int64)):
                raise TinydeployError(f"{sym}_{field}: a value does not fit {ctype}")
        return Const(f"{self.name}_{sym}_{field}", np.ascontiguousarray(arr), ctype,
                     note or f"{sym}: {field}", aligned)

    def inplace(self, op: Op):
        """The op's in-place decision as planned (stage_types.InplaceMode), or None."""
        return self.plan.mode(op.name)

    def scratch(self, op: Op) -> str:
        """Pointer to the op's planned scratch buffer in the arena."""
        return f"(void *)({self.name}_arena + {self.plan.scratch[op.name]})"

    def shape(self, tensor: str) -> tuple:
        return self.g.tensors[tensor].shape


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _env() -> jinja2.Environment:
    """One environment per process: it keeps the templates compiled (~0.4 s per compile)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["c_value"] = c_value
    env.filters["c_comment"] = lambda text: str(text).replace("*/", "*_/").replace("\n", " ").replace("\r", " ")
    return env


def build_layers(g: Graph, plan: MemoryPlan, name: str):
    ctx = _Ctx(g, plan, name)
    layers = []
    fused = plan.fused_into
    for op in g.ops:
        if op.kind == "reshape" or op.name in fused:  # a fused add runs inside its conv
            continue
        choice = plan.choice(op.name)
        opdef = ops.lookup(op.kind)
        if choice is None and (opdef is None or opdef.emit is None):
            raise TinydeployError(f"node '{op.name}': no {g.tensors[op.outputs[0]].dtype} kernel "
                                  f"for op '{op.kind}'")
        sym = f"L{len(layers)}_{c_ident(op.name)[:40]}"
        ctx.layer = len(layers)
        mode = plan.mode(op.name)
        emit = choice.emit if choice is not None else inplace_kernels.emitter(mode) or opdef.emit
        call = emit(ctx, op, sym)
        out = inplace.layer_output(op, mode)
        layers.append(Layer(len(layers), op, call, sym, ctx.ptr(out), g.tensors[out].nbytes))
    share_functions(layers)
    return ctx, layers


_PLACEHOLDER_SYM, _PLACEHOLDER_PRE = "@SYM", "@L"


def _own_names(layer: Layer):
    """Patterns of the names a layer's file-scope C text (Call.statics) gives
    its own symbols: the layer symbol as a prefix (SYM_arm, SYM_cfg, ...) and
    the short prefix L<index> (enum constants L<index>_x, macro argument
    (L<index>)).  Names that merely contain them (NAME_SYM_blob, a weights
    array) do not match: a word boundary must precede."""
    return (re.compile(rf"\b{re.escape(layer.sym)}(?=\w)"),
            re.compile(rf"\bL{layer.index}(?![A-Za-z0-9])"))


def _normalized_statics(layer: Layer, call: Optional[Call] = None) -> Optional[str]:
    """The file-scope C text of the layer's call (or of `call`, one of its
    alternatives) with the layer's own names replaced by placeholders, or None
    when it cannot be shared: no such text, or text that names the layer's own
    parameter struct (the template's `static const PTYPE SYM`, which stays per
    layer)."""
    text = "\n".join((call or layer.call).statics)
    if not text or re.search(rf"\b{re.escape(layer.sym)}\b", text):
        return None
    sym_re, pre_re = _own_names(layer)
    return pre_re.sub(_PLACEHOLDER_PRE, sym_re.sub(_PLACEHOLDER_SYM, text))


def _rename(text, layer: Layer, first: Layer):
    """text (C text of the layer's call) naming the first layer's symbols instead of the layer's."""
    if not isinstance(text, str):
        return text
    sym_re, pre_re = _own_names(layer)
    return pre_re.sub(f"L{first.index}", sym_re.sub(first.sym, text))


def share_functions(layers: list) -> None:
    """Layers whose generated file-scope code (the specialized wrapper function,
    its enum constants and parameter structs: Call.statics) is the same text
    once their own names are replaced by placeholders run one copy of it: a
    later layer's statics are dropped and its call names the first layer's
    function (and structs).  Its weights, buffers and place in the run order
    stay its own; the wrappers take those as arguments.  Sets
    Layer.shared_with.

    A call may come with alternatives (Call.alternatives: the same results
    with other constants, e.g. another requantization shift): the groups are
    chosen greedily, largest first, among the texts each layer can take; a
    layer left alone keeps its own call."""
    options = []  # per layer: [(text, call)], its own call first; none when it cannot share
    for layer in layers:
        opts = []
        if _normalized_statics(layer) is not None:
            for call in [layer.call] + layer.call.alternatives:
                key = _normalized_statics(layer, call)
                if key is not None and key not in (k for k, _ in opts):
                    opts.append((key, call))
        options.append(opts)
    own = {opts[0][0] for opts in options if opts}
    todo = {i for i, opts in enumerate(options) if opts}
    while todo:
        able: dict = {}
        for i in sorted(todo):
            for key, _ in options[i]:
                able.setdefault(key, []).append(i)
        # the text most layers can take; then one that is some layer's own; then the earliest
        key, group = max(able.items(), key=lambda kv: (len(kv[1]), kv[0] in own, -kv[1][0]))
        if len(group) < 2:
            break  # the rest keep their own calls
        owner = layers[group[0]]
        for i in group:
            layer = layers[i]
            layer.call = dict(options[i])[key]
            layer.call.alternatives = []
            if layer is not owner:
                _share(layer, owner)
        todo -= set(group)
    for layer in layers:
        layer.call.alternatives = []


def _share(layer: Layer, owner: Layer) -> None:
    """The layer's call runs the owner's function: its statics dropped, the names
    of the owner's in its C text."""
    call = layer.call
    call.fn = _rename(call.fn, layer, owner)
    call.args = [_rename(a, layer, owner) for a in call.args]
    call.locals = [_rename(a, layer, owner) for a in call.locals]
    if call.params:
        call.params = {k: _rename(v, layer, owner) for k, v in call.params.items()}
    call.statics = []
    layer.shared_with = owner.index


def io_info(g: Graph) -> dict:
    """What the generated header says about the inputs and outputs: "inputs" and
    "outputs" (lists in the model's order; each with its ONNX name and its C name,
    cname), and "input"/"output", the first of each (a model with one input and
    one output: its input and output)."""
    info = {}
    for role, names in (("input", g.inputs), ("output", g.outputs)):
        entries, taken = [], set()
        for n in names:
            t = g.tensors[n]
            scale, zp = t.quant.scalar() if t.quant is not None and t.dtype == "int8" else (None, None)
            entries.append(dict(name=n, cname=_io_cname(n, taken), ctype=C_TYPES[t.dtype], dtype=t.dtype,
                                shape=list(t.shape), size=t.size, scale=scale, zero_point=zp))
        info[role + "s"] = entries
        info[role] = entries[0]
    ctypes = {e["ctype"] for role in ("inputs", "outputs") for e in info[role]}
    if len(ctypes) > 1:
        raise TinydeployError("internal error: the model's inputs and outputs have different element "
                              f"types ({', '.join(sorted(ctypes))})")
    return info


def _io_cname(name: str, taken: set) -> str:
    """A C identifier for an input or output: ASCII letters, digits and '_', unique
    among its role ignoring case (header macros spell it in capitals)."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "tensor"
    if base[0].isdigit():
        base = "t" + base
    cname, k = base, 2
    while cname.upper() in taken:
        cname, k = f"{base}_{k}", k + 1
    taken.add(cname.upper())
    return cname


def weight_arrays(g: Graph, ctx: _Ctx, layers: list) -> list:
    """Every constant array of NAME_weights.c, in layer order: the graph
    constants the layers reference (each once, owned by the first layer that
    references it) and the arrays the emitters made; an emitter's array with the
    symbol, type and values of an earlier one is that one (emitted once, counted
    for the first layer), so emitters share an array by naming it alike."""
    graph = {}
    for t, sym in ctx.weights.items():
        data = _weight_array(g, t)
        graph.setdefault(ctx.owner[t], []).append(
            Const(sym, data, C_TYPES[data.dtype.name], f"{t} ({data.dtype.name} {list(data.shape)})",
                  aligned=True))
    arrays, seen = [], {}
    for l in layers:
        for k in graph.pop(l.index, []) + l.call.consts:
            first = seen.setdefault(k.sym, k)
            if first is not k and first.ctype == k.ctype and np.array_equal(first.data, k.data):
                continue  # one array shared by several layers (e.g. a softmax exp table)
            arrays.append(dict(sym=k.sym, ctype=k.ctype, size=k.size, nbytes=k.nbytes, layer=l.index,
                               note=k.note.replace("*/", "*_/").replace("\n", " "), aligned=k.aligned,
                               body=_const_body(k)))
    assert not graph, "a constant referenced outside the layers"
    syms = [a["sym"] for a in arrays]
    if len(set(syms)) != len(syms):
        raise TinydeployError("internal error: two constant arrays with one C symbol")
    return arrays


def _const_body(k: Const) -> str:
    if k.ctype in STRUCT_FIELD_NAMES:
        names = STRUCT_FIELD_NAMES[k.ctype]
        return ",\n    ".join("{" + ", ".join(f".{n} = {int(v)}" for n, v in zip(names, row)) + "}"
                               for row in k.data)
    if k.ctype in STRUCT_FIELDS:
        return ",\n    ".join("{" + ", ".join(str(int(v)) for v in row) + "}" for row in k.data)
    return c_array_body(k.data)


def generate(g: Graph, plan: MemoryPlan, out_dir: Path, name: str, model_name: str,
             target_name: str, target=None, weights_section: Optional[str] = None,
             arena_section: Optional[str] = None) -> dict:
    """Write NAME.h, NAME.c, NAME_weights.c, kernels and CMakeLists.txt into out_dir.
    A pure function of (g, plan, names): neither the graph nor the plan changes.
    target: the Target, for NAME.c's check of the compiler's core (toolchain.core_guard);
    weights_section / arena_section: linker sections for the weights and the arena."""
    ctx, layers = build_layers(g, plan, name)
    env = _env()
    io = io_info(g)
    weights = weight_arrays(g, ctx, layers)
    for l in layers:
        l.weight_bytes = sum(w["nbytes"] for w in weights if w["layer"] == l.index)
    structs = sorted({(w["ctype"], ELEM_BYTES[w["ctype"]]) for w in weights if w["ctype"] in STRUCT_FIELDS})
    headers = sorted({h for l in layers for h in call_headers(l.call)})
    sources = sorted(required_sources({l.call.source for l in layers if l.call.source}, headers))
    arena_io = {role: plan.placements[io[role]["name"]].offset for role in ("input", "output")}
    for role in ("inputs", "outputs"):
        for e in io[role]:
            e["arena_offset"] = plan.placements[e["name"]].offset
    multi = len(io["inputs"]) > 1 or len(io["outputs"]) > 1
    common = dict(name=name, NAME=name.upper(), version=__version__, model=model_name,
                  target=target_name, io=io, arena_bytes=plan.arena_bytes, layers=layers,
                  weights=weights, structs=structs, sources=sources, headers=headers, arena_io=arena_io, multi=multi,
                  weight_headers=sorted({STRUCT_HEADERS[s] for s, _ in structs}),
                  core_guard=toolchain.core_guard(target, name, headers + sources) if target else [],
                  weights_section=weights_section, arena_section=arena_section)
    out_dir.mkdir(parents=True, exist_ok=True)
    for template, filename in (("model.h.j2", f"{name}.h"), ("model.c.j2", f"{name}.c"),
                               ("weights.c.j2", f"{name}_weights.c"),
                               ("CMakeLists.txt.j2", "CMakeLists.txt")):
        (out_dir / filename).write_text(env.get_template(template).render(**common))
    _copy_runtime(out_dir, sources, [out_dir / f"{name}.c", out_dir / f"{name}_weights.c"])
    return dict(layers=layers, weights=weights, sources=sources, io=io,
                weight_bytes=sum(w["nbytes"] for w in weights))


def _weight_array(g: Graph, tensor: str) -> np.ndarray:
    t = g.tensors[tensor]
    return t.data if t.data.dtype.name in C_TYPES else t.data.astype(np.float32)


# --------------------------------------------------------------------------
# Runtime files: what a model's generated files need, followed from the files
# themselves -- `#include "..."` lines, and "td-requires: DIR/FILE.c" markers
# in a comment of a file that calls functions another source defines.
# --------------------------------------------------------------------------
_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
_REQUIRES = re.compile(r"\btd-requires:\s*([\w./-]+\.c)\b")


def _runtime_file(name: str, near: Optional[Path] = None) -> Optional[Path]:
    """A runtime header by its #include name: a private one beside the
    including source, else a public one in runtime_c/include."""
    for d in ([near] if near is not None else []) + [RUNTIME / "include"]:
        if (d / name).is_file():
            return d / name
    return None


def _includes(path: Path) -> list[Path]:
    found = (_runtime_file(n, path.parent) for n in _INCLUDE.findall(path.read_text()))
    return [f for f in found if f is not None]


def call_headers(call: Call) -> list[str]:
    """The public runtime headers a layer's generated code includes: the
    call's own list, else those its kernel source includes (they declare the
    kernel), reached through the source's private headers."""
    if call.headers or call.source is None:
        return list(call.headers)
    public, todo, seen = set(), [RUNTIME / "src" / call.source], set()
    while todo:
        f = todo.pop()
        for inc in _includes(f):
            if inc.parent == RUNTIME / "include":
                public.add(inc.name)
            elif inc not in seen:
                seen.add(inc)
                todo.append(inc)
    return sorted(public)


def _closure(sources, headers) -> tuple[set, set]:
    """Every runtime file (sources relative to runtime_c/src, headers as
    paths) reachable from the given sources and public headers."""
    srcs, files = set(), set()
    todo = [RUNTIME / "src" / s for s in sources] + [RUNTIME / "include" / h for h in headers]
    while todo:
        f = todo.pop()
        if f in files:
            continue
        files.add(f)
        if f.suffix == ".c":
            srcs.add(f.relative_to(RUNTIME / "src").as_posix())
        text = f.read_text()
        todo += _includes(f)
        for req in _REQUIRES.findall(text):
            if not (RUNTIME / "src" / req).is_file():
                raise TinydeployError(f"{f.name}: td-requires names a missing source {req}")
            todo.append(RUNTIME / "src" / req)
    return srcs, {f for f in files if f.suffix == ".h"}


def required_sources(sources, headers) -> set:
    """The layers' kernel sources plus every source they or the headers require."""
    return _closure(sources, headers)[0]


def _copy_runtime(out_dir: Path, sources: list, generated: list) -> None:
    """Copy the runtime files the generated files reach: the sources (as
    td_DIR_FILE.c) and every header included on the way, nothing else."""
    names = [n for g in generated for n in _INCLUDE.findall(g.read_text())]
    roots = [n for n in names if _runtime_file(n) is not None]
    _, headers = _closure(sources, roots)
    for header in sorted(headers):
        shutil.copy(header, out_dir / header.name)
    for src in sources:
        shutil.copy(RUNTIME / "src" / src, out_dir / ("td_" + src.replace("/", "_")))
