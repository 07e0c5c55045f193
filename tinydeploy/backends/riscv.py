"""Kernel variants for RISC-V (scalar rv32, vector Zve32x/V).

Targets with arch "riscv" get the scalar RV32IM kernels of
runtime_c/src/riscv/rv_scalar.c (td_rv_*); targets that also have the "rvv"
feature get the vector kernels of runtime_c/src/riscv/rv_vector.c (td_rvv_*)
where one exists.  Everything a kernel can know before run time is prepared
here: weights re-arranged in the order the inner loop reads them, the input
zero point folded into the bias, requantization parameters expanded per
channel (and, for the scalar kernels, turned into the MULH form of
td_rv_rq).  Each variant computes exactly what the portable kernel computes;
where an exactness condition cannot be proved at compile time, the op keeps
the portable kernel.

Variants (report.json "variant"):
  rv_conv / rvv_conv   conv2d_s8 (groups 1, no dilation) and fully_connected_s8
                       (a 1x1 conv over rows), optionally with the residual add
                       the planner fused into it (in-place mode "conv_add");
                       the vector conv puts its lanes over output channels, or
                       over output pixels (td_rvv_conv_px_s8) when an
                       instruction estimate favours it;
  rv_depthwise / rvv_depthwise   depthwise_conv2d_s8, depth multiplier 1
                       (the scalar one instantiated per layer with constant
                       shapes);
  rv_add / rvv_add     add_s8 of two same-shape tensors;
  rvv_avg_pool / rvv_max_pool   pooling (vector targets);
  rvv_batch_matmul     batch_matmul_s8 (vector targets): lanes over output columns;
  rvv_attention        attention_s8, the fused attention (vector targets,
                       riscv/attention_rvv.c): the portable body with the row products
                       in lanes over the output columns and the vector table softmax;
  rvv_softmax_table    softmax_s8 where the portable kernel is the table one
                       (riscv/rvv_softmax_table_s8.c);
  rvv_fc_s4            fully_connected_s8 with int4 weights and an even input count
                       (vector targets, riscv/rvv_fc_s4.c): the packed weights
                       sign-extended in registers;
  rvv_conv_s4          conv2d_s8 with int4 weights (groups 1, no dilation; vector
                       targets, riscv/rvv_conv_s4.c): lanes over two blocks of
                       output channels per strip of packed bytes;
  rvv_dw_s4            depthwise_conv2d_s8 with int4 weights, depth multiplier 1
                       and an even channel count (the same file and layout);
  rvv_layer_norm       layer_norm_s8 (vector targets, riscv/rvv_layer_norm_s8.c):
                       the 64-bit products of magnitudes as (vmul, vmulhu) word
                       pairs, when every element's requantization shift is 33 or more
                       (ops/layer_norm.py lanes_choice; Helium cores get the same
                       kernel in arm/mve_layer_norm_s8.c).
None of them needs scratch memory, so the planner never has to drop one.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import qmath
from ..ctext import Call, c_struct
from ..ir import Graph, Op
from ..kernel_variants import Choice
from ..ops.common import pack_int4_halves, s8_call
from . import _int4
from ..ops import softmax
from ..stage_types import InplaceMode

SCALAR_SOURCE = "riscv/rv_scalar.c"
DW_MAX_TAPS = 25  # TD_RV_DW_MAX_TAPS
VECTOR_SOURCE = "riscv/rv_vector.c"
INT32_MAX = 2 ** 31 - 1
# kernel_select asks this backend about layers with int4 weights too (choose() offers
# them only the variants that read packed weights)
HANDLES_INT4 = True


def choose(g: Graph, op: Op, target, inplace: Optional[InplaceMode] = None) -> Optional[Choice]:
    """The variant for `op` on `target` under the in-place decision `inplace`, or None
    for the portable kernel.  (kernel_select asks nothing for an add fused into its conv.)"""
    if getattr(target, "arch", None) != "riscv" or op.int8_params is None:
        return None
    if g.int4_weights(op):  # packed int4 weights: only the variants that read them so
        if not target.has("rvv") or inplace is not None:
            return None
        if op.kind == "fully_connected_s8":
            return _rvv_fc_s4(g, op)
        if op.kind == "conv2d_s8":
            return _rvv_conv_s4(g, op)
        if op.kind == "depthwise_conv2d_s8":
            return _rvv_dw_s4(g, op)
        return None
    if op.kind == "softmax_s8":
        return _rvv_softmax(op, target, inplace)
    mode = inplace.mode if inplace is not None else None
    if mode not in SUPPORTED_INPLACE.get(op.kind, (None,)):
        return None
    vector = target.has("rvv")
    vlen = int(target.vlen or 128) if vector else 0
    if op.kind in ("lstm_s8", "gru_s8"):  # ops/rnn.py: the portable bodies with vector dot products
        from ..ops import rnn
        return rnn.rvv_choice(g, op) if vector else None
    if op.kind == "attention_s8":  # ops/attention.py: the portable body with vector row products
        from ..ops import attention
        return attention.rvv_choice(g, op) if vector else None
    if op.kind in ("conv2d_s8", "fully_connected_s8"):
        geo = _conv_geometry(g, op)
        if geo is None or not _fits_int16(geo) or not _left_pad_within_kernel(geo):
            return None
        add = _fused_add(g, inplace)
        if mode == "conv_add" and (add is None or not _same_shape_add(g, add)):
            return None
        if vector:
            return Choice("rvv_conv", _conv_emitter(vlen), 0)
        if _scalar_rq(g, op, geo) is None or (add is not None and _add_tables(add.int8_params) is None):
            return None
        return Choice("rv_conv", _emit_rv_conv, 0)
    if op.kind == "depthwise_conv2d_s8":
        q = op.int8_params
        if q["out_c"] != q["in_c"] or q["dil_h"] != 1 or q["dil_w"] != 1 or \
                _nhwc(g, op.inputs[0]) is None or not _fits_int16(_dw_geometry(q)) or \
                not _left_pad_within_kernel(q):
            return None
        if vector and dw_tile(q["in_c"], vlen) * q["stride_w"] > 0xFFFF:  # uint16 gather offsets
            return None
        if vector:
            return Choice("rvv_depthwise", _dw_emitter(vlen), 0)
        if _scalar_rq_dw(g, op) is None or q["k_h"] * q["k_w"] > DW_MAX_TAPS:
            return None
        return Choice("rv_depthwise", _emit_rv_dw, 0)
    if op.kind in ("avg_pool_s8", "max_pool_s8"):
        q = op.int8_params
        if not vector or _nhwc(g, op.inputs[0]) is None or (q["dil_h"], q["dil_w"]) != (1, 1):
            return None
        return Choice("rvv_" + op.kind[:-3], _emit_rvv_pool, 0)
    if op.kind == "add_s8":
        q = op.int8_params
        if not _same_shape_add(g, op):
            return None
        if vector:
            return Choice("rvv_add", _emit_rvv_add, 0)
        if _add_tables(q) is None:
            return None
        return Choice("rv_add", _emit_rv_add, 0)
    if op.kind == "layer_norm_s8" and vector:  # ops/layer_norm.py: the vector-lane kernel
        from ..ops import layer_norm
        return layer_norm.lanes_choice(op, "rvv_layer_norm", "td_rvv_layer_norm_s8",
                                       "riscv/rvv_layer_norm_s8.c")
    if op.kind == "batch_matmul_s8" and vector:
        return Choice("rvv_batch_matmul", _emit_rvv_batch_matmul, 0)
    return None


def _rvv_fc_s4(g: Graph, op: Op) -> Optional[Choice]:
    """Fully connected with int4 weights (td_rvv_fc_s4, riscv/rvv_fc_s4.c): the weights
    packed in halves, the portable requantization (see _int4.halves_fc)."""
    return _int4.halves_fc(g, op, "rvv_fc_s4", "td_rvv_fc_s4", "riscv/rvv_fc_s4.c")


def _rvv_conv_s4(g: Graph, op: Op) -> Optional[Choice]:
    """Convolution with int4 weights (td_rvv_conv_s4, riscv/rvv_conv_s4.c): per window tap
    a row of out_c channels packed in halves (pack_int4_halves), lanes over channels."""
    geo = _conv_geometry(g, op)
    if geo is None or not _fits_int16(geo):
        return None
    q = op.int8_params
    out_c = geo["out_c"]
    w2 = _weights_2d(g, op, out_c)  # [out_c][k], int4 values
    bias = _fold_bias(_bias(g, op, out_c), w2, int(q["input_offset"]))
    mult, shift = _per_channel(q, out_c)
    left = np.maximum(shift, 0)
    if int(np.max(_acc_bound(w2, bias) << left)) > INT32_MAX:
        return None  # the left shift before the multiplication must not overflow
    half = (out_c + 1) // 2
    if half >= 2 ** 15:
        return None
    pad = 2 * half - out_c  # a zero channel when out_c is odd (computed, not stored)

    def padded(v):
        return np.concatenate([np.asarray(v, np.int64), np.zeros(pad, np.int64)])
    rows = np.concatenate([w2, np.zeros((pad, w2.shape[1]), np.int64)]).T  # [k][2H]
    packed = pack_int4_halves(rows)

    def emit(c, op_, sym):
        consts: list = []
        params = dict(geo, half=half, input_zero_point=-int(q["input_offset"]),
                      output_offset=int(q["output_offset"]), act_min=int(q["act_min"]),
                      act_max=int(q["act_max"]),
                      bias=_static(c, sym, "bias", "int32_t", padded(bias), consts),
                      mult=_static(c, sym, "mult", "int32_t", padded(mult), consts),
                      left=_static(c, sym, "left", "int32_t", padded(left), consts),
                      right=_static(c, sym, "right", "int32_t", padded(np.maximum(-shift, 0)), consts))
        wname = _static(c, sym, "w", "uint8_t", packed, consts, aligned=True)
        return Call("td_rvv_conv_s4", "riscv/rvv_conv_s4.c",
                    [c.ptr(op_.inputs[0]), wname, c.ptr(op_.outputs[0], False)],
                    "td_rvv_conv_s4_params", params, consts=consts)
    return Choice("rvv_conv_s4", emit, 0, const_bytes=packed.size + 16 * 2 * half)


def _rvv_dw_s4(g: Graph, op: Op) -> Optional[Choice]:
    """Depthwise convolution with int4 weights (td_rvv_dw_s4, riscv/rvv_conv_s4.c): depth
    multiplier 1 and an even channel count; per window tap a row of the channels packed in
    halves, the inputs of both channel blocks loaded as vectors."""
    q = op.int8_params
    ch = int(q["out_c"])
    if ch != int(q["in_c"]) or ch % 2 or q["dil_h"] != 1 or q["dil_w"] != 1 or \
            _nhwc(g, op.inputs[0]) is None:
        return None
    geo = {k: int(q[k]) for k in ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h",
                                  "k_w", "stride_h", "stride_w", "pad_top", "pad_left")}
    if not _fits_int16(geo) or ch // 2 >= 2 ** 15:
        return None
    rows = g.tensors[op.inputs[1]].data.astype(np.int64).reshape(-1, ch)  # [k_h * k_w][ch]
    w2 = rows.T  # [ch][taps]
    bias = _fold_bias(_bias(g, op, ch), w2, int(q["input_offset"]))
    mult, shift = _per_channel(q, ch)
    left = np.maximum(shift, 0)
    if int(np.max(_acc_bound(w2, bias) << left)) > INT32_MAX:
        return None
    packed = pack_int4_halves(rows)

    def emit(c, op_, sym):
        consts: list = []
        params = dict(geo, half=ch // 2, input_zero_point=-int(q["input_offset"]),
                      output_offset=int(q["output_offset"]), act_min=int(q["act_min"]),
                      act_max=int(q["act_max"]),
                      bias=_static(c, sym, "bias", "int32_t", bias, consts),
                      mult=_static(c, sym, "mult", "int32_t", mult, consts),
                      left=_static(c, sym, "left", "int32_t", left, consts),
                      right=_static(c, sym, "right", "int32_t", np.maximum(-shift, 0), consts))
        wname = _static(c, sym, "w", "uint8_t", packed, consts, aligned=True)
        return Call("td_rvv_dw_s4", "riscv/rvv_conv_s4.c",
                    [c.ptr(op_.inputs[0]), wname, c.ptr(op_.outputs[0], False)],
                    "td_rvv_conv_s4_params", params, consts=consts)
    return Choice("rvv_dw_s4", emit, 0, const_bytes=packed.size + 16 * ch)


def _emit_rvv_batch_matmul(c, op: Op, sym: str):
    """Lanes over one output row's columns (riscv/rvv_batch_matmul_s8.c); the portable
    kernel's parameters."""
    return s8_call(c, op, sym, "td_rvv_batch_matmul_s8", "riscv/rvv_batch_matmul_s8.c",
                   "td_batch_matmul_s8_params", "abo")


def _rvv_softmax(op: Op, target, inplace: Optional[InplaceMode]) -> Optional[Choice]:
    """Where the portable kernel would be td_softmax_table_s8 (ops/softmax.py: uses_table),
    its vector twin (riscv/rvv_softmax_table_s8.c): same parameters and table; in place
    allowed (each strip is read before it is written)."""
    if not target.has("rvv") or not softmax.uses_table(op.int8_params) or \
            (inplace is not None and inplace.mode != "elementwise"):
        return None
    return Choice("rvv_softmax_table", lambda ctx, op_, sym: softmax.emit_table(
        ctx, op_, sym, "td_rvv_softmax_table_s8", "riscv/rvv_softmax_table_s8.c"),
        detail="strips of e32 m8, indexed loads from the exp table")


# In-place modes (tinydeploy/inplace.py) each kernel honours.  The planner's
# overlap margins assume the portable order: output element u is written
# after its inputs are read and before any input of a later element is read
# (earlier, backward).  Our kernels write each value after reading its inputs
# and never write a value before reading the inputs of an EARLIER element of
# the same pass (conv tiles with several channel blocks would, so with an
# overlap they only tile a single block); reading ahead only makes them
# safer.  The conv kernels can also finish with the fused residual add.
SUPPORTED_INPLACE = {
    "conv2d_s8": (None, "window", "conv_add"),
    "fully_connected_s8": (None,),
    "depthwise_conv2d_s8": (None, "window"),
    "add_s8": (None, "elementwise"),
    "layer_norm_s8": (None, "elementwise"),
    "avg_pool_s8": (None,),
    "max_pool_s8": (None,),
}


def _fused_add(g: Graph, mode: Optional[InplaceMode]) -> Optional[Op]:
    """The add op fused into a conv with in-place decision `mode`, or None."""
    if mode is None or not mode.fused:
        return None
    return next((o for o in g.ops if o.name == mode.add), None)


def _conv_is_input1(c, op: Op) -> int:
    mode = c.inplace(op)
    return int(mode.conv_is_input1) if mode is not None else 1


def _order(c, op: Op) -> dict:
    """ordered: the planned output overlaps the input; backward: in which order."""
    mode = c.inplace(op)
    direction = mode.direction if mode is not None else None
    return dict(ordered=int(direction in ("forward", "backward")),
                backward=int(direction == "backward"))


def _zp_row(c, geo: dict, zp: int, sym: str, consts: list) -> str:
    """The zero-point row padding taps read (flash), or NULL without padding."""
    pad_bottom = (geo["out_h"] - 1) * geo["stride_h"] + geo["k_h"] - geo["pad_top"] - geo["in_h"]
    pad_right = (geo["out_w"] - 1) * geo["stride_w"] + geo["k_w"] - geo["pad_left"] - geo["in_w"]
    if max(geo["pad_top"], geo["pad_left"], pad_bottom, pad_right) <= 0:
        return "NULL"
    return _static(c, sym, "zp_row", "int8_t", np.full(geo["k_w"] * geo["in_c"], zp), consts)


def _output_args(c, op: Op) -> tuple[str, str]:
    """(output pointer, residual pointer) of a conv, fused add included."""
    mode = c.inplace(op)
    if mode is not None and mode.fused:
        return c.ptr(mode.output, False), c.ptr(mode.residual)
    return c.ptr(op.outputs[0], False), "NULL"


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------
def _left_pad_within_kernel(geo) -> bool:
    """The edge-pixel code of the RISC-V convolutions counts a window's taps in the left
    padding as -(its first column), up to k_w: a left pad wider than the kernel (a Pad
    folded into a 1x1 convolution) has windows wholly in the padding, which the portable
    kernel handles."""
    return int(geo["pad_left"]) <= int(geo["k_w"])


def _fits_int16(geo: dict) -> bool:
    """The parameter structs hold shapes in int16 fields."""
    return all(-2 ** 15 <= int(v) < 2 ** 15 for v in geo.values())


def _nhwc(g: Graph, name: str):
    shape = g.tensors[name].shape
    return shape[1:] if len(shape) == 4 and shape[0] == 1 else None


def _per_channel(q: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(q["multiplier"], np.int64).reshape(-1)
    s = np.asarray(q["shift"], np.int64).reshape(-1)
    if m.size == 1:
        m, s = np.repeat(m, n), np.repeat(s, n)
    return m, s


def _conv_geometry(g: Graph, op: Op) -> Optional[dict]:
    """Shape fields of the conv (or fully connected, as a 1x1 conv over rows)."""
    q = op.int8_params
    if op.kind == "fully_connected_s8":
        return dict(in_h=1, in_w=q["rows"], in_c=q["in_features"], out_h=1, out_w=q["rows"],
                    out_c=q["out_features"], k_h=1, k_w=1, stride_h=1, stride_w=1,
                    pad_top=0, pad_left=0)
    if q["groups"] != 1 or q["dil_h"] != 1 or q["dil_w"] != 1 or _nhwc(g, op.inputs[0]) is None:
        return None
    return {k: int(q[k]) for k in ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h",
                                   "k_w", "stride_h", "stride_w", "pad_top", "pad_left")}


def _weights_2d(g: Graph, op: Op, out_c: int) -> np.ndarray:
    """Weights as int64 [out_c][k] (conv [out][kh][kw][in], fc [out][in])."""
    return g.tensors[op.inputs[1]].data.astype(np.int64).reshape(out_c, -1)


def _bias(g: Graph, op: Op, n: int) -> np.ndarray:
    b = op.inputs[2] if len(op.inputs) > 2 else ""
    return g.tensors[b].data.astype(np.int64).reshape(-1) if b else np.zeros(n, np.int64)


def _fold_bias(bias: np.ndarray, w2: np.ndarray, input_offset: int) -> np.ndarray:
    """bias + input_offset * sum(w), wrapped like int32 arithmetic."""
    return qmath.wrap32(bias + input_offset * w2.sum(axis=1)).astype(np.int64)


def _static(c, sym: str, field: str, ctype: str, values, consts: list, aligned: bool = False) -> str:
    """A constant array of the layer (NAME_weights.c): appended to consts, its C symbol returned."""
    k = c.const(sym, field, np.asarray(values), ctype, aligned=aligned)
    consts.append(k)
    return k.sym


def _acc_bound(w2: np.ndarray, bias_folded: np.ndarray) -> np.ndarray:
    """Largest |accumulator| per channel: acc = bias' + sum w * x, x in [-128, 127]."""
    return 128 * np.abs(w2).sum(axis=1) + np.abs(bias_folded)


def rv_rq_rows(acc_bound: np.ndarray, mult: np.ndarray, shift: np.ndarray, zero_point: int,
               constant: Optional[np.ndarray] = None, act=(-128, 127)) -> Optional[list]:
    """td_rv_rq per channel, or None if the MULH form is not provably exact:
    acc << (left + 1) must not overflow and the rounding adds must not wrap.
    constant[c] (optional): the channel's accumulator when its weights are all
    zero (then the output is a compile-time constant: mult 0, hz = result)."""
    rows = []
    for c, (bound, m, s) in enumerate(zip(acc_bound.tolist(), mult.tolist(), shift.tolist())):
        if constant is not None and constant[c] is not None:
            v = int(qmath.mbqm(constant[c], m, s)) + int(zero_point)
            rows.append((0, 0, 0, min(max(v, act[0]), act[1]), 0))
            continue
        left, right = max(int(s), 0), max(-int(s), 0)
        if m < 0 or (int(bound) << (left + 1)) >= 2 ** 31 or right > 31:
            return None
        y_bound = ((int(bound) << left) * int(m) >> 31) + 1
        half = (1 << (right - 1)) if right > 0 else 0
        hz = half + (int(zero_point) << right)
        if y_bound + abs(hz) + 1 >= 2 ** 31 or abs(hz) > INT32_MAX:
            return None
        rows.append((int(m), left + 1, right, hz, -1 if right > 0 else 0))
    return rows


def _constants(w2: np.ndarray, bias_folded: np.ndarray) -> list:
    """Per channel: the accumulator if all its weights are zero, else None."""
    zero = ~np.any(w2 != 0, axis=1)
    return [int(b) if z else None for z, b in zip(zero.tolist(), bias_folded.tolist())]


# --------------------------------------------------------------------------
# Convolution and fully connected
# --------------------------------------------------------------------------
def _conv_prep(g: Graph, op: Op, geo: dict):
    q = op.int8_params
    out_c = geo["out_c"]
    w2 = _weights_2d(g, op, out_c)
    bias = _fold_bias(_bias(g, op, out_c), w2, int(q["input_offset"]))
    mult, shift = _per_channel(q, out_c)
    return q, w2, bias, mult, shift


def _scalar_rq(g: Graph, op: Op, geo: dict) -> Optional[list]:
    q, w2, bias, mult, shift = _conv_prep(g, op, geo)
    return rv_rq_rows(_acc_bound(w2, bias), mult, shift, int(q["output_offset"]),
                      _constants(w2, bias), (int(q["act_min"]), int(q["act_max"])))


def _emit_rv_conv(c, op: Op, sym: str):
    geo = _conv_geometry(c.g, op)
    q, w2, bias, mult, shift = _conv_prep(c.g, op, geo)
    rows = _scalar_rq(c.g, op, geo)
    out_c, k_len = geo["out_c"], w2.shape[1]
    blocks = -(-out_c // 4)
    wpad = np.zeros((blocks * 4, k_len), np.int8)
    wpad[:out_c] = w2
    arranged = wpad.reshape(blocks, 4, k_len).transpose(0, 2, 1)  # [block][k][4]
    statics: list = []
    consts: list = []
    wname = _static(c, sym, "w", "int8_t", arranged, consts, aligned=True)
    bpad = np.zeros(blocks * 4, np.int64)
    bpad[:out_c] = bias
    add = _fused_add(c.g, c.inplace(op))
    add_p = _rv_add_struct(c, add.int8_params, 0, sym + "_add", statics, consts) if add else None
    params = dict(geo, **_order(c, op), act_min=int(q["act_min"]), act_max=int(q["act_max"]),
                  zp_row=_zp_row(c, geo, -int(q["input_offset"]), sym, consts),
                  bias=_static(c, sym, "bias", "int32_t", bpad, consts),
                  rq=_static(c, sym, "rq", "td_rv_rq", rows, consts),
                  add=f"&{add_p}" if add_p else "NULL",
                  conv_is_input1=_conv_is_input1(c, op))
    out, residual = _output_args(c, op)
    return Call("td_rv_conv_s8", SCALAR_SOURCE,
                [c.ptr(op.inputs[0]), wname, out, residual],
                "td_rv_conv_params", params, statics=statics, consts=consts)


def _rvv_lmul(geo: dict, vlen: int) -> int:
    return 4 if geo["out_c"] <= vlen // 8 and geo["out_h"] * geo["out_w"] > 1 else 8


def _conv_emitter(vlen: int):
    def emit(c, op: Op, sym: str):
        return _emit_rvv_conv(c, op, sym, vlen)
    return emit


def _emit_rvv_conv(c, op: Op, sym: str, vlen: int):
    geo = _conv_geometry(c.g, op)
    # lanes over pixels: a segment writes channel triple after triple, which an
    # output overlapping the input would mostly forbid (pixel-by-pixel fallback)
    if _fused_add(c.g, c.inplace(op)) is None and _pixel_vector_wins(geo, vlen) and \
            not _px_pixel_by_pixel(c, op, geo, vlen):
        return _emit_rvv_conv_px(c, op, sym)
    q, w2, bias, mult, shift = _conv_prep(c.g, op, geo)
    statics: list = []
    consts: list = []
    wname = _static(c, sym, "w", "int8_t", w2.T, consts, aligned=True)  # [k][out_c]
    left = np.maximum(shift, 0)
    add = _fused_add(c.g, c.inplace(op))
    if add is not None:
        statics.append(c_struct("td_rvv_add_params", f"{sym}_add", _rvv_add_fields(add.int8_params, 0),
                                one_line=True))
    params = dict(geo, lmul=_rvv_lmul(geo, vlen), flags=int(bool(left.any())), **_order(c, op),
                  zp_row=_zp_row(c, geo, -int(q["input_offset"]), sym, consts),
                  conv_is_input1=_conv_is_input1(c, op),
                  add=f"&{sym}_add" if add is not None else "NULL",
                  output_offset=int(q["output_offset"]),
                  act_min=int(q["act_min"]), act_max=int(q["act_max"]),
                  bias=_static(c, sym, "bias", "int32_t", bias, consts),
                  mult=_static(c, sym, "mult", "int32_t", mult, consts),
                  left=_static(c, sym, "left", "int32_t", left, consts),
                  right=_static(c, sym, "right", "int32_t", np.maximum(-shift, 0), consts))
    out, residual = _output_args(c, op)
    return Call("td_rvv_conv_s8", VECTOR_SOURCE,
                [c.ptr(op.inputs[0]), wname, out, residual],
                "td_rvv_conv_params", params, statics=statics, consts=consts)


def _interior(in_w: int, k_w: int, stride: int, pad: int, out_w: int) -> tuple[int, int]:
    """Output columns whose taps are all inside the row (td_rv_interior() in C)."""
    a = (pad + stride - 1) // stride
    b = (in_w - k_w + pad) // stride + 1 if in_w - k_w + pad >= 0 else 0
    b = min(b, out_w)
    return (a, b) if a < b else (out_w, out_w)


def _pixel_vector_wins(geo: dict, vlen: int) -> bool:
    """Estimated instructions of the two vector conv forms at the target's VLEN:
    lanes over output channels (tiles of 3 or 6 pixels) or over output pixels
    (channel triples; pays off for few channels and wide rows).  Border
    columns go one pixel at a time in the pixel form."""
    k_len = geo["k_h"] * geo["k_w"] * geo["in_c"]
    n_pix, out_c, out_w = geo["out_h"] * geo["out_w"], geo["out_c"], geo["out_w"]
    vl8, vl4 = vlen // 4, vlen // 8
    if _rvv_lmul(geo, vlen) == 4:
        oc = n_pix / 6 * -(-out_c // vl4) * (k_len * 17 + 6 * 25)
    else:
        oc = n_pix / 3 * -(-out_c // vl8) * (k_len * 10 + 3 * 40)
    lo, hi = _interior(geo["in_w"], geo["k_w"], geo["stride_w"], geo["pad_left"], out_w)
    groups = -(-out_c // 3)
    per_segment = groups * (k_len * 9.5 + 3 * 25)
    px = geo["out_h"] * (-(-(hi - lo) // vl8) + (out_w - (hi - lo))) * per_segment
    return out_w > 1 and px < 0.8 * oc


def tile_overlaps(geo: dict, in_off: int, out_off: int, oy: int, ox0: int, n: int) -> bool:
    """Whether n interior output pixels from (oy, ox0) write any byte of the
    input span their windows read, with input and output at these byte
    offsets (TD_RV_TILE_OVERLAPS in td_kernels_riscv.h)."""
    iy0 = oy * geo["stride_h"] - geo["pad_top"]
    first = (iy0 * geo["in_w"] + ox0 * geo["stride_w"] - geo["pad_left"]) * geo["in_c"]
    last = ((iy0 + geo["k_h"] - 1) * geo["in_w"] + (ox0 + n - 1) * geo["stride_w"]
            - geo["pad_left"] + geo["k_w"]) * geo["in_c"]
    out_lo = out_off + (oy * geo["out_w"] + ox0) * geo["out_c"]
    return out_lo < in_off + last and in_off + first < out_lo + n * geo["out_c"]


def _px_pixel_by_pixel(c, op: Op, geo: dict, vlen: int) -> bool:
    """With the planned offsets: would td_rvv_conv_px_s8 run some segment
    pixel by pixel (px_segment: an overlapping output, more than one channel
    triple, and a segment that writes into its own inputs)?"""
    if not _order(c, op)["ordered"] or geo["out_c"] <= 3:
        return False
    pin, pout = c.plan.placements.get(op.inputs[0]), c.plan.placements.get(op.outputs[0])
    if pin is None or pout is None or pin.region != pout.region:
        return False
    seg = vlen // 4
    lo, hi = _interior(geo["in_w"], geo["k_w"], geo["stride_w"], geo["pad_left"], geo["out_w"])
    return any(tile_overlaps(geo, pin.offset, pout.offset, oy, ox0, min(seg, hi - ox0))
               for oy in range(geo["out_h"]) for ox0 in range(lo, hi, seg))


def _emit_rvv_conv_px(c, op: Op, sym: str):
    geo = _conv_geometry(c.g, op)
    q, w2, bias, mult, shift = _conv_prep(c.g, op, geo)
    out_c, k_len = geo["out_c"], w2.shape[1]
    groups = -(-out_c // 3)
    wpad = np.zeros((groups * 3, k_len), np.int8)
    wpad[:out_c] = w2
    arranged = wpad.reshape(groups, 3, k_len).transpose(0, 2, 1)
    consts: list = []
    wname = _static(c, sym, "w", "int8_t", arranged, consts, aligned=True)
    bpad = np.zeros(groups * 3, np.int64)
    bpad[:out_c] = bias
    params = dict(geo, **_order(c, op), output_offset=int(q["output_offset"]),
                  act_min=int(q["act_min"]), act_max=int(q["act_max"]),
                  zp_row=_zp_row(c, geo, -int(q["input_offset"]), sym, consts),
                  bias=_static(c, sym, "bias", "int32_t", bpad, consts),
                  mult=_static(c, sym, "mult", "int32_t", mult, consts),
                  shift=_static(c, sym, "shift", "int32_t", shift, consts))
    return Call("td_rvv_conv_px_s8", VECTOR_SOURCE,
                [c.ptr(op.inputs[0]), wname, c.ptr(op.outputs[0], False)],
                "td_rvv_conv_px_params", params, consts=consts)


# --------------------------------------------------------------------------
# Depthwise convolution
# --------------------------------------------------------------------------
def _dw_prep(g: Graph, op: Op):
    q = op.int8_params
    C = q["out_c"]
    w = g.tensors[op.inputs[1]].data.astype(np.int64).reshape(q["k_h"] * q["k_w"], C)
    bias = _fold_bias(_bias(g, op, C), w.T, int(q["input_offset"]))
    mult, shift = _per_channel(q, C)
    return q, w, bias, mult, shift


def _scalar_rq_dw(g: Graph, op: Op) -> Optional[list]:
    q, w, bias, mult, shift = _dw_prep(g, op)
    return rv_rq_rows(_acc_bound(w.T, bias), mult, shift, int(q["output_offset"]),
                      _constants(w.T, bias), (int(q["act_min"]), int(q["act_max"])))


def _dw_geometry(q: dict) -> dict:
    return dict(in_h=q["in_h"], in_w=q["in_w"], channels=q["in_c"], out_h=q["out_h"],
                out_w=q["out_w"], k_h=q["k_h"], k_w=q["k_w"], stride_h=q["stride_h"],
                stride_w=q["stride_w"], pad_top=q["pad_top"], pad_left=q["pad_left"],
                pad_value=-int(q["input_offset"]))


def _emit_rv_dw(c, op: Op, sym: str):
    q, w, bias, mult, shift = _dw_prep(c.g, op)
    rows = _scalar_rq_dw(c.g, op)
    statics: list = []
    consts: list = []
    wname = _static(c, sym, "w", "int8_t", w.T, consts, aligned=True)
    params = dict(_dw_geometry(q), **_order(c, op), act_min=int(q["act_min"]), act_max=int(q["act_max"]),
                  zp_ch=_static(c, sym, "zp_ch", "int8_t", np.full(q["in_c"], -int(q["input_offset"])),
                                consts),
                  bias=_static(c, sym, "bias", "int32_t", bias, consts),
                  rq=_static(c, sym, "rq", "td_rv_rq", rows, consts))
    # compile-time specialization: the shape as constants in a per-layer instance
    statics.append(f"static void {sym}_dw(const td_rv_dw_params *p, const int8_t *input,\n"
                   f"    const int8_t *weights, int8_t *output)\n{{\n"
                   f"    td_rv_dw_body(p, input, weights, output, /* C */ {int(q['in_c'])}, "
                   f"/* in_w */ {int(q['in_w'])}, /* stride_w */ {int(q['stride_w'])});\n}}")
    return Call(f"{sym}_dw", SCALAR_SOURCE,
                [c.ptr(op.inputs[0]), wname, c.ptr(op.outputs[0], False)],
                "td_rv_dw_params", params, statics=statics, consts=consts)


def dw_tile(channels: int, vlen: int) -> int:
    """Elements per block of the vector depthwise kernel: whole pixels, about
    one LMUL-8 int32 register group at the target's VLEN."""
    cap = vlen // 4
    return max(1, cap // channels) * channels


def _dw_emitter(vlen: int):
    def emit(c, op: Op, sym: str):
        return _emit_rvv_dw(c, op, sym, vlen)
    return emit


def _emit_rvv_dw(c, op: Op, sym: str, vlen: int):
    q, w, bias, mult, shift = _dw_prep(c.g, op)
    C = q["out_c"]
    tile = dw_tile(C, vlen)
    ch = np.arange(tile) % C
    index = (np.arange(tile) // C) * q["stride_w"] * C + ch
    consts: list = []
    wname = _static(c, sym, "w16", "int16_t", w[:, ch], consts)  # [taps][tile]
    left = np.maximum(shift, 0)
    params = dict(_dw_geometry(q), tile=tile, flags=int(bool(left.any())),
                  backward=_order(c, op)["backward"],
                  output_offset=int(q["output_offset"]),
                  act_min=int(q["act_min"]), act_max=int(q["act_max"]),
                  bias=_static(c, sym, "bias", "int32_t", bias[ch], consts),
                  mult=_static(c, sym, "mult", "int32_t", mult[ch], consts),
                  left=_static(c, sym, "left", "int32_t", left[ch], consts),
                  right=_static(c, sym, "right", "int32_t", np.maximum(-shift, 0)[ch], consts),
                  index=_static(c, sym, "index", "uint16_t", index, consts))
    return Call("td_rvv_depthwise_conv_s8", VECTOR_SOURCE,
                [c.ptr(op.inputs[0]), wname, c.ptr(op.outputs[0], False)],
                "td_rvv_dw_params", params, consts=consts)


# --------------------------------------------------------------------------
# Add
# --------------------------------------------------------------------------
ADD_FIELDS = ("input1_offset", "input2_offset", "output_offset", "left_shift",
              "input1_multiplier", "input1_shift", "input2_multiplier", "input2_shift",
              "output_multiplier", "output_shift", "act_min", "act_max")


def _same_shape_add(g: Graph, op: Op) -> bool:
    a, b = op.inputs
    out = g.tensors[op.outputs[0]].shape
    return g.tensors[a].shape == out and g.tensors[b].shape == out


def _add_tables(q: dict):
    """The rescaled inputs for every int8 value, and the output td_rv_rq."""
    v = np.arange(-128, 128, dtype=np.int64)
    ls = int(q["left_shift"])
    t1 = qmath.mbqm(qmath.wrap32((v + q["input1_offset"]) << ls), q["input1_multiplier"],
                    q["input1_shift"])
    t2 = qmath.mbqm(qmath.wrap32((v + q["input2_offset"]) << ls), q["input2_multiplier"],
                    q["input2_shift"])
    bound = np.array([int(np.abs(t1).max() + np.abs(t2).max())])
    rows = rv_rq_rows(bound, np.array([q["output_multiplier"]]), np.array([q["output_shift"]]),
                      int(q["output_offset"]))
    if rows is None:
        return None
    return t1, t2, rows


def _rv_add_struct(c, q: dict, size: int, name: str, statics: list, consts: list) -> str:
    """A static const td_rv_add_params named `name` (its two tables in consts)."""
    t1, t2, rows = _add_tables(q)
    table1 = _static(c, name, "t1", "int32_t", t1, consts)
    table2 = _static(c, name, "t2", "int32_t", t2, consts)
    statics.append(c_struct("td_rv_add_params", name, dict(
        size=size, act_min=int(q["act_min"]), act_max=int(q["act_max"]), table1=table1, table2=table2,
        rq=dict(zip(("mult", "lsh", "rsh", "hz", "nz"), (int(v) for v in rows[0])))), one_line=True))
    return name


def _emit_rv_add(c, op: Op, sym: str):
    statics: list = []
    consts: list = []
    name = _rv_add_struct(c, op.int8_params, c.g.tensors[op.outputs[0]].size, sym + "_p", statics, consts)
    return Call("td_rv_add_s8", SCALAR_SOURCE,
                [f"&{name}", c.ptr(op.inputs[0]), c.ptr(op.inputs[1]), c.ptr(op.outputs[0], False)],
                statics=statics, consts=consts)


def _rvv_add_fields(q: dict, size: int) -> dict:
    return dict({k: int(q[k]) for k in ADD_FIELDS}, size=size)


def _emit_rvv_add(c, op: Op, sym: str):
    params = _rvv_add_fields(op.int8_params, c.g.tensors[op.outputs[0]].size)
    return Call("td_rvv_add_s8", VECTOR_SOURCE,
                [c.ptr(op.inputs[0]), c.ptr(op.inputs[1]), c.ptr(op.outputs[0], False)],
                "td_rvv_add_params", params)


# --------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------
POOL_FIELDS = ("in_h", "in_w", "channels", "out_h", "out_w", "k_h", "k_w", "stride_h", "stride_w",
               "dil_h", "dil_w", "pad_top", "pad_left", "count_include_pad", "zero_point", "act_min", "act_max")


def _emit_rvv_pool(c, op: Op, sym: str):
    q = op.int8_params
    return Call(f"td_rvv_{op.kind}", VECTOR_SOURCE, [c.ptr(op.inputs[0]), c.ptr(op.outputs[0], False)],
                "td_pool_s8_params", {k: int(q[k]) for k in POOL_FIELDS})
