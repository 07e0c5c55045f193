"""Code generation: the planned IR -> a C library (Jinja2 templates + runtime kernels).

Each op kind has an emitter that says which kernel to call, with which
compile-time parameter struct (rendered as designated initializers into
flash) and which buffers. The templates only lay the file out.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import jinja2
import numpy as np

from . import __version__, inplace
from .errors import TinydeployError
from .resources import CODEGEN_TEMPLATES, RUNTIME_C, data_dir
from .ir import Graph, Op
from .planner import MemoryPlan

TEMPLATES = data_dir(CODEGEN_TEMPLATES)
RUNTIME = data_dir(RUNTIME_C)
MAX_DIMS = 6
C_TYPES = {"float32": "float", "int8": "int8_t", "int32": "int32_t", "uint8": "uint8_t"}


@dataclass
class Call:
    """One kernel invocation in the generated run function."""

    fn: str
    source: Optional[str]  # kernel source file, relative to runtime_c/src (None: header only)
    args: list
    ptype: Optional[str] = None  # parameter struct type, if any
    params: Optional[dict] = None
    locals: list = field(default_factory=list)  # C declarations inside the run function
    statics: list = field(default_factory=list)  # C declarations at file scope
    # runtime headers the generated code uses; default: those the source includes
    headers: list = field(default_factory=list)


@dataclass
class Layer:
    index: int
    op: Op
    call: Call
    sym: str
    out_ptr: str
    out_bytes: int


# --------------------------------------------------------------------------
# C value formatting
# --------------------------------------------------------------------------
def c_float(x: float) -> str:
    x = float(np.float32(x))
    if np.isinf(x):
        return "FLT_MAX" if x > 0 else "-FLT_MAX"
    if np.isnan(x):
        raise TinydeployError("a NaN constant cannot be compiled")
    s = "%.9g" % x
    if not any(ch in s for ch in ".e"):
        s += ".0"
    return s + "f"


def c_value(v) -> str:
    if isinstance(v, (list, tuple, np.ndarray)):
        return "{" + ", ".join(c_value(x) for x in v) + "}"
    if isinstance(v, (float, np.floating)):
        return c_float(v)
    if isinstance(v, str):
        return v
    return str(int(v))


def c_array_body(data: np.ndarray, per_line: int = 16) -> str:
    flat = data.reshape(-1)
    if flat.dtype == np.float32:
        items = [c_float(x) for x in flat]
    else:
        items = [str(int(x)) for x in flat]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n    ".join(lines)


def c_ident(text: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in text)
    return out if out and not out[0].isdigit() else "_" + out


# --------------------------------------------------------------------------
# Emitters
# --------------------------------------------------------------------------
class _Ctx:
    def __init__(self, g: Graph, plan: MemoryPlan, name: str):
        self.g, self.plan, self.name = g, plan, name
        self.weights: dict[str, str] = {}  # tensor -> C symbol

    def ctype(self, tensor: str) -> str:
        return C_TYPES[self.g.tensors[tensor].dtype]

    def ptr(self, tensor: str, const: bool = True) -> str:
        if not tensor:
            return "NULL"
        t = self.g.tensors[tensor]
        if t.is_const:
            if tensor not in self.weights:
                self.weights[tensor] = f"{self.name}_w{len(self.weights)}"
            return self.weights[tensor]
        p = self.plan.placements[tensor]
        ct = self.ctype(tensor)
        if p.region == "input":
            return "input"
        if p.region == "output":
            return "output"
        qual = "const " if const else ""
        return f"({qual}{ct} *)(void *)({self.name}_arena + {p.offset})"

    def scratch(self, op: Op) -> str:
        """Pointer to the op's planned scratch buffer in the arena."""
        return f"(void *)({self.name}_arena + {self.plan.scratch[op.name]})"

    def shape(self, tensor: str) -> tuple:
        return self.g.tensors[tensor].shape


def _nhwc(shape) -> tuple:
    if len(shape) != 4 or shape[0] != 1:
        raise TinydeployError(f"expected a batch-1 NHWC tensor, got shape {shape}")
    return shape[1:]


def _act(op: Op) -> dict:
    lo, hi = op.attrs.get("act", (-np.inf, np.inf))
    return {"act_min": float(lo), "act_max": float(hi)}


def emit_conv2d(c: _Ctx, op: Op) -> Call:
    x, w, b = op.inputs
    ih, iw, ic = _nhwc(c.shape(x))
    oh, ow, oc = _nhwc(c.shape(op.outputs[0]))
    _, kh, kw, _ = c.shape(w)
    params = dict(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw,
                  stride_h=op.attrs["strides"][0], stride_w=op.attrs["strides"][1],
                  dil_h=op.attrs["dilations"][0], dil_w=op.attrs["dilations"][1],
                  pad_top=op.attrs["pads"][0], pad_left=op.attrs["pads"][1],
                  groups=op.attrs["group"], **_act(op))
    return Call("td_conv2d_f32", "f32/conv.c",
                [c.ptr(x), c.ptr(w), c.ptr(b), c.ptr(op.outputs[0], False)],
                "td_conv_f32_params", params)


def emit_fully_connected(c: _Ctx, op: Op) -> Call:
    x, w, b = op.inputs
    n_out, n_in = c.shape(w)
    rows = c.g.tensors[x].size // n_in
    params = dict(rows=rows, in_features=n_in, out_features=n_out, **_act(op))
    return Call("td_fully_connected_f32", "f32/fully_connected.c",
                [c.ptr(x), c.ptr(w), c.ptr(b), c.ptr(op.outputs[0], False)],
                "td_fc_f32_params", params)


def _emit_pool(fn: str) -> Callable:
    def emit(c: _Ctx, op: Op) -> Call:
        x = op.inputs[0]
        ih, iw, ch = _nhwc(c.shape(x))
        oh, ow, _ = _nhwc(c.shape(op.outputs[0]))
        a = op.attrs
        params = dict(in_h=ih, in_w=iw, channels=ch, out_h=oh, out_w=ow,
                      k_h=a["kernel"][0], k_w=a["kernel"][1],
                      stride_h=a["strides"][0], stride_w=a["strides"][1],
                      pad_top=a["pads"][0], pad_left=a["pads"][1],
                      count_include_pad=a["count_include_pad"], **_act(op))
        return Call(fn, "f32/pool.c", [c.ptr(x), c.ptr(op.outputs[0], False)],
                    "td_pool_f32_params", params)
    return emit


def _outer_reduce_inner(shape, first: int, last: int) -> tuple[int, int, int]:
    return (int(np.prod(shape[:first])), int(np.prod(shape[first:last + 1])),
            int(np.prod(shape[last + 1:])))


def emit_mean(c: _Ctx, op: Op) -> Call:
    axes = op.attrs["axes"]
    outer, reduce, inner = _outer_reduce_inner(c.shape(op.inputs[0]), axes[0], axes[-1])
    return Call("td_mean_f32", "f32/mean.c",
                [str(outer), str(reduce), str(inner), c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)])


def _padded(shape) -> list:
    return [1] * (MAX_DIMS - len(shape)) + list(shape)


def _broadcast_strides(shape, out_shape) -> list:
    shape = _padded(shape)
    strides, step = [0] * MAX_DIMS, 1
    for d in reversed(range(MAX_DIMS)):
        strides[d] = 0 if shape[d] == 1 and out_shape[d] != 1 else step
        step *= shape[d]
    return strides


_BINARY_KIND = {"add": 0, "sub": 1, "mul": 2, "div": 3, "max": 4, "min": 5}


def emit_binary(c: _Ctx, op: Op) -> Call:
    a, b = op.inputs
    out = _padded(c.shape(op.outputs[0]))
    if len(c.shape(op.outputs[0])) > MAX_DIMS:
        raise TinydeployError(f"node '{op.name}': more than {MAX_DIMS} dimensions")
    params = dict(out_shape=out, a_strides=_broadcast_strides(c.shape(a), out),
                  b_strides=_broadcast_strides(c.shape(b), out),
                  kind=_BINARY_KIND[op.attrs["op"]], **_act(op))
    return Call("td_binary_f32", "f32/binary.c",
                [c.ptr(a), c.ptr(b), c.ptr(op.outputs[0], False)], "td_binary_f32_params", params)


_UNARY_KIND = {"clip": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4, "hard_sigmoid": 5,
               "hard_swish": 6, "exp": 7, "neg": 8, "abs": 9, "sqrt": 10}


def emit_unary(c: _Ctx, op: Op) -> Call:
    a = op.attrs
    lo, hi = (a["lo"], a["hi"]) if op.kind == "clip" else (-np.inf, np.inf)
    params = dict(size=c.g.tensors[op.inputs[0]].size, kind=_UNARY_KIND[op.kind],
                  alpha=float(a.get("alpha", 0.0)), beta=float(a.get("beta", 0.0)),
                  act_min=float(lo), act_max=float(hi))
    return Call("td_unary_f32", "f32/unary.c", [c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)],
                "td_unary_f32_params", params)


def emit_softmax(c: _Ctx, op: Op) -> Call:
    shape = c.shape(op.inputs[0])
    axis_size = shape[op.attrs["axis"]]
    outer = c.g.tensors[op.inputs[0]].size // axis_size
    return Call("td_softmax_f32", "f32/softmax.c",
                [str(outer), str(axis_size), c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)])


def emit_concat(c: _Ctx, op: Op, layer_sym: str) -> Call:
    axis = op.attrs["axis"]
    out_shape = c.shape(op.outputs[0])
    outer = int(np.prod(out_shape[:axis]))
    inner = [int(np.prod(c.shape(i)[axis:])) for i in op.inputs]
    ct = c.ctype(op.outputs[0])
    ptrs = ", ".join(c.ptr(i) for i in op.inputs)
    return Call("td_concat_f32", "f32/concat.c",
                [str(outer), str(len(inner)), f"{layer_sym}_inner", f"{layer_sym}_inputs",
                 c.ptr(op.outputs[0], False)],
                statics=[f"static const int32_t {layer_sym}_inner[{len(inner)}] = {c_value(inner)};"],
                locals=[f"const {ct} *const {layer_sym}_inputs[{len(inner)}] = {{{ptrs}}};"])


def _contiguous_strides(shape) -> list:
    strides, step = [], 1
    for d in reversed(shape):
        strides.insert(0, step)
        step *= d
    return strides


def emit_transpose(c: _Ctx, op: Op) -> Call:
    shape = c.shape(op.inputs[0])
    perm = op.attrs["perm"]
    strides = _contiguous_strides(shape)
    pad = MAX_DIMS - len(shape)
    params = dict(out_shape=_padded([shape[p] for p in perm]),
                  in_strides=[0] * pad + [strides[p] for p in perm])
    return Call("td_transpose_f32", "f32/transpose.c",
                [c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)], "td_transpose_params", params)


_PAD_MODE = {"constant": 0, "reflect": 1, "edge": 2}


def emit_pad(c: _Ctx, op: Op) -> Call:
    shape = c.shape(op.inputs[0])
    pad = MAX_DIMS - len(shape)
    params = dict(in_shape=_padded(shape), pad_before=[0] * pad + list(op.attrs["before"]),
                  out_shape=_padded(c.shape(op.outputs[0])), mode=_PAD_MODE[op.attrs["mode"]],
                  value=float(op.attrs["value"]))
    return Call("td_pad_f32", "f32/pad.c", [c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)],
                "td_pad_f32_params", params)


# int8 kernels: (function, source, parameter struct, buffer roles). Roles:
# x input, a/b operands, w weights, B bias, o output.
S8_KERNELS = {
    "conv2d_s8": ("td_conv2d_s8", "s8/conv_s8.c", "td_conv_s8_params", "xwBo"),
    "depthwise_conv2d_s8": ("td_depthwise_conv2d_s8", "s8/conv_s8.c", "td_conv_s8_params", "xwBo"),
    "fully_connected_s8": ("td_fully_connected_s8", "s8/fully_connected_s8.c", "td_fc_s8_params", "xwBo"),
    "add_s8": ("td_add_s8", "s8/binary_s8.c", "td_add_s8_params", "abo"),
    "mul_s8": ("td_mul_s8", "s8/binary_s8.c", "td_mul_s8_params", "abo"),
    "max_pool_s8": ("td_max_pool_s8", "s8/pool_s8.c", "td_pool_s8_params", "xo"),
    "avg_pool_s8": ("td_avg_pool_s8", "s8/pool_s8.c", "td_pool_s8_params", "xo"),
    "mean_s8": ("td_mean_s8", "s8/pool_s8.c", "td_mean_s8_params", "xo"),
    "softmax_s8": ("td_softmax_s8", "s8/softmax_s8.c", "td_softmax_s8_params", "xo"),
    "sigmoid_s8": ("td_sigmoid_s8", "s8/activation_s8.c", "td_sigmoid_s8_params", "xo"),
    "tanh_s8": ("td_tanh_s8", "s8/activation_s8.c", "td_tanh_s8_params", "xo"),
    "hardswish_s8": ("td_hardswish_s8", "s8/activation_s8.c", "td_hardswish_s8_params", "xo"),
    "leaky_relu_s8": ("td_leaky_relu_s8", "s8/activation_s8.c", "td_leaky_relu_s8_params", "xo"),
    "requantize_s8": ("td_requantize_s8", "s8/activation_s8.c", "td_requantize_s8_params", "xo"),
    "pad_s8": ("td_pad_s8", "s8/shape_s8.c", "td_pad_s8_params", "xo"),
    "transpose_s8": ("td_transpose_s8", "s8/shape_s8.c", "td_transpose_s8_params", "xo"),
}


def _s8_buffers(c: _Ctx, op: Op, roles: str) -> list:
    ins = iter(op.inputs)
    return [c.ptr(op.outputs[0], False) if r == "o" else c.ptr(next(ins)) for r in roles]


def _s8_params(q: dict, sym: str, statics: list) -> dict:
    """Scalar fields stay inline; array fields become static const arrays."""
    params = {}
    for k, v in q.items():
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype != np.int8:
            statics.append(f"static const int32_t {sym}_{k}[{v.size}] = {c_value(v.tolist())};")
            params[k] = f"{sym}_{k}"
        else:
            params[k] = v
    return params


def emit_s8(c: _Ctx, op: Op, sym: str) -> Call:
    fn, source, ptype, roles = S8_KERNELS[op.kind]
    statics: list = []
    params = _s8_params(op.attrs["q"], sym, statics)
    return Call(fn, source, _s8_buffers(c, op, roles), ptype, params, statics=statics)


def emit_lut_s8(c: _Ctx, op: Op, sym: str) -> Call:
    q = op.attrs["q"]
    return Call("td_lut_s8", "s8/activation_s8.c",
                [str(q["size"]), f"{sym}_table", c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)],
                statics=[f"static const int8_t {sym}_table[256] = {c_value(q['table'].tolist())};"])


def emit_concat_s8(c: _Ctx, op: Op, sym: str) -> Call:
    q = op.attrs["q"]
    fields = ("inner", "requantize", "input_zero_point", "multiplier", "shift")
    entries = ", ".join("{" + ", ".join(str(int(i[f])) for f in fields) + "}" for i in q["inputs"])
    ptrs = ", ".join(c.ptr(i) for i in op.inputs)
    params = dict(outer=q["outer"], n_inputs=q["n_inputs"], output_zero_point=q["output_zero_point"],
                  inputs=f"{sym}_inputs")
    return Call("td_concat_s8", "s8/shape_s8.c", [f"{sym}_ptrs", c.ptr(op.outputs[0], False)],
                "td_concat_s8_params", params,
                statics=[f"static const td_concat_s8_input {sym}_inputs[{q['n_inputs']}] = {{{entries}}};"],
                locals=[f"const int8_t *const {sym}_ptrs[{q['n_inputs']}] = {{{ptrs}}};"])


emit_s8.needs_symbol = emit_lut_s8.needs_symbol = emit_concat_s8.needs_symbol = True
emit_concat.needs_symbol = True


EMITTERS: dict[str, Callable] = {
    "conv2d": emit_conv2d, "fully_connected": emit_fully_connected,
    "max_pool": _emit_pool("td_max_pool_f32"), "avg_pool": _emit_pool("td_avg_pool_f32"),
    "mean": emit_mean, "binary": emit_binary, "softmax": emit_softmax,
    "concat": emit_concat, "transpose": emit_transpose, "pad": emit_pad,
    **{k: emit_unary for k in _UNARY_KIND},
    **{k: emit_s8 for k in S8_KERNELS}, "lut_s8": emit_lut_s8, "concat_s8": emit_concat_s8,
}


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["c_value"] = c_value
    return env


def build_layers(g: Graph, plan: MemoryPlan, name: str, extra_emitters: Optional[dict] = None):
    ctx = _Ctx(g, plan, name)
    emitters = dict(EMITTERS, **(extra_emitters or {}))
    layers = []
    for op in g.ops:
        if op.kind == "reshape" or "fused_into" in op.attrs:  # a fused add runs inside its conv
            continue
        if op.kind not in emitters and "choice" not in op.attrs:
            raise TinydeployError(f"node '{op.name}': no {g.tensors[op.outputs[0]].dtype} kernel "
                                  f"for op '{op.kind}'")
        sym = f"L{len(layers)}_{c_ident(op.name)[:40]}"
        choice = op.attrs.get("choice")
        inplace_emit = inplace.emitter(op)
        emit = choice.emit if choice is not None else inplace_emit or emitters[op.kind]
        call = emit(ctx, op, sym) if choice is not None or inplace_emit is not None or \
            getattr(emit, "needs_symbol", False) else emit(ctx, op)
        out = inplace.layer_output(op)
        layers.append(Layer(len(layers), op, call, sym, ctx.ptr(out), g.tensors[out].nbytes))
    return ctx, layers


def io_info(g: Graph) -> dict:
    """What the generated header says about the input and output."""
    info = {}
    for role, names in (("input", g.inputs), ("output", g.outputs)):
        t = g.tensors[names[0]]
        scale, zp = t.quant.scalar() if t.quant is not None and t.dtype == "int8" else (None, None)
        info[role] = dict(name=names[0], ctype=C_TYPES[t.dtype], dtype=t.dtype, shape=list(t.shape),
                          size=t.size, scale=scale, zero_point=zp)
    return info


def generate(g: Graph, plan: MemoryPlan, out_dir: Path, name: str, model_name: str,
             target_name: str, extra_emitters: Optional[dict] = None) -> dict:
    """Write NAME.h, NAME.c, NAME_weights.c, kernels and CMakeLists.txt into out_dir."""
    ctx, layers = build_layers(g, plan, name, extra_emitters)
    env = _env()
    io = io_info(g)
    weights = [dict(sym=sym, ctype=C_TYPES[_weight_array(g, t).dtype.name],
                    size=_weight_array(g, t).size, body=c_array_body(_weight_array(g, t)), tensor=t)
               for t, sym in ctx.weights.items()]
    headers = sorted({h for l in layers for h in call_headers(l.call)})
    sources = sorted(required_sources({l.call.source for l in layers if l.call.source}, headers))
    arena_io = {role: plan.placements[io[role]["name"]].offset for role in ("input", "output")}
    common = dict(name=name, NAME=name.upper(), version=__version__, model=model_name,
                  target=target_name, io=io, arena_bytes=plan.arena_bytes, layers=layers,
                  weights=weights, sources=sources, headers=headers, arena_io=arena_io)
    out_dir.mkdir(parents=True, exist_ok=True)
    for template, filename in (("model.h.j2", f"{name}.h"), ("model.c.j2", f"{name}.c"),
                               ("weights.c.j2", f"{name}_weights.c"),
                               ("CMakeLists.txt.j2", "CMakeLists.txt")):
        (out_dir / filename).write_text(env.get_template(template).render(**common))
    _copy_runtime(out_dir, sources, [out_dir / f"{name}.c", out_dir / f"{name}_weights.c"])
    return dict(layers=layers, weights=weights, sources=sources, io=io,
                weight_bytes=sum(int(_weight_array(g, w["tensor"]).nbytes) for w in weights))


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
