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
    source: str  # kernel source file, relative to runtime_c/src
    args: list
    ptype: Optional[str] = None  # parameter struct type, if any
    params: Optional[dict] = None
    locals: list = field(default_factory=list)  # C declarations inside the run function
    statics: list = field(default_factory=list)  # C declarations at file scope


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


def s8_params(q: dict, sym: str, statics: list) -> dict:
    """An int8 parameter dict as struct fields: scalar fields stay inline, array
    fields (per-channel multipliers, shifts) become static const arrays."""
    params = {}
    for k, v in q.items():
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype != np.int8:
            statics.append(f"static const int32_t {sym}_{k}[{v.size}] = {c_value(v.tolist())};")
            params[k] = f"{sym}_{k}"
        else:
            params[k] = v
    return params
