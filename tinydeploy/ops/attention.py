"""Fused attention: softmax(scale * q @ k^T) @ v computed one query row at a time.

An exported attention block is four layers: scores = MatMul(q, Transpose(k)), a Mul
(or Div) of the scores by a scalar constant (absent when the exporter scales q
before), Softmax over the last axis, MatMul(probabilities, v). Unfused, the arena
holds the whole [batch, heads, N, N] score tensor: memory quadratic in the sequence
length N. `fuse_float` (the float32 pipeline, after the layout pass) and `fuse_int8`
(the int8 pipeline, after quantization, so calibration has observed the score and
probability tensors and they keep their quantization) replace the chain by one op,
`attention` / `attention_s8`, with inputs q, k and v as the two batch_matmul ops read
them (strides: k stays where it is, transposed or not). Its kernel computes, for each
batch entry and query row, the N scores, their softmax and the row times v, so its
only extra memory is one row of scores: N floats, or N bytes plus the int32 sums of each
key and value column (4 (N + d) bytes), as scratch (OpDef.scratch, planned in the arena):
O(N) instead of O(N^2) per head.

The fusion applies when the intermediate tensors feed only the next layer and are no
model outputs, the scale is a scalar constant (a Mul by it, or a Div of the scores by
it, with no fused clamp), the softmax runs over the last axis, the second MatMul reads
the probabilities in their logical order, and both MatMuls have the same batch shape.

int8 keeps each step's integer semantics: batch_matmul_s8 requantization of the
scores to their int8 quantization, mul_s8 by the scalar's int8 code, softmax_s8 of the
row, batch_matmul_s8 of the int8 probabilities and v. The golden model is the
composition of those layers' golden kernels (their parameter dicts are kept in
attrs["steps"]), and the C (s8/attention_s8.c) is bit-exact with it; the float kernel
(f32/attention.c) adds in the order of the unfused float kernels.

The kernel's body (runtime_c/include/td_attention_s8_body.h) is shared by the portable
kernel and its SIMD variants, which replace the row products (q times each key, the
probabilities times v; exact int32 sums, so the same results) and may replace the
requantization of a strip of scores or outputs and the table softmax by vector code with
the same integers:
  arm_dsp_attention  td_attention_s8_dsp (arm/attention_dsp.c; Arm cores with the DSP
                     extension, backends/arm.py asks arm_dsp_choice): SXTB16 + SMLAD, four
                     int8 pairs per two SMLAD, two columns at a time;
  arm_mve_attention  td_attention_s8_mve (arm/attention_mve.c; Helium, arm_mve_choice):
                     VMLADAVA per column along the sum, or VMLA over 16 columns; the
                     requantization in 4 lanes and the Helium table softmax;
  rvv_attention      td_attention_s8_rvv (riscv/attention_rvv.c; RISC-V vector targets,
                     backends/riscv.py asks rvv_choice): lanes over the output columns,
                     the requantization in vector lanes and the vector table softmax.
Layouts a variant's fast loops do not cover run the portable row loops inside it.

`FUSE` (module attribute) switches the fusion off (tests compare with the unfused graph).
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk
from .. import qmath
from ..ctext import Call
from ..ir import Graph, Int8Params, Op
from ..kernel_variants import Choice
from . import binary, matmul, softmax
from . import slice as slice_op
from .base import OpDef, register, scratch_bytes
from .common import contiguous_strides, s8_call

FUSE = True
FOLD_SLICES = True  # read q, k, v where they are in the tensor they are sliced from
NOTE = ("fused attention: the kernel keeps one row of scores (scratch O(N) per query row) "
        "instead of the [N x N] score tensor per head (O(N^2)); peak RAM then grows with the "
        "O(N) activations (q, k, v, output) of the sequence")
INF = float("inf")


# -- matching ---------------------------------------------------------------
def _only_consumer(g: Graph, name: str, consumers) -> Op | None:
    users = consumers.get(name, [])
    return users[0] if len(users) == 1 and name not in g.outputs and name not in g.inputs else None


def _scalar_const(g: Graph, name: str):
    t = g.tensors[name]
    return t.is_const and t.data is not None and t.data.size == 1


def _scale_of_float(g: Graph, op: Op, scores: str):
    """(kind, value) of a float Mul/Div of the scores by a scalar constant, else None."""
    if op.kind != "binary" or op.attrs.get("act", (-INF, INF)) != (-INF, INF):
        return None
    other = [i for i in op.inputs if i != scores]
    if len(other) != 1 or not _scalar_const(g, other[0]) or g.tensors[other[0]].dtype == "int8":
        return None
    value = float(np.asarray(g.tensors[other[0]].data, np.float32).reshape(-1)[0])
    if op.attrs["op"] == "mul":
        return ("mul", value)
    if op.attrs["op"] == "div" and op.inputs[0] == scores and value != 0.0:
        return ("div", value)
    return None


def _chain(g: Graph, last: Op, consumers, producers, kinds) -> list | None:
    """[qk, scale or None, softmax, pv] ending at `last` (a second MatMul), or None."""
    bmm, mul, smax = kinds
    if last.kind != bmm:
        return None
    probs = last.inputs[0]
    sm = producers.get(probs)
    if sm is None or sm.kind != smax or _only_consumer(g, probs, consumers) is not last:
        return None
    x = sm.inputs[0]
    prev = producers.get(x)
    if prev is None or _only_consumer(g, x, consumers) is not sm:
        return None
    scale = None
    if prev.kind != bmm:
        scale = prev
        scores = [i for i in prev.inputs if not g.tensors[i].is_const]
        if len(scores) != 1:
            return None
        prev = producers.get(scores[0])
        if prev is None or prev.kind != bmm or _only_consumer(g, scores[0], consumers) is not scale:
            return None
        if mul == "binary" and _scale_of_float(g, scale, scores[0]) is None:
            return None
        if mul != "binary" and (scale.kind != mul or not all(
                i == scores[0] or _scalar_const(g, i) for i in scale.inputs)):
            return None
    return [prev, scale, sm, last]


def _view_of(g: Graph, name: str, consumers, producers) -> dict | None:
    """An operand that is a slice of another tensor (q, k and v cut from one qkv tensor),
    possibly reshaped (squeezed) after: {"source", "offset", "strides" (one per axis of
    `name`)}, else None. The fused op then reads the operand where it is in the source
    (the slices, read by nothing else, disappear: their copies no longer take RAM)."""
    t = name
    while True:
        op = producers.get(t)
        if op is None:
            return None
        if op.kind in ("slice", "slice_s8"):
            break
        if op.kind != "reshape":
            return None
        t = op.inputs[0]
    sl = op
    src = sl.inputs[0]
    qs, qn = g.tensors[src].quant, g.tensors[name].quant
    if (qs is None) != (qn is None) or (qs is not None and not qs.same_as(qn)):
        return None  # (int8: a view holds its source's codes)
    out = g.tensors[sl.outputs[0]].shape
    offset, geo = slice_op.view(g.tensors[src].shape, sl.attrs["starts"], sl.attrs["steps"], out)
    axes = [(n, s) for n, s in zip(geo["out_shape"], geo["in_strides"]) if n != 1]
    shape = g.tensors[name].shape
    if [d for d in shape if d != 1] != [n for n, _ in axes]:
        return None  # the reshape merges or splits axes: not a view with one stride per axis
    it = iter(axes)
    strides = [0 if d == 1 else next(it)[1] for d in shape]
    return {"source": src, "offset": int(offset), "strides": strides}


def _geometry(shape_of, op: Op, views) -> dict:
    """matmul.geometry of op's operands, each read through its view's strides if any."""
    out = []
    for key, name, view in zip(("a_perm", "b_perm"), op.inputs, views):
        shape = shape_of(name)
        perm = matmul._perm(op, key, len(shape))
        strides = view["strides"] if view is not None else contiguous_strides(shape)
        lshape, lstrides = [0] * len(shape), [0] * len(shape)
        for i, p in enumerate(perm):
            lshape[p], lstrides[p] = int(shape[i]), int(strides[i])
        out.append((lshape, lstrides))
    (la, sa), (lb, sb) = out
    batch = np.broadcast_shapes(tuple(la[:-2]), tuple(lb[:-2]))
    return {"batch_shape": [1] * (matmul.BATCH_DIMS - len(batch)) + [int(d) for d in batch],
            "a_batch_strides": matmul._batch_strides(la, sa), "b_batch_strides": matmul._batch_strides(lb, sb),
            "m": la[-2], "k": la[-1], "n": lb[-1],
            "a_m_stride": sa[-2], "a_k_stride": sa[-1], "b_k_stride": sb[-2], "b_n_stride": sb[-1]}


def _shape_checks(g: Graph, chain: list, views: list) -> dict | None:
    """The fused kernel's geometry, or None when the chain's shapes do not fit it."""
    qk, scale, sm, pv = chain
    shape = lambda n: g.tensors[n].shape  # noqa: E731
    g1, g2 = _geometry(shape, qk, views[:2]), _geometry(shape, pv, [None, views[2]])
    scores = qk.outputs[0]
    rank = len(shape(scores))
    for t in [o for op in chain[1:3] if op is not None for o in op.outputs]:
        if shape(t) != shape(scores):
            return None
    axis = sm.attrs["axis"] if sm.kind == "softmax" else None
    if axis is not None and axis != rank - 1:
        return None
    if sm.kind == "softmax_s8" and int(sm.int8_params["depth"]) != g1["n"]:
        return None
    a_perm = pv.attrs.get("a_perm")
    if a_perm is not None and tuple(a_perm) != tuple(range(len(a_perm))):
        return None
    contiguous = matmul.geometry(shape(scores), tuple(range(rank)), shape(scores), tuple(range(rank)))
    if g2["batch_shape"] != g1["batch_shape"] or g2["m"] != g1["m"] or g2["k"] != g1["n"] or \
            g2["a_batch_strides"] != contiguous["a_batch_strides"] or g2["a_m_stride"] != g1["n"] or \
            g2["a_k_stride"] != 1:
        return None
    return {"batch_shape": g1["batch_shape"], "q_batch_strides": g1["a_batch_strides"],
            "k_batch_strides": g1["b_batch_strides"], "v_batch_strides": g2["b_batch_strides"],
            "m": g1["m"], "k": g1["k"], "n": g1["n"], "d": g2["n"],
            "q_m_stride": g1["a_m_stride"], "q_k_stride": g1["a_k_stride"],
            "k_k_stride": g1["b_k_stride"], "k_n_stride": g1["b_n_stride"],
            "v_k_stride": g2["b_k_stride"], "v_n_stride": g2["b_n_stride"]}


def _fuse(g: Graph, kinds, build) -> int:
    if not FUSE:
        return 0
    fused = 0
    changed = True
    while changed:
        changed = False
        consumers, producers = g.consumers(), g.producers()
        for op in g.ops:
            chain = _chain(g, op, consumers, producers, kinds)
            if chain is None:
                continue
            qk, scale, sm, pv = chain
            names = [qk.inputs[0], qk.inputs[1], pv.inputs[1]]
            views = [_view_of(g, n, consumers, producers) if FOLD_SLICES else None for n in names]
            geo = _shape_checks(g, chain, views)
            if not geo:
                continue
            params, attrs = build(g, chain, geo)
            new = Op(kinds[0].replace("batch_matmul", "attention"), _name(qk, pv),
                     [v["source"] if v is not None else n for n, v in zip(names, views)],
                     list(pv.outputs), attrs, int8_params=None if params is None else Int8Params(params))
            new.attrs.update(perms={"qk": [qk.attrs.get("a_perm"), qk.attrs.get("b_perm")],
                                    "pv": [None, pv.attrs.get("b_perm")]},
                             views=[None if v is None else {"offset": v["offset"], "strides": v["strides"],
                                                            "shape": list(g.tensors[n].shape)}
                                    for n, v in zip(names, views)],
                             scores_shape=list(g.tensors[qk.outputs[0]].shape), tokens=geo["n"])
            at = g.ops.index(pv)
            g.ops[at] = new
            for dead in (qk, scale, sm):
                if dead is not None:
                    g.ops.remove(dead)
            g.remove_unused()
            fused += 1
            changed = True
            break
    return fused


def _name(qk: Op, pv: Op) -> str:
    """The scope of the block ('/blocks.0/attn/attention'), else the second MatMul's name."""
    a, b = qk.name.rsplit("/", 1)[0], pv.name.rsplit("/", 1)[0]
    return f"{a}/attention" if "/" in qk.name and a == b else f"{pv.name}_attention"


# -- float ------------------------------------------------------------------
def _build_float(g: Graph, chain: list, geo: dict) -> tuple:
    qk, scale, sm, pv = chain
    s = None
    if scale is not None:
        s = _scale_of_float(g, scale, [i for i in scale.inputs if not g.tensors[i].is_const][0])
    return None, {"geometry": geo, "scale": s}


def fuse_float(g: Graph) -> int:
    """Fuse float attention chains (after the layout pass); returns how many."""
    return _fuse(g, ("batch_matmul", "binary", "softmax"), _build_float)


def _fake(kind: str, perms) -> Op:
    return Op(kind, "", [], [], {"a_perm": perms[0], "b_perm": perms[1]})


def _viewed(op: Op, args: list) -> list:
    """q, k, v as the unfused graph had them: each view read out of its source."""
    out = []
    for x, view in zip(args, op.attrs.get("views") or [None] * 3):
        if view is not None:
            x = np.asarray(x).reshape(-1)
            idx = np.full(tuple(view["shape"]), view["offset"], np.int64)
            for d, (n, s) in enumerate(zip(view["shape"], view["strides"])):
                shape = [1] * len(view["shape"])
                shape[d] = n
                idx = idx + (np.arange(n, dtype=np.int64) * s).reshape(shape)
            x = x[idx]
        out.append(x)
    return out


def _ptrs(c, op: Op) -> list:
    """The operands' pointers, advanced to where a view starts in its source."""
    views = op.attrs.get("views") or [None] * 3
    return [c.ptr(i) + (f" + {v['offset']}" if v is not None and v["offset"] else "")
            for i, v in zip(op.inputs, views)]


def _operands(op: Op, step: str, a, b, dtype):
    return matmul._operands(_fake("batch_matmul", op.attrs["perms"][step]), [a, b], dtype)


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    q, k, v = _viewed(op, args)
    a, b = _operands(op, "qk", q, k, np.float32)
    s = np.matmul(a, b).astype(np.float32)
    if op.attrs["scale"] is not None:
        kind, c = op.attrs["scale"]
        s = (s * np.float32(c) if kind == "mul" else s / np.float32(c)).astype(np.float32)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    p = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    p, vv = _operands(op, "pv", p, v, np.float32)
    return np.matmul(p, vv).astype(np.float32).reshape(g.tensors[op.outputs[0]].shape)


def _scratch_ptr(c, op: Op, ctype: str) -> str:
    offset, _ = c.plan.own_scratch[op.name]
    return f"({ctype} *)(void *)({c.name}_arena + {offset})"


def _emit_f32(c, op: Op, sym: str) -> Call:
    params = dict(op.attrs["geometry"])
    kind, value = op.attrs["scale"] if op.attrs["scale"] is not None else (None, 1.0)
    params.update(scale_kind={None: 0, "mul": 1, "div": 2}[kind], scale=float(np.float32(value)))
    return Call("td_attention_f32", "f32/attention.c",
                _ptrs(c, op) + [c.ptr(op.outputs[0], False), _scratch_ptr(c, op, "float")],
                "td_attention_f32_params", params)


# -- int8 -------------------------------------------------------------------
def _build_int8(g: Graph, chain: list, geo: dict) -> tuple:
    qk, scale, sm, pv = chain
    s1, s2, sq = qk.int8_params, pv.int8_params, sm.int8_params
    q = dict(geo)
    q.update(q_offset=s1["a_offset"], k_offset=s1["b_offset"], score_offset=s1["output_offset"],
             score_multiplier=s1["multiplier"], score_shift=s1["shift"],
             score_min=s1["act_min"], score_max=s1["act_max"])
    steps = {"qk": s1, "softmax": sq, "pv": s2, "scale": None}
    if scale is None:
        q.update(has_scale=0, scale_input_offset=0, scale_factor=1, scale_offset=0,
                 scale_multiplier=0, scale_shift=0, scale_min=-128, scale_max=127)
    else:
        m = scale.int8_params
        pos = 0 if scale.inputs[0] == qk.outputs[0] else 1
        const = np.asarray(g.tensors[scale.inputs[1 - pos]].data, np.int8)
        own, other = ("input1_offset", "input2_offset") if pos == 0 else ("input2_offset", "input1_offset")
        q.update(has_scale=1, scale_input_offset=m[own], scale_factor=int(const.reshape(-1)[0]) + m[other],
                 scale_offset=m["output_offset"], scale_multiplier=m["output_multiplier"],
                 scale_shift=m["output_shift"], scale_min=m["act_min"], scale_max=m["act_max"])
        steps["scale"] = {"params": m, "position": pos, "constant": const.copy()}
    q.update(softmax_multiplier=sq["input_multiplier"], softmax_left_shift=sq["input_left_shift"],
             softmax_diff_min=sq["diff_min"])
    q.update(p_offset=s2["a_offset"], v_offset=s2["b_offset"], output_offset=s2["output_offset"],
             multiplier=s2["multiplier"], shift=s2["shift"], act_min=s2["act_min"], act_max=s2["act_max"])
    return q, {"steps": steps}


def fuse_int8(g: Graph) -> int:
    """Fuse int8 attention chains (batch_matmul_s8 -> [mul_s8] -> softmax_s8 ->
    batch_matmul_s8) of a quantized graph; returns how many."""
    return _fuse(g, ("batch_matmul_s8", "mul_s8", "softmax_s8"), _build_int8)


def _golden(g: Graph, op: Op, args: list) -> np.ndarray:
    """The unfused layers' golden kernels, one after the other."""
    q, k, v = _viewed(op, args)
    steps = op.attrs["steps"]
    a, b = _operands(op, "qk", q, k, np.int64)
    s = matmul.golden(a, b, steps["qk"]).reshape(op.attrs["scores_shape"])
    if steps["scale"] is not None:
        sc = steps["scale"]
        pair = (s, sc["constant"]) if sc["position"] == 0 else (sc["constant"], s)
        s = gk.mul(pair[0], pair[1], sc["params"]).reshape(s.shape)
    p = gk.softmax(s, steps["softmax"]).reshape(s.shape)
    p, vv = _operands(op, "pv", p, v, np.int64)
    return matmul.golden(p, vv, steps["pv"]).reshape(g.tensors[op.outputs[0]].shape)


def _check(g: Graph, op: Op) -> None:
    steps = op.attrs["steps"]
    matmul._check(g, Op("batch_matmul_s8", op.name, [], [], int8_params=steps["qk"]))
    if steps["scale"] is not None:
        binary._check_mul(g, Op("mul_s8", op.name, [], [], int8_params=steps["scale"]["params"]))
    softmax._check(g, Op("softmax_s8", op.name, [], [], int8_params=steps["softmax"]))
    matmul._check(g, Op("batch_matmul_s8", op.name, [], [], int8_params=steps["pv"]))


def _scale_table(op: Op) -> np.ndarray:
    """The scale step's int8 result for each of the 256 score codes (entry s + 128): mul_s8's
    arithmetic (golden_kernels.mul) by the scalar's code, as the kernel's has_scale path."""
    q = op.int8_params
    s = np.arange(-128, 128, dtype=np.int64)
    prod = (s + int(q["scale_input_offset"])) * int(q["scale_factor"])
    out = qmath.mbqm(prod, int(q["scale_multiplier"]), int(q["scale_shift"])) + int(q["scale_offset"])
    return np.clip(out, int(q["scale_min"]), int(q["scale_max"])).astype(np.int8)


def _emit_s8(c, op: Op, sym: str, fn: str = "td_attention_s8", source: str = "s8/attention_s8.c",
             headers: tuple = ("td_kernels_s8.h", "td_softmax_table_s8.h"), scale_table: bool = True) -> Call:
    """scale_table: the scores' scale step by a 256-byte table (the scalar kernels); the
    vector variants requantize in lanes instead."""
    call = s8_call(c, op, sym, fn, source, "td_attention_s8_params", "abvo")
    call.args = _ptrs(c, op) + call.args[3:] + [_scratch_ptr(c, op, "int8_t")]
    call.headers = list(headers)  # (not the kernels' body header the source includes)
    # the rows' softmax as the unfused softmax would run it: with the exponential table
    # (ops/softmax.py) from the same size on, else td_softmax_s8
    geo = op.int8_params
    sm = dict(op.attrs["steps"]["softmax"])
    sm.update(outer=int(np.prod(geo["batch_shape"])) * int(geo["m"]), depth=int(geo["n"]))
    call.params.update(softmax_table_last=0, softmax_table="0")  # a null pointer: td_softmax_s8
    if softmax.uses_table(sm):
        table = softmax.table_const(c, sm)
        call.consts.append(table)
        call.params.update(softmax_table_last=softmax.exp_table(sm)[1], softmax_table=table.sym)
    call.params["scale_table"] = "0"
    if scale_table and op.attrs["steps"]["scale"] is not None:
        table = c.const(sym, "scale_table", _scale_table(op), "int8_t",
                        note="the scale's result for each score code s (entry s + 128)")
        call.consts.append(table)
        call.params["scale_table"] = table.sym
    return call


def arm_dsp_choice(g: Graph, op: Op) -> Choice:
    """The Arm DSP-extension variant (backends/arm.py asks for it): the portable kernel's
    body with SXTB16/SMLAD row products, two columns at a time (arm/attention_dsp.c)."""
    return Choice("arm_dsp_attention", lambda c, op_, sym: _emit_s8(
        c, op_, sym, "td_attention_s8_dsp", "arm/attention_dsp.c", ("td_arm_attention.h",)),
        detail="row products 4 int8 pairs per 2 SMLAD, two columns at a time")


def arm_mve_choice(g: Graph, op: Op) -> Choice:
    """The Arm Helium variant (backends/arm.py asks for it): the portable kernel's body with
    VMLADAVA / VMLA row products and the Helium table softmax (arm/attention_mve.c)."""
    return Choice("arm_mve_attention", lambda c, op_, sym: _emit_s8(
        c, op_, sym, "td_attention_s8_mve", "arm/attention_mve.c", ("td_arm_attention.h",), scale_table=False),
        detail="q.k 16 int8 pairs per VMLADAVA; p.v 16 columns per step (VMLA)")


def rvv_choice(g: Graph, op: Op) -> Choice:
    """The RISC-V vector variant (backends/riscv.py asks for it): the portable kernel's body
    with the row products in lanes over the columns and the vector table softmax
    (riscv/attention_rvv.c)."""
    return Choice("rvv_attention", lambda c, op_, sym: _emit_s8(
        c, op_, sym, "td_attention_s8_rvv", "riscv/attention_rvv.c", ("td_rv_attention.h",), scale_table=False),
        detail="lanes over output columns (vlse8 + vwmacc.vx)")


# -- figures ----------------------------------------------------------------
def _macs(g: Graph, op: Op) -> int:
    geo = op.attrs["geometry"] if "geometry" in op.attrs else op.int8_params
    batch = int(np.prod(geo["batch_shape"]))
    return batch * int(geo["m"]) * int(geo["n"]) * (int(geo["k"]) + int(geo["d"]))


def _scratch_f32(g: Graph, op: Op) -> int:
    return 4 * int(op.attrs["tokens"])


def _scratch_s8(g: Graph, op: Op) -> int:
    """The sums of each key and value column (n + d int32), one row of n int8 scores."""
    geo = op.int8_params
    return 4 * (int(geo["n"]) + int(geo["d"])) + int(geo["n"])


def report_entry(g: Graph, op: Op) -> dict:
    """How this layer's memory grows with the sequence length (report.json)."""
    geo = op.attrs["geometry"] if "geometry" in op.attrs else op.int8_params
    elem = 4 if op.kind == "attention" else 1
    heads = int(np.prod(geo["batch_shape"]))
    n, m = int(geo["n"]), int(geo["m"])
    return {"tokens": n, "queries": m, "heads": heads,
            "scratch_bytes": scratch_bytes(g, op),
            "unfused_scores_bytes": heads * m * n * elem,
            "scratch_growth": "O(N)", "unfused_growth": "O(N^2)", "note": NOTE}


register(
    OpDef("attention", _float_ref, _emit_f32, macs=_macs, scratch=_scratch_f32),
    OpDef("attention_s8", _golden, _emit_s8, check=_check, macs=_macs, scratch=_scratch_s8),
)
