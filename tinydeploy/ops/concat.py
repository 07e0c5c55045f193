"""Concatenation along one axis: input k viewed as [outer][inner_k].

int8 inputs whose quantization differs from the output's are requantized on
the way (TFLite). Portable kernels: td_concat_f32 (f32/concat.c),
td_concat_s8 (s8/shape_s8.c).
"""
from __future__ import annotations

import numpy as np

from .. import golden_kernels as gk, qmath
from ..ctext import Call
from ..ir import Graph, Int8Params, Op, QuantParams
from ..overflow import offset_bound, shifted
from .base import OpDef, register
from .common import scalar_q


def _layout(lay, op: Op) -> None:
    """Every input in the first activation's order; the axis follows it."""
    g = lay.g
    first = next(i for i in op.inputs if not g.tensors[i].is_const)
    perm = lay.perm[first]
    rank = len(perm)
    op.inputs = [lay.const_physical(i, rank, perm) if g.tensors[i].is_const
                 else lay.want(i, perm) for i in op.inputs]
    op.attrs["axis"] = perm.index(op.attrs["axis"])
    lay.set_out(op, perm)


def _emit_f32(c, op: Op, sym: str) -> Call:
    axis = op.attrs["axis"]
    outer = int(np.prod(c.shape(op.outputs[0])[:axis]))
    inner = [int(np.prod(c.shape(i)[axis:])) for i in op.inputs]
    ct = c.ctype(op.outputs[0])
    ptrs = ", ".join(c.ptr(i) for i in op.inputs)
    k = c.const(sym, "inner", np.asarray(inner), "int32_t")
    return Call("td_concat_f32", "f32/concat.c",
                [str(outer), str(len(inner)), k.sym, f"{sym}_inputs", c.ptr(op.outputs[0], False)],
                consts=[k], locals=[f"const {ct} *const {sym}_inputs[{len(inner)}] = {{{ptrs}}};"])


def _to_int8(g: Graph, op: Op) -> None:
    out_q = scalar_q(g, op.outputs[0], op)
    axis = op.attrs["axis"]
    shape = g.tensors[op.outputs[0]].shape
    inputs = []
    for k, name in enumerate(op.inputs):
        t = g.tensors[name]
        if t.is_const and t.dtype != "int8":  # e.g. a class token: stored in the output's quantization
            data = np.clip(np.round(t.data / np.float32(out_q[0])) + out_q[1], -128, 127).astype(np.int8)
            name = op.inputs[k] = g.add_const(name + "_s8", data)
            g.tensors[name].quant = QuantParams(np.float32(out_q[0]), np.int32(out_q[1]))
        iq = scalar_q(g, name, op)
        inputs.append(qmath.concat_input_params(int(np.prod(g.tensors[name].shape[axis:])),
                                                iq[0], iq[1], out_q[0], out_q[1]))
    op.kind = "concat_s8"
    op.int8_params = Int8Params({"outer": int(np.prod(shape[:axis])), "n_inputs": len(inputs),
                                 "output_zero_point": out_q[1], "inputs": inputs})


def _check(g: Graph, op: Op) -> None:
    for i, inp in enumerate(op.int8_params["inputs"]):
        if inp["requantize"]:
            shifted(f"input {i} minus its zero point", offset_bound(inp["input_zero_point"]), inp["shift"])


def _requant_table(q: dict, inp: dict) -> np.ndarray:
    """The requantized value of every int8 input value (index v + 128): the golden
    kernel's arithmetic, so the table is exact."""
    return gk.requantize(np.arange(-128, 128, dtype=np.int64),
                         {"input_zero_point": inp["input_zero_point"],
                          "output_zero_point": q["output_zero_point"],
                          "multiplier": inp["multiplier"], "shift": inp["shift"]}).astype(np.int8)


def _emit_s8(c, op: Op, sym: str) -> Call:
    q = op.int8_params
    fields = ("inner", "requantize", "input_zero_point", "multiplier", "shift")
    rows = np.array([[int(i[f]) for f in fields] for i in q["inputs"]], np.int64)
    # a requantized input reads its values' table: `requantize` is its number (from 1)
    tables = [_requant_table(q, i) for i in q["inputs"] if i["requantize"]]
    rows[:, 1] = np.cumsum(rows[:, 1]) * rows[:, 1]
    inputs = c.const(sym, "inputs", rows, "td_concat_s8_input")
    consts = [inputs]
    params = dict(outer=q["outer"], n_inputs=q["n_inputs"], output_zero_point=q["output_zero_point"],
                  inputs=inputs.sym, tables="NULL")
    if tables:
        t = c.const(sym, "tables", np.concatenate(tables), "int8_t",
                    "per requantized input the output value of each input value v at v + 128")
        consts.append(t)
        params["tables"] = t.sym
    ptrs = ", ".join(c.ptr(i) for i in op.inputs)
    return Call("td_concat_s8", "s8/shape_s8.c", [f"{sym}_ptrs", c.ptr(op.outputs[0], False)],
                "td_concat_s8_params", params, consts=consts,
                locals=[f"const int8_t *const {sym}_ptrs[{q['n_inputs']}] = {{{ptrs}}};"])


register(
    OpDef("concat", lambda g, op, args: np.concatenate(args, axis=op.attrs["axis"]), _emit_f32,
          layout=_layout, to_int8=_to_int8),
    OpDef("concat_s8", lambda g, op, args: gk.concat(args, op.int8_params), _emit_s8, check=_check),
)
