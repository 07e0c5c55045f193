"""C text primitives shared by every emitter: the record of one kernel call and
the formatting of C literals. Op modules and backends build `Call`s; codegen
lays them out with the templates."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .errors import TinydeployError

MAX_DIMS = 6  # rank limit of the runtime's shape-generic kernels (TD_MAX_DIMS)
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
    statics: list = field(default_factory=list)  # C declarations at file scope (code, small structs)
    consts: list = field(default_factory=list)  # Const arrays the call needs, placed in NAME_weights.c
    # runtime headers the generated code uses; default: those the source includes
    headers: list = field(default_factory=list)
    # equivalent Calls (same results, other compile-time constants and constant data: e.g. a
    # larger requantization shift), from which codegen.share_functions may take the one whose
    # generated function an other layer has too
    alternatives: list = field(default_factory=list)
    # how this call runs its variant, when it is one of the variant's forms (e.g. "shared":
    # the run-time-shape form; appended to report.json's variant_detail)
    detail: str = ""


# Element types of constant arrays, and the bytes of each element.  The struct
# types hold int32_t fields, but for the run-time shapes' int16_t ones (their emitters
# check the range: backends/arm.py fits_int16); weights.c checks their size at compile
# time.
CONST_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "uint16": "uint16_t",
               "int32": "int32_t", "float32": "float"}
ELEM_BYTES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "float": 4,
              "td_rv_rq": 20, "td_concat_s8_input": 20, "td_arm_add_rescale": 20,
              "td_arm_conv_shape": 32, "td_arm_epi_rq": 20, "td_arm_dw_shape": 30}
STRUCT_FIELDS = {"td_rv_rq": 5, "td_concat_s8_input": 5, "td_arm_add_rescale": 5,
                 "td_arm_conv_shape": 15, "td_arm_epi_rq": 5, "td_arm_dw_shape": 15}
STRUCT_HEADERS = {"td_rv_rq": "td_kernels_riscv.h", "td_concat_s8_input": "td_kernels_s8.h",
                  "td_arm_add_rescale": "td_arm_add_table.h",
                  "td_arm_conv_shape": "td_arm_common.h",
                  "td_arm_epi_rq": "td_arm_common.h", "td_arm_dw_shape": "td_arm_common.h"}  # declared in
# The field names of the structs whose rows weights.c writes with designated initializers
STRUCT_FIELD_NAMES = {"td_arm_conv_shape": (
    "pixels", "out_c", "k4", "in_h", "in_w", "in_c", "out_h", "out_w", "k_h", "k_w",
    "stride_h", "stride_w", "pad_top", "pad_left", "in_zero_point"),
    "td_arm_epi_rq": ("add_mult", "add_c", "add_fix_mask", "add_min", "add_max"),
    "td_arm_dw_shape": ("in_h", "in_w", "in_c", "out_h", "out_w", "stride_h", "pad_top", "pad_left",
                        "in_zero_point", "group_c", "ring_w", "dir", "out_zero_point", "act_min",
                        "act_max")}


@dataclass
class Const:
    """A constant array an emitter derived from the graph (re-laid-out weights,
    folded biases, multiplier tables...).  Emitters return these with their
    Call instead of adding tensors to the graph; codegen places them in
    NAME_weights.c (flash) and declares them for NAME.c."""

    sym: str  # C symbol (model-name prefixed: it is global)
    data: np.ndarray  # values; [n][fields] rows for a struct ctype
    ctype: str
    note: str = ""  # what it is, as a comment in NAME_weights.c
    aligned: bool = False  # 16-byte aligned (streams kernels load in wide words), else natural

    @property
    def size(self) -> int:  # elements (struct rows) of the C array
        return self.data.shape[0] if self.ctype in STRUCT_FIELDS else self.data.size

    @property
    def nbytes(self) -> int:
        return self.size * ELEM_BYTES[self.ctype]


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


def c_struct(ctype: str, name: str, fields: dict, one_line: bool = False) -> str:
    """`static const ctype name = {...};` with every field by name (values as c_value writes
    them: a nested dict is a nested initializer); one field per line, or all on one line."""
    def init(v) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f".{k} = {init(x)}" for k, x in v.items()) + "}"
        return c_value(v)
    if one_line:
        return f"static const {ctype} {name} = {init(fields)};"
    return f"static const {ctype} {name} = {{\n" + "".join(f"    .{k} = {init(v)},\n" for k, v in fields.items()) + "};"


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


# parameter structs whose per-channel shifts are int8 arrays (-31 .. 31; 3 bytes less a
# channel than int32)
INT8_SHIFT_STRUCTS = ("td_conv_s8_params",)


def s8_params(c, q: dict, sym: str, consts: list, ptype: Optional[str] = None) -> dict:
    """An int8 parameter dict as struct fields: scalar fields stay inline; array
    fields (per-channel multipliers and shifts) become int32 constant arrays
    (made by the emit context c), appended to consts; the shifts of a ptype in
    INT8_SHIFT_STRUCTS int8 ones."""
    params = {}
    for k, v in q.items():
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype != np.int8:
            narrow = k == "shift" and ptype in INT8_SHIFT_STRUCTS
            arr = c.const(sym, k, v, "int8_t" if narrow else "int32_t")
            consts.append(arr)
            params[k] = arr.sym
        else:
            params[k] = v
    return params
