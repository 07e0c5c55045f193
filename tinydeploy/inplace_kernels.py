"""C for the in-place kernels (runtime_c/src/s8/inplace_s8.c) of ops whose planned
buffers overlap: the emitting half of the in-place feature, on codegen's side.

inplace.py decides which ops may overlap their input (and the planner where);
codegen.build_layers asks emitter() here for the kernel of each such op.
"""
from __future__ import annotations

from typing import Optional

from .ctext import Call, c_struct, s8_params
from .ir import Op
from .stage_types import InplaceMode

INPLACE_SOURCE = "s8/inplace_s8.c"


def emitter(mode: Optional[InplaceMode]) -> Optional[callable]:
    """The emitter for the in-place variant of an op planned with `mode`, or None for
    the normal one."""
    if mode is None:
        return None
    if mode.fused:
        return _emit_conv_add
    if mode.mode == "window" and mode.direction is not None:
        return _emit_window
    return None  # elementwise: the normal kernels allow output == input


def _emit_window(c, op: Op, sym: str):
    ptype = "td_conv_s8_params"  # both convolutions' parameter struct
    fn = "td_conv2d_s8_overlap" if op.kind == "conv2d_s8" else "td_depthwise_conv2d_s8_overlap"
    consts: list = []
    params = s8_params(c, op.int8_params, sym, consts, ptype)
    x, w, b = op.inputs
    backward = "1" if c.inplace(op).direction == "backward" else "0"
    return Call(fn, INPLACE_SOURCE, [c.ptr(x), c.ptr(w), c.ptr(b), c.ptr(op.outputs[0], False), backward],
                ptype, params, consts=consts)


ADD_FIELDS = ("input1_offset", "input2_offset", "output_offset", "left_shift",
              "input1_multiplier", "input1_shift", "input2_multiplier", "input2_shift",
              "output_multiplier", "output_shift", "act_min", "act_max")


def _emit_conv_add(c, op: Op, sym: str):
    mode = c.inplace(op)
    add = next(o for o in c.g.ops if o.name == mode.add)
    statics: list = []
    consts: list = []
    conv = s8_params(c, op.int8_params, sym, consts, "td_conv_s8_params")
    aq = add.int8_params
    res = {k: int(aq[k]) for k in ADD_FIELDS}
    res["conv_is_input1"] = int(mode.conv_is_input1)
    statics.append(c_struct("td_conv_s8_params", f"{sym}_conv", conv))
    params = {"conv": f"&{sym}_conv", **res}
    x, w, b = op.inputs
    backward = "1" if mode.direction == "backward" else "0"
    return Call("td_conv2d_add_s8", INPLACE_SOURCE,
                [c.ptr(x), c.ptr(w), c.ptr(b), c.ptr(mode.residual), c.ptr(mode.output, False),
                 backward], "td_conv_add_s8_params", params, statics=statics, consts=consts)
