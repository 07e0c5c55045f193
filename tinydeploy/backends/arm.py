"""Kernel variants for Arm Cortex-M (DSP extension, Helium/MVE).

For each int8 op the generator emits a small per-layer C function that calls
the templates of one kernel family header (runtime_c/include/td_arm_*.h,
GEMM_H, DW_H, ...; the generated file includes only those its layers use)
with the layer's shapes as named constants (a `static const` parameter
struct, or enum constants where GCC's code would change: see c_cfg and
c_enum), and prepares the constant data those templates read: weights
re-arranged (int16, in the order the inner loop loads them, scaled so that
the requantization is one SMMLAR plus a shift) and per-channel
requantization records with the input zero point folded into the bias.

Every choice here is checked to be bit-exact with the portable kernel (see
`requant_plan`); when a layer's ranges do not allow the fast arithmetic, or
its shape is not covered, `choose` returns None and the portable kernel runs.
(Plain runtime functions: the Helium softmax with the exponential table,
arm/mve_softmax_table_s8.c, with the portable kernel's parameters; the add of two
same-shape tensors, arm/dsp_add_s8.c, with TFLite's Add as two rescale tables and the
fused residual add's requantization, for the adds no convolution takes in; the fused
int8 attention's, chosen through ops/attention.py: arm_dsp_attention,
arm/attention_dsp.c, SMLAD row products; arm_mve_attention, arm/attention_mve.c,
VMLADAVA / VMLA row products, Helium requantization and table softmax; both the
portable kernel's body, td_attention_s8_body.h; the Helium layer norm,
arm/mve_layer_norm_s8.c, with ops/layer_norm.py's lane parameters.)
"""
from __future__ import annotations

import re

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from .. import qmath
from ..ctext import ELEM_BYTES, Call, c_float
from ..ir import Graph, Op
from ..kernel_variants import Choice
from .. import ops
from ..ops import softmax
from ..ops.common import pack_int4_halves, s8_call
from . import _int4
from ..stage_types import InplaceMode

INT32_MAX = 2**31 - 1
# Every generated layer function: kept out of line (readable code; layers whose
# functions would be the same text call one copy, codegen.share_functions, so
# the wrappers take their layer's weights, scratch and tables as arguments; the
# per-layer profile counts by call site), and under GCC optimized even in a
# -O0 or frame-pointer build: the
# templates need constant propagation (asm immediates, unrolled loops) and r7
# (the Thumb frame pointer) as a register.  The macro (td_arm_common.h) is
# GCC's optimize attribute there and plain noinline under clang.
WRAPPER = "TD_ARM_LAYER_FN"
# Fully unroll a GEMM block's K loop up to this many K steps.
UNROLL_STEPS = 72
LDRD_MAX = 1020  # largest LDRD immediate offset
# The kernel family headers (runtime_c/include); each names the source it needs.
GEMM_H, DW_H, POOL_H = "td_arm_gemm.h", "td_arm_dw.h", "td_arm_pool.h"
MVE_H, FPU_H = "td_arm_mve.h", "td_arm_fpu.h"
CONV_S4_H, DW_S4_H = "td_arm_conv_s4.h", "td_arm_dw_s4.h"
# kernel_select asks this backend about layers with int4 weights too (choose() answers
# for them first: a variant that reads them packed, or None for the portable s4 kernel)
HANDLES_INT4 = True


# --------------------------------------------------------------------------
# Layer parameter structs (the kernels' compile-time constants, named)
# --------------------------------------------------------------------------
def c_init(**fields) -> str:
    """A C99 designated initializer: {.name = value, ...}."""
    return "{" + ", ".join(f".{k} = {v}" for k, v in fields.items()) + "}"


def _wrap(items: list, indent: int, width: int = 96) -> list:
    """items joined by spaces into lines of at most `width` columns."""
    lines = []
    for it in items:
        if lines and indent + len(lines[-1]) + 1 + len(it) <= width:
            lines[-1] += " " + it
        else:
            lines.append(it)
    return lines


def c_cfg(ctype: str, name: str, fields: dict, what: str) -> str:
    """`static const ctype name = {...};` at file scope: a nested struct's
    fields, or a run of scalars, per wrapped line.  The layer's kernel reads
    its compile-time constants from it; GCC folds those loads."""
    out, run = [], []
    for k, v in list(fields.items()) + [(None, None)]:
        if k is not None and not (isinstance(v, str) and v.startswith("{")):
            run.append(f".{k} = {v},")
            continue
        out += ["    " + ln for ln in _wrap(run, 4)]
        run = []
        if k is not None:
            head = f"    .{k} = {{"
            parts = [p.strip() + "," for p in v[1:-1].split(",")]
            parts[-1] = parts[-1][:-1] + "},"
            lines = _wrap(parts, len(head))
            out += [head + lines[0]] + [" " * len(head) + ln for ln in lines[1:]]
    body = "\n".join(out)
    return f"/* {what} */\nstatic const {ctype} {name} = {{\n{body}\n}};"


def win_fields(ih, iw, c, oh, ow, kh, kw, sh, sw, pt, pl, izp) -> dict:
    """The td_arm_win fields.  in_zero_point is the value of the padding cells: a window
    that never leaves the image reads none, and gets 0, so that layers differing only in
    their input zero point (a 1x1 convolution's is folded into its bias) have the same
    constants and share one function (codegen.share_functions)."""
    if pt == 0 and pl == 0 and (oh - 1) * sh + kh <= ih and (ow - 1) * sw + kw <= iw:
        izp = 0
    return dict(in_h=ih, in_w=iw, in_c=c, out_h=oh, out_w=ow, k_h=kh, k_w=kw, stride_h=sh,
                stride_w=sw, pad_top=pt, pad_left=pl, in_zero_point=izp)


def win_init(*geom) -> str:
    """The td_arm_win initializer."""
    return c_init(**win_fields(*geom))


def layer_prefix(sym: str) -> str:
    """The short name of a layer's enum constants: L<index>."""
    m = re.match(r"L\d+(?=_)", sym)
    return m.group(0) if m else sym


def c_enum(prefix: str, groups: list, what: str) -> str:
    """A layer's compile-time parameters as enum constants PREFIX_name, one
    wrapped group of fields (a dict) per run of lines.  For the kernels whose
    code changes when their constants come from a struct (see
    td_arm_common.h): named, and still integer constant expressions."""
    lines = []
    for fields in groups:
        items = [f"{prefix}_{k} = {v}," for k, v in fields.items()]
        lines += ["    " + ln for ln in _wrap(items, 4)]
    body = "\n".join(lines)
    what = "\n * ".join(_wrap(what.split(), 3))
    return f"/* {what} */\nenum {{\n{body}\n}};"


# --------------------------------------------------------------------------
# Requantization records
# --------------------------------------------------------------------------
@dataclass
class RequantPlan:
    """Per-channel bias2 and records, layer-wide flags (see td_arm_rq).

    Uniform mode (e >= 0): records {m, C[, fixmask]}, out = ssat8(smmla(acc2,
    m, C') >> e) with one shift e for the whole layer.  Per-channel mode
    (e == -1): records {m, C, e[, fixmask]}, out = ssat8(smmlar(acc2, m, C')
    >> e_c); compact (e == -2, int8 weights, see _compact_records): records {m, e_c - 1[,
    fixmask]} and the kernel derives C.  C' = C, plus (acc2 >> 31) when fix == 1, plus
    ((acc2 >> 31) & fixmask) when fix == 2.
    """

    bias2: np.ndarray  # int32 [n]
    records: np.ndarray  # int32 [n][rs]
    scale_bits: np.ndarray  # int [n]: weights/bias multiplied by 2^scale_bits
    fix: int = 0
    rs: int = 3
    e: int = -1
    fold: int = 1
    zp: int = 0
    clamp: int = 0
    lo: int = -128
    hi: int = 127
    # int8 weights: the kernel shifts the accumulator left by this instead of carrying
    # the scale in int16 weights (0: int16 weights and bias2 scaled by scale_bits)
    acc_shift: int = 0
    # channels whose output does not depend on the input (their weights are zeroed)
    constant: Optional[np.ndarray] = None

    @property
    def compact(self) -> bool:
        """Per-channel records {m, e - 1[, fixmask]} (see _compact_records; packed ones
        too: the plan keeps e - 1 in the records, the stream moves it to the bias word)."""
        return self.e in (COMPACT_SHIFT, PACKED_SHIFT)

    @property
    def packed(self) -> bool:
        """The GEMM's packed records (see _packed_records)."""
        return self.e == PACKED_SHIFT

    @property
    def stream_rs(self) -> int:
        """int32 words of a record in the constant stream (packed: e - 1 is not there)."""
        return self.rs - 1 if self.packed else self.rs

    def fields(self) -> dict:
        """The td_arm_rq_cfg fields."""
        return dict(fix=self.fix, rec_words=self.stream_rs, uniform_shift=self.e, fold=self.fold,
                    out_zero_point=self.zp, clamp=self.clamp, act_min=self.lo, act_max=self.hi)

    def stream_records(self, c0: int, m: int) -> np.ndarray:
        """The records of channels c0 .. c0 + m - 1 as the constant stream stores them."""
        recs = self.records[c0:c0 + m]
        if self.packed:
            recs = recs[:, [0] + ([2] if self.fix == 2 else [])]
        return recs.reshape(-1).astype(np.int64)

    def c_init(self) -> str:
        """The td_arm_rq_cfg initializer."""
        return c_init(**self.fields())


def requant_plan(bias, wsum, wabs, input_offset: int, multiplier, shift, out_zp: int,
                 act_min: int, act_max: int, max_scale_bits: int = 8,
                 uniform: bool = True, uniform_shift: Optional[int] = None,
                 int8_weights: bool = False) -> Optional[RequantPlan]:
    """Records that make `td_arm_rq` equal to the portable requantization for
    every accumulator the layer can produce, or None.

    bias, wsum (sum of a channel's weights), wabs (sum of their absolute
    values), multiplier and shift are per output channel.  The true
    accumulator is bias + sum(w * (x + input_offset)) with |x + off| <= 255,
    so |acc| <= |bias| + 255 * wabs; every int32 intermediate is checked
    against that bound.

    Algebra (acc2 = acc * 2^(left + 1 + d), t = SRDHM(acc << left, m)):
    TFLite computes floor((t + 2^(e-1) - [t < 0]) / 2^e) + zp with
    t = floor((2 acc m 2^left + 2^31) / 2^32); nested floors by powers of two
    merge, so the result is floor((acc2 m + R) / 2^(32 + e + d)) with
    R = 2^(31+d) + (2^(e-1) - [t<0] + zp 2^e) 2^(32+d).  d = 0: SMMLAR
    (adds 2^31) and C = 2^(e-1) + zp 2^e; d >= 1: SMMLA with
    C = 2^(d-1) + (2^(e-1) + zp 2^e) 2^d, and E = e + d is the same for all
    channels.  For m > 2^30, [t < 0] = [acc < 0].

    uniform_shift: the uniform mode's E (at least the smallest, which is the default;
    a larger one scales the weights more), or None when the plan is uniform
    only if the smallest fits.  See alternative_plans.
    """
    n = len(bias)
    bias = [int(v) for v in bias]
    wsum = [int(v) for v in wsum]
    wabs = [int(v) for v in wabs]
    mult = [int(v) for v in multiplier]
    shift = [int(v) for v in shift]
    zp, off = int(out_zp), int(input_offset)
    need_fix = act_min < zp
    clamp = int(act_min > -128 or act_max < 127)
    const = {}
    for c in range(n):
        if wabs[c] == 0 or mult[c] == 0:
            # the channel's output does not depend on the input
            v = int(qmath.mbqm(bias[c] + off * wsum[c], mult[c], shift[c])) + zp
            const[c] = min(max(v, act_min), act_max)
    live = [c for c in range(n) if c not in const]
    left = {c: max(shift[c], 0) for c in live}
    ee = {c: max(-shift[c], 0) for c in live}
    bound = {c: abs(bias[c]) + 255 * wabs[c] for c in live}
    for c in live:
        if need_fix and ee[c] > 0 and mult[c] <= 1 << 30:
            return None  # [t < 0] = [acc < 0] needs m > 2^30
    fixing = [c for c in live if need_fix and ee[c] > 0]

    def c0(c, fold):
        e = ee[c]
        return ((1 << (e - 1)) if e > 0 else 0) + ((zp << e) if fold else 0)

    def build(mode_e: int) -> Optional[RequantPlan]:
        uniform_mode = mode_e >= 0
        for fold in (1, 0):
            ok = True
            scale = np.zeros(n, np.int64)
            cval = {}
            for c in live:
                d = mode_e - ee[c] if uniform_mode else 0
                sb = left[c] + 1 + d
                if d < 0 or sb > max_scale_bits or bound[c] << sb > INT32_MAX:
                    return None
                scale[c] = sb
                cv = ((1 << (d - 1)) + (c0(c, fold) << d)) if d > 0 else c0(c, fold)
                fixv = (1 << d) if c in fixing else 0
                tmax = ((bound[c] << sb) * mult[c] >> 32) + 2
                if abs(cv) + fixv + tmax > INT32_MAX:
                    ok = False
                cval[c] = (cv, -fixv)
            for c, v in const.items():
                e = mode_e if uniform_mode else 0
                cv = (v - (0 if fold else zp)) << e
                if abs(cv) > 2**30:
                    ok = False
                cval[c] = (cv, 0)
            if ok:
                break
        if not ok:
            return None
        if uniform_mode:
            fix = 2 if fixing else 0
        else:
            fix = (1 if len(fixing) == len(live) else 2) if fixing else 0
        rs = (2 if uniform_mode else 3) + (1 if fix == 2 else 0)
        recs = np.zeros((n, rs), np.int64)
        bias2 = np.zeros(n, np.int64)
        for c in range(n):
            cv, mask = cval[c]
            if c in const:
                recs[c, :2] = (0, cv)
            else:
                bias2[c] = (bias[c] + off * wsum[c]) << int(scale[c])
                recs[c, :2] = (mult[c], cv)
                if not uniform_mode:
                    recs[c, 2] = ee[c]
            if fix == 2:
                recs[c, rs - 1] = mask
        constant = np.array([c in const for c in range(n)], bool)
        return RequantPlan(bias2.astype(np.int32), recs.astype(np.int32), scale, fix, rs,
                           mode_e, fold, zp, clamp, int(act_min), int(act_max), constant=constant)

    if int8_weights:
        return _on_int8_weights(build, live, ee, uniform)
    if uniform_shift is not None:
        smallest = max(ee.values()) + 1 if live else 1
        return build(uniform_shift) if uniform and uniform_shift >= smallest else None
    if uniform and live:
        plan = build(max(ee.values()) + 1)
        if plan is not None:
            return plan
    if not uniform or live:
        return build(-1)
    return build(1)


def _on_int8_weights(build, live: list, ee: dict, uniform: bool) -> Optional[RequantPlan]:
    """A plan whose live channels share one scale (the kernel then shifts the accumulator
    by it: int8 weights cannot carry it); the uniform shift first, then per channel."""
    modes = ([max(ee.values()) + 1] if uniform and live else []) + ([-1] if live else [1])
    for mode_e in modes:
        plan = build(mode_e)
        if plan is None:
            continue
        bits = {int(plan.scale_bits[c]) for c in live} or {1}
        if len(bits) == 1:
            return replace(plan, acc_shift=bits.pop())
    return None


def _compact_records(plan: RequantPlan) -> Optional[RequantPlan]:
    """The per-channel plan on int8 weights with compact records {m, f[, fixmask]}
    (uniform_shift COMPACT_SHIFT; the int8-weight kernels' twin for --optimize size):
    f = e - 1, and td_arm_rec_load derives C = K << f with K = 2 ZP + 1 (FOLD; C =
    2^(e-1) + ZP 2^e, as build() stores it) or 1; td_arm_rq
    shifts right by f, then by the last bit inside the SSAT.  A third less record flash
    for one LSL a channel.  A constant channel becomes a live one with zero weights: f = 0,
    its bias (v - zp) 2^s with s = max(acc_shift, 3) and m = 2^(33 - s), so that SMMLAR
    gives exactly 2 (v - zp) and (2 (v - zp) + K) >> 1 = v - zp + ZP (FOLD), v - zp (not).
    None in uniform mode, or when a live channel's e is 0."""
    if plan.e >= 0 or not plan.acc_shift:
        return None
    const = plan.constant
    recs = plan.records.astype(np.int64)
    k = 2 * plan.zp + 1 if plan.fold else 1
    e = recs[:, 2]
    if np.any(e[~const] < 1):
        return None
    f = np.where(const, 0, e - 1)
    assert np.all((recs[:, 1] == k << f)[~const]), "C is not K << (e - 1)"
    s = max(plan.acc_shift, 3)
    value = recs[:, 1] - (plan.zp if plan.fold else 0)  # v - zp of the constant channels
    bias2 = np.where(const, value << s, plan.bias2.astype(np.int64))
    fix = plan.fix
    mask = recs[:, plan.rs - 1] if fix == 2 else np.full(len(recs), -1, np.int64)
    if fix == 1 and np.any(const & (value < 0)):
        fix = 2  # acc2 >> 31 of a negative constant channel must not reach its C
    rs = 3 if fix == 2 else 2
    out = np.zeros((len(recs), rs), np.int64)
    out[:, 0] = np.where(const, 1 << (33 - s), recs[:, 0])
    out[:, 1] = f
    if fix == 2:
        out[:, 2] = np.where(const, 0, mask)
    return replace(plan, bias2=bias2.astype(np.int32), records=out.astype(np.int32), fix=fix,
                   rs=rs, e=COMPACT_SHIFT)


# RequantPlan.e of the compact per-channel records (td_arm_rq_cfg.uniform_shift; see
# _compact_records)
COMPACT_SHIFT = -2
# ... and of the packed ones (_packed_records): TD_ARM_RQ_PACKED, TD_ARM_PACK_BITS
PACKED_SHIFT = -3
PACK_BITS = 5


def _packed_records(plan: Optional[RequantPlan]) -> Optional[RequantPlan]:
    """The compact plan with each channel's f = e - 1 in the low PACK_BITS bits of its
    bias word in the GEMM's stream (bias << PACK_BITS | f; the kernel shifts the bias back
    with one ASR a channel block): records {m[, fixmask]}, 4 bytes less a channel.
    None when a bias does not fit the word's other bits (or the plan is not compact)."""
    if plan is None or plan.e != COMPACT_SHIFT:
        return None
    f = plan.records[:, 1].astype(np.int64)
    b = plan.bias2.astype(np.int64) >> plan.acc_shift
    lim = 1 << (31 - PACK_BITS)
    if np.any(f < 0) or np.any(f >= 1 << PACK_BITS) or np.any(b < -lim) or np.any(b >= lim):
        return None
    return replace(plan, e=PACKED_SHIFT)


def live_weights(w: np.ndarray, plan: RequantPlan) -> np.ndarray:
    """w ([channel][...]) with the channels whose output is a constant (plan.constant)
    zeroed: their accumulator is then the bias alone, which the records assume (fix == 1
    adds acc >> 31 to every channel; compact records carry the constant in the bias)."""
    w = np.array(w, copy=True)
    w[plan.constant] = 0
    return w


def alternative_plans(plan: Optional[RequantPlan], make, most: int = 8) -> list:
    """Plans equivalent to a uniform `plan` with a larger shift E (make(E): the
    layer's requant_plan with uniform_shift=E), while they exist: other compile-time
    constants for the same results, so that a layer can take those of an
    earlier layer of its shape and share its function (Call.alternatives)."""
    alts = []
    if plan is None or plan.e < 0:
        return alts
    for e in range(plan.e + 1, plan.e + 1 + most):
        alt = make(e)
        if alt is None:
            break
        alts.append(alt)
    return alts


def _with_alternatives(emit_plan, plan: RequantPlan, make):
    """An emitter whose Call is emit_plan(ctx, op, sym, plan), with the Calls of
    the alternative plans (alternative_plans(plan, make)) as its alternatives."""
    def emit(ctx, op_, sym):
        call = emit_plan(ctx, op_, sym, plan)
        call.alternatives = [emit_plan(ctx, op_, sym, p) for p in alternative_plans(plan, make)]
        return call
    return emit


def fast_requant(acc2: np.ndarray, rec: np.ndarray, plan: RequantPlan) -> np.ndarray:
    """Python model of td_arm_rq (tests use it to check the plan's algebra)."""
    acc2 = np.asarray(acc2, np.int64)
    m, mask = np.int64(rec[0]), np.int64(rec[plan.rs - 1])
    if plan.compact:  # {m, e - 1[, mask]}: C as td_arm_rec_load derives it
        e = int(rec[1]) + 1
        c = np.int64(((2 * plan.zp + 1) if plan.fold else 1) << (e - 1))
    else:
        c, e = np.int64(rec[1]), (int(rec[2]) if plan.e < 0 else plan.e)
    if plan.fix == 1:
        c = c + (acc2 >> 31)
    elif plan.fix == 2:
        c = c + ((acc2 >> 31) & mask)
    if plan.e >= 0:
        v = (c * 2**32 + acc2 * m) >> 32
    else:
        v = (c * 2**32 + acc2 * m + 2**31) >> 32
    v = v >> np.int64(e)
    if not plan.fold:
        v = v + plan.zp
    v = np.clip(v, -128, 127)
    if plan.clamp:
        v = np.clip(v, plan.lo, plan.hi)
    return v


def _per_channel(q: dict, key: str, n: int) -> np.ndarray:
    arr = np.asarray(q[key], np.int64).reshape(-1)
    return arr if arr.size == n else np.full(n, arr[0], np.int64)


# --------------------------------------------------------------------------
# Armv7E-M DSP: convolution and fully connected as a GEMM over windows
# --------------------------------------------------------------------------
@dataclass
class ConvGeom:
    ih: int
    iw: int
    c: int
    oh: int
    ow: int
    oc: int
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pl: int
    nmax: int = 3

    @property
    def k(self) -> int:
        """im2col length: whole 4-groups of every window row, then the
        rows' leftover elements padded to a whole group."""
        seg = self.kw * self.c
        return self.kh * (seg // 4) * 4 + (self.kh * (seg % 4) + 3) // 4 * 4


def _conv_geom(q: dict) -> ConvGeom:
    g = ConvGeom(q["in_h"], q["in_w"], q["in_c"], q["out_h"], q["out_w"], q["out_c"], q["k_h"],
                 q["k_w"], q["stride_h"], q["stride_w"], q["pad_top"], q["pad_left"])
    return g


def _pack16(vals: np.ndarray) -> np.ndarray:
    """int16 values (even count) as little-endian int32 words."""
    v = np.asarray(vals, np.int64)
    assert v.size % 2 == 0 and np.abs(v).max(initial=0) <= 32767
    return v.astype("<i2").view("<i4").astype(np.int64)


def _pack8(vals: np.ndarray) -> np.ndarray:
    """int8 values (count a multiple of 4) as little-endian int32 words."""
    v = np.asarray(vals, np.int64)
    assert v.size % 4 == 0 and np.abs(v).max(initial=0) <= 128
    return v.astype(np.int8).view("<i4").astype(np.int64)


def _w8_order(lanes: np.ndarray) -> np.ndarray:
    """The int8 byte order whose SXTB16 / SXTB16 ROR 8 halfword pairs are the int16 lane
    order `lanes` (groups of 4 along the last axis): bytes (b0, b1, b2, b3) widen to
    lanes (b0, b2, b1, b3), a permutation that is its own inverse."""
    sh = lanes.shape
    return lanes.reshape(sh[:-1] + (sh[-1] // 4, 4))[..., [0, 2, 1, 3]].reshape(sh)


def _biases(plan: RequantPlan, c0: int, m: int) -> np.ndarray:
    """A block's starting accumulators: bias2, unscaled on int8 weights (exact: bias2 is
    the folded bias shifted left by the scale); packed records: with each channel's
    e - 1 below it (see _packed_records)."""
    b = plan.bias2[c0:c0 + m].astype(np.int64) >> plan.acc_shift
    if plan.packed:
        b = (b << PACK_BITS) | plan.records[c0:c0 + m, 1].astype(np.int64)
    return b


def _gemm_stream(w: np.ndarray, geo: ConvGeom, plan: RequantPlan) -> np.ndarray:
    """int8 weights [oc][kh][kw][c] -> the constant stream of td_arm_gemm_block:
    per block of two output channels (the last one alone when oc is odd) the
    biases, the weights in K-step order (int16 scaled, or int8 when
    plan.acc_shift), the requantization records."""
    oc, kh, kw, c = w.shape
    seg = kw * c
    g4, left = seg // 4 * 4, seg % 4
    rows = live_weights(w, plan).reshape(oc, kh, seg).astype(np.int64)
    if not plan.acc_shift:
        rows = rows * (np.int64(1) << plan.scale_bits.astype(np.int64)).reshape(oc, 1, 1)
    full = rows[:, :, :g4].reshape(oc, kh, g4 // 4, 4)[..., [0, 2, 1, 3]].reshape(oc, -1)
    rest = rows[:, :, g4:].reshape(oc, kh * left)
    k = geo.k
    flat = np.zeros((oc, k), np.int64)
    flat[:, :full.shape[1]] = full
    flat[:, full.shape[1]:full.shape[1] + rest.shape[1]] = rest
    k4, kh2 = k // 4, 0
    out = []
    blocks = [(c0, 2) for c0 in range(0, oc - oc % 2, 2)] + ([(oc - 1, 1)] if oc % 2 else [])
    for c0, m in blocks:
        blk = flat[c0:c0 + m]
        out.append(_biases(plan, c0, m))
        steps = blk[:, :4 * k4].reshape(m, k4, 4).transpose(1, 0, 2).reshape(-1)
        if kh2:
            steps = np.concatenate([steps, blk[:, 4 * k4:].reshape(-1)])
        out.append(_pack8(_w8_order(steps)) if plan.acc_shift else _pack16(steps))
        out.append(plan.stream_records(c0, m))
    return np.concatenate(out).astype(np.int32)


def _direction(ctx, op: Op) -> int:
    """-1 when the planned output overlaps the input walking backward, else 1."""
    mode = ctx.inplace(op)
    return -1 if mode is not None and mode.direction == "backward" else 1

def wrapper_fn(fn: str, params: list, body: str) -> str:
    """A layer's wrapper function: `TD_ARM_LAYER_FN static void fn(params) { body }`.
    Each parameter is one argument of the layer's call (in, [wv,] out, [scratch, ...]),
    so the wrapper names no arena address or constant array of its layer and layers of
    one shape can share it (codegen.share_functions)."""
    return f"{WRAPPER} static void {fn}({', '.join(params)})\n{{\n    {body}\n}}"


class _InWrapper:
    """The emit context as a wrapper's body sees it: the layer's scratch buffer is the
    wrapper's parameter `scratch` (uses_scratch: the body named it)."""

    def __init__(self, ctx):
        self._ctx, self.uses_scratch = ctx, False

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def scratch(self, op: Op) -> str:
        self._ctx.scratch(op)  # planned (else KeyError, as outside a wrapper)
        self.uses_scratch = True
        return "scratch"


def _layer_emitter(suffix: str, header: str, statement, blob=None, ctype: str = "int8_t",
                   cfg=None, named=None):
    """Emitter of a per-layer wrapper `SYM_suffix(const T *in, [const void *wv,] T *out)`
    whose body is statement(ctx, op) -- C text that names the layer's constant
    blob `wv` and its parameter struct `SYM_cfg` -- called from the layer list
    with the layer's buffers.  cfg: (ctype, fields, comment) of that struct,
    or a function of (ctx, op) giving them.  named: (groups, comment) of the layer's
    enum constants (see c_enum), which the statement names as @_field (and
    the prefix alone as (@))."""
    def emit(ctx, op_, sym):
        fn = f"{sym}_{suffix}"
        args = [ctx.ptr(op_.inputs[0]), ctx.ptr(op_.outputs[0], False)]
        params = [f"const {ctype} *in", f"{ctype} *out"]
        consts = [] if blob is None else [ctx.const(sym, "blob", blob, aligned=True)]
        if consts:
            args.insert(1, consts[0].sym)
            params.insert(1, "const void *wv")
        inner = _InWrapper(ctx)
        statement_text = statement(inner, op_)
        if inner.uses_scratch:
            params.append("void *scratch")
            args.append(ctx.scratch(op_))
        body = wrapper_fn(fn, params, statement_text)
        statics = [body]
        if cfg is not None:
            ctype_, fields, what = cfg(ctx, op_) if callable(cfg) else cfg
            statics.insert(0, c_cfg(ctype_, f"{sym}_cfg", fields, what))
            body = body.replace("&CFG", f"&{sym}_cfg")
            statics[-1] = body
        if named is not None:
            pre = layer_prefix(sym)
            statics.insert(0, c_enum(pre, named[0], named[1]))
            statics[-1] = statics[-1].replace("@_", f"{pre}_").replace("(@)", f"({pre})")
        return Call(fn, None, args, statics=statics, consts=consts, headers=[header])
    return emit


def _conv_plan(g: Graph, op: Op, w: np.ndarray, shift: Optional[int] = None,
               int8_weights: bool = False) -> Optional[RequantPlan]:
    q = op.int8_params
    oc = w.shape[0]
    wf = w.reshape(oc, -1).astype(np.int64)
    b = op.inputs[2] if len(op.inputs) > 2 else ""
    bias = g.tensors[b].data.astype(np.int64) if b else np.zeros(oc, np.int64)
    return requant_plan(bias, wf.sum(1), np.abs(wf).sum(1), q["input_offset"],
                        _per_channel(q, "multiplier", oc), _per_channel(q, "shift", oc),
                        q["output_offset"], q["act_min"], q["act_max"], uniform_shift=shift,
                        int8_weights=int8_weights)


@dataclass
class AddEpilogue:
    """The residual add fused into a convolution (in-place mode "conv_add")."""

    t_conv: np.ndarray  # int32 [256], index v + 128
    t_res: np.ndarray
    fields: dict  # TD_ARM_EPI_PARAMS enum fields
    residual: str
    output: str
    # what td_arm_add_tables needs to build t_conv and t_res at run time: td_arm_add_rescale
    # rows (offset, left_shift, multiplier, shift, scale_bits), the conv's operand first
    rescale: np.ndarray


def _add_epilogue(g: Graph, mode: InplaceMode) -> Optional[AddEpilogue]:
    add = next((o for o in g.ops if o.name == mode.add), None)
    if add is None or add.kind != "add_s8":
        return None
    tables = _add_tables(add.int8_params)
    if tables is None:
        return None
    x1, x2, init, rows = tables
    first = 0 if mode.conv_is_input1 else 1
    return AddEpilogue((x1, x2)[first], (x2, x1)[first], init, mode.residual, mode.output,
                       np.array([rows[first], rows[1 - first]], np.int32))


def _add_tables(aq) -> Optional[tuple]:
    """TFLite's Add as tables: (input 1's rescaled value for every int8 value (index v +
    128), input 2's, the sum's requantization as TD_ARM_EPI_PARAMS fields, the two inputs'
    td_arm_add_rescale rows), the tables scaled so that td_arm_epi_add's SMMLA requantizes
    their sum; None when requant_plan cannot prove the ranges."""
    v = np.arange(-128, 128, dtype=np.int64)

    def rescale(off, m, sh):
        return qmath.mbqm(qmath.wrap32((v + int(off)) << int(aq["left_shift"])), int(m), int(sh))

    x1 = rescale(aq["input1_offset"], aq["input1_multiplier"], aq["input1_shift"])
    x2 = rescale(aq["input2_offset"], aq["input2_multiplier"], aq["input2_shift"])
    bound = int(np.abs(x1).max() + np.abs(x2).max())
    plan = requant_plan([0], [0], [-(-bound // 255)], 0, [aq["output_multiplier"]],
                        [aq["output_shift"]], aq["output_offset"], aq["act_min"], aq["act_max"])
    if plan is None or plan.e < 1 or not plan.fold:
        return None
    sb = int(plan.scale_bits[0])
    rec = plan.records[0]
    mask = int(rec[2]) if plan.fix == 2 else 0
    init = dict(add_mult=int(rec[0]), add_c=int(rec[1]), add_fix_mask=mask, add_shift=plan.e,
                add_clamp=plan.clamp, add_min=plan.lo, add_max=plan.hi)
    rows = [[int(aq[f"input{i}_offset"]), int(aq["left_shift"]), int(aq[f"input{i}_multiplier"]),
             int(aq[f"input{i}_shift"]), sb] for i in (1, 2)]
    return (x1 << sb).astype(np.int32), (x2 << sb).astype(np.int32), init, rows


def _dsp_add(g: Graph, op: Op, mode: Optional[InplaceMode]) -> Optional[Choice]:
    """An add of two same-shape tensors (a transformer's residual; a convolution's is fused
    into it): td_arm_add_s8, two table lookups and one SMMLA per element. In place only
    element-wise (it reads element i before writing it)."""
    if mode is not None and mode.mode != "elementwise":
        return None
    out = g.tensors[op.outputs[0]].shape
    if any(g.tensors[name].shape != out for name in op.inputs):
        return None
    tables = _add_tables(op.int8_params)
    if tables is None:
        return None
    t1, t2, init, rows = tables

    def emit(ctx, op_, sym):
        c1, c2 = ctx.const(sym, "t1", t1, aligned=True), ctx.const(sym, "t2", t2, aligned=True)
        params = dict(size=int(g.tensors[op_.outputs[0]].size), t1=f"{c1.sym} + 128", t2=f"{c2.sym} + 128",
                      **init)
        return Call("td_arm_add_s8", "arm/dsp_add_s8.c",
                    [ctx.ptr(op_.inputs[0]), ctx.ptr(op_.inputs[1]), ctx.ptr(op_.outputs[0], False)],
                    "td_arm_add_params", params, consts=[c1, c2])

    def emit_in_ram(ctx, op_, sym):
        # the tables built in the layer's scratch from the two inputs' rescale rows
        rescale = ctx.const(sym, "rescale", np.array(rows, np.int32), ctype="td_arm_add_rescale")
        params = dict(size=int(g.tensors[op_.outputs[0]].size), t1="NULL", t2="NULL", **init)
        return Call("td_arm_add_s8_in_ram", "arm/dsp_add_s8_ram.c",
                    [rescale.sym, f"(int32_t *){ctx.scratch(op_)}", ctx.ptr(op_.inputs[0]),
                     ctx.ptr(op_.inputs[1]), ctx.ptr(op_.outputs[0], False)],
                    "td_arm_add_params", params, consts=[rescale])
    flash = Choice("arm_dsp_add", emit, detail="two rescale tables, SMMLA requantization",
                   const_bytes=RAM_TABLE_BYTES)
    # --optimize size: the tables in RAM where the arena has room, else (smaller) in flash
    in_ram = Choice("arm_dsp_add", emit_in_ram, RAM_TABLE_BYTES, smaller=flash,
                    detail="two rescale tables built in RAM, SMMLA requantization",
                    const_bytes=RESCALE_ROWS_BYTES, flash_saved=RAM_TABLE_BYTES - RESCALE_ROWS_BYTES,
                    extra_instructions=RAM_TABLE_INSTRUCTIONS, size_only=True)
    return replace(flash, compact=in_ram)


def _emit_gemm(ctx, op: Op, sym: str, geo: ConvGeom, w8: np.ndarray, plan: RequantPlan,
               in_zp: int, epi: Optional[AddEpilogue] = None, ram_tables: bool = False,
               tile: int = 0) -> "Call":
    """The layer's call of td_arm_conv (int16 weights) or td_arm_conv_w8 (int8; with
    `tile` blocks a tile: td_arm_conv_w8t), its shape compile-time constants
    (_emit_gemm_rt: run-time data)."""
    consts = [ctx.const(sym, "blob", _gemm_stream(w8, geo, plan), aligned=True)]
    wname = consts[0].sym
    k4 = geo.k // 4
    # int8 weights (the flash-saving twin): the hot K loop in blocks of 8 steps, not fully unrolled
    unroll = int(k4 <= UNROLL_STEPS and not plan.acc_shift)
    fn, pre = f"{sym}_arm", layer_prefix(sym)
    head = dict(pixels=geo.oh * geo.ow, out_c=geo.oc, k4=k4, unroll=unroll, block=geo.nmax,
                dir=_direction(ctx, op))
    if plan.acc_shift:
        # int8 weights: the block order is the wrapper's argument (see td_arm_conv_w8)
        del head["dir"]
        head["acc_shift"] = plan.acc_shift
        if tile:
            del head["unroll"]
            head["tile"] = tile
    rq = _rq_fields_zp_arg(plan) if plan.acc_shift else plan.fields()
    groups = [head,
              win_fields(geo.ih, geo.iw, geo.c, geo.oh, geo.ow, geo.kh, geo.kw, geo.sh, geo.sw,
                         geo.pt, geo.pl, in_zp), rq]
    scratch = "scratch"
    if epi is not None and ram_tables:
        # the two tables at the start of the layer's scratch, built first (RAM_TABLE_BYTES)
        consts.append(_rescale_rows(ctx, sym, epi))
        ep_decl, scratch = RAM_TABLES_PROLOGUE, "(t + 512)"
    elif epi is not None:
        consts += _epi_tables(ctx, sym, epi)
        ep_decl = "const td_arm_epi ep = {res, tconv + 128, tres + 128};"
    if epi is not None:
        groups.append(epi.fields)
        ep = "&ep"
        params = ("TD_ARM_CONV_ADD_W8T_ZP_PARAMS" if tile else "TD_ARM_CONV_ADD_W8_ZP_PARAMS"
                  if plan.acc_shift else "TD_ARM_CONV_ADD_PARAMS")
        out_t = epi.output
        args = [ctx.ptr(op.inputs[0]), ctx.ptr(epi.residual), ctx.ptr(out_t, False)]
    else:
        ep_decl, ep = "(void)res;", "NULL"
        params = ("TD_ARM_CONV_W8T_ZP_PARAMS" if tile else "TD_ARM_CONV_W8_ZP_PARAMS"
                  if plan.acc_shift else "TD_ARM_CONV_PARAMS")
        out_t = op.outputs[0]
        args = [ctx.ptr(op.inputs[0]), "NULL", ctx.ptr(out_t, False)]
    if tile:
        cfg = c_enum(pre, groups, f"im2col + GEMM on int8 weights, {geo.nmax} output pixels per "
                                  "block, widened once per tile of `tile` blocks; k4: window "
                                  "length / 4; accumulator << acc_shift")
        body = wrapper_fn(fn, _conv_params(epi, ram_tables) + ["int zp", "int dir"], f"""{ep_decl}
    td_arm_conv_w8t(in, (int16_t *){scratch},
                    (const int16_t *)(const void *)wv, out, {ep}, {params}({pre}, dir, zp));""")
    elif plan.acc_shift:
        cfg = c_enum(pre, groups, f"im2col + GEMM on int8 weights, {geo.nmax} output pixels per "
                                  "block; k4: window length / 4; accumulator << acc_shift")
        body = wrapper_fn(fn, _conv_params(epi, ram_tables) + ["int zp", "int dir"], f"""{ep_decl}
    td_arm_conv_w8(in, (int16_t *){scratch},
                   (const int16_t *)(const void *)wv, out, {ep}, {params}({pre}, dir, zp));""")
    else:
        cfg = c_enum(pre, groups, f"im2col + GEMM, {geo.nmax} output pixels per block; k4: window "
                                  "length / 4; dir -1: in place, last pixel first")
        body = wrapper_fn(fn, _conv_params(epi), f"""{ep_decl}
    td_arm_conv(in, (int16_t *)scratch,
                (const int16_t *)(const void *)wv, out, {ep}, {params}({pre}));""")
    call_args = _conv_args(ctx, op, args, wname, epi, consts, ram_tables)
    # int8 weights: the window copy is the shared run-time one (less code); the block order
    # (dir -1: in place, last pixel first) an argument
    source = "arm/dsp_im2col.c" if plan.acc_shift else None
    if plan.acc_shift:
        call_args += [str(plan.zp), str(_direction(ctx, op))]
    headers = [GEMM_H] + (["td_arm_add_table.h"] if epi is not None and ram_tables else [])
    return Call(fn, source, call_args, statics=[cfg, body], consts=consts, headers=headers)


def _rq_fields_zp_arg(plan: RequantPlan) -> dict:
    """The td_arm_rq_cfg fields of an int8-weight wrapper: the output zero point is its
    argument, so that layers which differ only in it share one function (it sets a compact
    record's rounding constant)."""
    rq = plan.fields()
    del rq["out_zero_point"]
    return rq


# a wrapper's first statements when a fused add's two tables are built at the start of its
# scratch (RAM_TABLE_BYTES; from the rescale rows, _rescale_rows); the GEMM's block follows
RAM_TABLES_PROLOGUE = """int32_t *t = (int32_t *)scratch;
    td_arm_add_tables(t, rescale);
    const td_arm_epi ep = {res, t + 128, t + 384};"""


def _rescale_rows(ctx, sym: str, epi: AddEpilogue):
    """The two td_arm_add_rescale rows that build the fused add's tables."""
    return ctx.const(sym, "rescale", epi.rescale, ctype="td_arm_add_rescale")


def _conv_shape(geo: ConvGeom, in_zp: int) -> list:
    """A convolution's td_arm_conv_shape row (pixels; the rest int16_t fields)."""
    win = win_fields(geo.ih, geo.iw, geo.c, geo.oh, geo.ow, geo.kh, geo.kw, geo.sh, geo.sw,
                     geo.pt, geo.pl, in_zp)
    return [geo.oh * geo.ow, geo.oc, geo.k // 4] + list(win.values())


def fits_int16(values) -> bool:
    """Every value fits an int16_t field of a run-time shape struct."""
    return all(-(1 << 15) <= int(v) < (1 << 15) for v in values)


def _emit_gemm_rt(ctx, op: Op, sym: str, geo: ConvGeom, w8: np.ndarray, plan: RequantPlan,
                  in_zp: int, epi: Optional[AddEpilogue] = None) -> "Call":
    """The layer's call of td_arm_conv_w8 with its shape as run-time data: a
    td_arm_conv_shape constant the wrapper takes as an argument, so that every layer with
    the same block size, short block, channel parity, accumulator shift and requantization
    flags shares one function.  A fused add (epi) builds its tables in the scratch and
    takes its sum's requantization as run-time data too (td_arm_epi_rq; the shift and
    whether it clamps stay compile-time constants)."""
    consts = [ctx.const(sym, "blob", _gemm_stream(w8, geo, plan), aligned=True),
              ctx.const(sym, "shape", np.array([_conv_shape(geo, in_zp)], np.int64),
                        ctype="td_arm_conv_shape")]
    fn, pre = f"{sym}_arm", layer_prefix(sym)
    rq = _rq_fields_zp_arg(plan)
    # unroll -1: the K loop for a run-time k4 (four steps a round, then one at a time)
    head = dict(unroll=-1, block=geo.nmax,
                short_block=geo.oh * geo.ow % geo.nmax, odd_out_c=geo.oc % 2,
                acc_shift=plan.acc_shift)
    groups = [head, rq]
    what = (f"im2col + GEMM on int8 weights, {geo.nmax} output pixels per block, the shape "
            "from the layer's td_arm_conv_shape; accumulator << acc_shift")
    params = _conv_params(epi, ram_tables=True) + ["const td_arm_conv_shape *shape"]
    if epi is None:
        args = [ctx.ptr(op.inputs[0]), consts[0].sym, "NULL", ctx.ptr(op.outputs[0], False),
                ctx.scratch(op)]
        call = f"TD_ARM_CONV_W8_RT_PARAMS({pre}, shape, dir, zp)"
        body = "(void)res;"
        blk, ep = "(int16_t *)scratch", "NULL"
    else:
        ef = epi.fields
        consts += [_rescale_rows(ctx, sym, epi),
                   ctx.const(sym, "add_rq", np.array([[ef[k] for k in (
                       "add_mult", "add_c", "add_fix_mask", "add_min", "add_max")]], np.int64),
                             ctype="td_arm_epi_rq")]
        groups.append(dict(add_shift=ef["add_shift"], add_clamp=ef["add_clamp"]))
        what += "; the fused add's sum requantized by the layer's td_arm_epi_rq"
        params.append("const td_arm_epi_rq *q")
        args = [ctx.ptr(op.inputs[0]), consts[0].sym, ctx.ptr(epi.residual),
                ctx.ptr(epi.output, False), ctx.scratch(op), consts[2].sym]
        call = f"TD_ARM_CONV_ADD_W8_RT_PARAMS({pre}, shape, q, dir, zp)"
        body = RAM_TABLES_PROLOGUE
        blk, ep = "(int16_t *)(t + 512)", "&ep"
    body = wrapper_fn(fn, params + ["int zp", "int dir"], f"""{body}
    td_arm_conv_w8(in, {blk}, (const int16_t *)(const void *)wv, out, {ep},
                   {call});""")
    args += [consts[1].sym] + ([consts[3].sym] if epi is not None else [])
    args += [str(plan.zp), str(_direction(ctx, op))]
    headers = [GEMM_H] + (["td_arm_add_table.h"] if epi is not None else [])
    return Call(fn, "arm/dsp_im2col.c", args, statics=[c_enum(pre, groups, what), body],
                consts=consts, headers=headers)


# an Add's two rescale tables (2 x 256 int32), and the two td_arm_add_rescale rows that
# build them in the layer's scratch instead (--optimize size)
RAM_TABLE_BYTES = 2 * 256 * 4
RESCALE_ROWS_BYTES = 2 * ELEM_BYTES["td_arm_add_rescale"]


def _conv_params(epi: Optional[AddEpilogue], ram_tables: bool = False) -> list:
    """The DSP / Helium convolution wrapper's parameters: input, constant stream, residual
    (NULL without a fused add), output, scratch, and the fused add's two tables (or what
    builds them in the scratch)."""
    params = ["const int8_t *in", "const void *wv", "const int8_t *res", "int8_t *out", "void *scratch"]
    if epi is None:
        return params
    return params + (["const td_arm_add_rescale *rescale"] if ram_tables
                     else ["const int32_t *tconv", "const int32_t *tres"])


def _conv_args(ctx, op: Op, args: list, wname: str, epi: Optional[AddEpilogue], consts: list,
               ram_tables: bool = False) -> list:
    """The call's arguments for _conv_params: args are (input, residual, output)."""
    tables = [] if epi is None else [consts[1].sym] if ram_tables else [consts[1].sym, consts[2].sym]
    return [args[0], wname, args[1], args[2], ctx.scratch(op)] + tables


def _epi_tables(ctx, sym: str, epi: AddEpilogue) -> list:
    """The fused add's two rescale tables, as constant arrays."""
    return [ctx.const(sym, "tconv", epi.t_conv, aligned=True),
            ctx.const(sym, "tres", epi.t_res, aligned=True)]


def _conv_scratch(geo: ConvGeom, tile: int = 0) -> int:
    """The im2col block (8 bytes over-written); with `tile` blocks a tile, those and the
    widened weights of a channel pair (td_arm_conv_w8t)."""
    if tile:
        return 4 * geo.k + tile * geo.nmax * geo.k * 2 + 8
    return geo.nmax * geo.k * 2 + 8


# td_arm_conv_w8t's tiles (blocks of three pixels), the largest first: the planner takes
# the first whose scratch fits where the arena has room (Choice.scratch_in_room)
GEMM_TILES = (16, 8, 4)


def _gemm_tiles(geo: ConvGeom) -> list:
    """The tile sizes (blocks) td_arm_conv_w8t may run the layer in, largest first: at
    least 4 blocks (fewer do not pay for the widening), at most the layer's."""
    blocks = geo.oh * geo.ow // geo.nmax
    return sorted({min(t, blocks) for t in GEMM_TILES if min(t, blocks) >= 4},
                  reverse=True) if geo.nmax == 3 else []


def _dsp_conv(g: Graph, op: Op, mode: Optional[InplaceMode], mve: bool = False) -> Optional[Choice]:
    q = op.int8_params
    if q["groups"] != 1 or q["dil_h"] != 1 or q["dil_w"] != 1:
        return None
    w8 = g.tensors[op.inputs[1]].data
    if mve:
        return _conv_common_mve(g, op, w8, mode)
    geo = _conv_geom(q)
    in_zp = -int(q["input_offset"])
    fused = _fused_add(g, mode, "arm_dsp_conv_1x1" if geo.kh == geo.kw == 1 else "arm_dsp_conv")
    if fused is None:
        return None
    name, epi = fused

    def variant(plan: Optional[RequantPlan], suffix: str, make, ram_tables=False,
                runtime_shape=False) -> Optional[Choice]:
        if plan is None:
            return None

        # the fused add's tables: in flash, or built in the scratch from two rescale rows
        tables = 0 if epi is None else RESCALE_ROWS_BYTES if ram_tables else RAM_TABLE_BYTES
        shape = (ELEM_BYTES["td_arm_conv_shape"] + (0 if epi is None else ELEM_BYTES["td_arm_epi_rq"])
                 if runtime_shape else 0)
        const_bytes = 4 * _gemm_stream(w8, geo, plan).size + tables + shape  # every link's

        def one(tile: int) -> Choice:
            def emit(ctx, op_, sym, p):
                if runtime_shape:
                    return _emit_gemm_rt(ctx, op_, sym, geo, w8, p, in_zp, epi)
                return _emit_gemm(ctx, op_, sym, geo, w8, p, in_zp, epi, ram_tables, tile)
            c = Choice(name + suffix, _with_alternatives(emit, plan, make),
                       _conv_scratch(geo, tile) + (RAM_TABLE_BYTES if ram_tables else 0),
                       const_bytes=const_bytes)
            if tile:
                c = _noted(c, f"weights widened once per {geo.nmax * tile} pixels",
                           scratch_in_room=True)
            return c
        # int8 weights with compile-time shapes: in tiles where the arena has room
        tiles = [] if runtime_shape or not plan.acc_shift else _gemm_tiles(geo)
        return _chain([one(t) for t in tiles] + [one(0)])
    wide = variant(_conv_plan(g, op, w8), "", lambda e: _conv_plan(g, op, w8, e))
    plan8 = _conv_plan(g, op, w8, int8_weights=True)
    blocks = -(-geo.oh * geo.ow // geo.nmax)
    # --optimize size, the end of the twin chain: a fused add's tables built at run time;
    # the other layers' shape as run-time data (one function for the layers of a kind;
    # where the shape fits the struct's int16_t fields)
    runtime = fits_int16(_conv_shape(geo, in_zp)[1:])
    shape_extra = RUNTIME_SHAPE_INSTRUCTIONS * blocks if runtime else 0
    if epi is not None:
        last = (lambda p: variant(p, "_w8", lambda e: None, ram_tables=True, runtime_shape=runtime),
                "add tables built in RAM" + ("; run-time shape" if runtime else ""),
                RAM_TABLE_INSTRUCTIONS + shape_extra, True)
    else:
        last = (lambda p: variant(p, "_w8", lambda e: None, runtime_shape=True),
                "run-time shape", shape_extra, False)
    compact = _with_records_twin(lambda p: variant(p, "_w8", lambda e: None), plan8,
                                 blocks * geo.oc, (last,) if epi is not None or runtime else (),
                                 pack=True)
    macs, outputs = ops.macs(g, op), geo.oh * geo.ow * geo.oc
    # one figure a link of the int8-weight chain (its tiles, then the untiled kernel)
    extras = [_gemm_extra(macs, outputs, t)
              for t in (_gemm_tiles(geo) if plan8 is not None and plan8.acc_shift else [])]
    return _with_compact(wide, compact, extras + [_gemm_extra(macs, outputs)])


def _gemm_extra(macs: int, outputs: int, tile: int = 0) -> int:
    """Instructions the int8-weight GEMM costs over the int16 one (fitted to the emulator's
    per-layer counts on the MLPerf models within ~10%): two SXTB16 per channel and 4-step
    shared by the block's 3 pixels (in tiles of `tile` blocks: a widening of 9
    instructions a step shared by the tile), and per output the accumulator shift and
    the per-channel requantization shift."""
    return (macs * 3 // (8 * tile) if tile else macs // 8) + 3 * outputs


def _with_compact(wide: Optional[Choice], compact: Optional[Choice], extra) -> Optional[Choice]:
    """The int16-weight variant with its int8-weight twin attached (Choice.compact); the
    twin alone when only it is exact for the layer's ranges.  extra: the twin's
    instructions over the fast variant, one figure or one a link of its chain
    (Choice.smaller; the last figure for the links beyond)."""
    if compact is None:
        return wide
    links = [_noted(c, "int8 weights") for c in _links(compact)]
    if wide is None:
        return _chain(links)
    extras = list(extra) if isinstance(extra, (list, tuple)) else [extra]
    extras += extras[-1:] * (len(links) - len(extras))
    return replace(wide, compact=_chain([
        replace(_int8_twin(c, e), flash_saved=max(0, wide.const_bytes - c.const_bytes))
        for c, e in zip(links, extras)]))


def _int8_twin(twin: Choice, extra: int) -> Choice:
    """An int16-weight variant's int8-weight twin costing `extra` instructions more than
    it, and its own twins (compact records, run-time shapes...) that much more than their
    estimates against the twin: every Choice.extra_instructions counts from the fast
    variant (api's fallback notes add them up)."""
    def shifted(c: Optional[Choice]) -> Optional[Choice]:
        return None if c is None else replace(c, extra_instructions=c.extra_instructions + extra,
                                              compact=shifted(c.compact), smaller=shifted(c.smaller))
    return replace(twin, extra_instructions=extra, compact=shifted(twin.compact))


def _noted(choice: Choice, note: str, **changes) -> Choice:
    """The choice with `note` appended to its detail (and other fields replaced)."""
    return replace(choice, detail=(choice.detail + "; " if choice.detail else "") + note, **changes)


def _with_records_twin(make, plan: Optional[RequantPlan], requants: int,
                       last_twins: tuple = (), pack: bool = False) -> Optional[Choice]:
    """The int8-weight chain make(plan) with, as each link's compact twin, the same kernel
    on compact records (make(_compact_records(plan)); --optimize size takes it): 4 bytes
    less a channel for about two instructions a channel record load (`requants` of them).
    pack (the GEMM and the 3x3 depthwise): those get a twin on packed records
    (_packed_records), 4 bytes less a channel again for about one more instruction a
    record load.
    last_twins ((make_last, note, extra instructions, fall_back), ...): the end of that
    chain of twins gets one more, make_last(its plan), e.g. a fused add's tables built in
    RAM (2 KB less for RAM_TABLE_INSTRUCTIONS; fall_back: see _with_twins), and that one
    the next (e.g. run-time shapes, then the portable kernel); make_last may give None
    (no such twin for the layer)."""
    chain = make(plan) if plan is not None else None
    if chain is None:
        return None
    # (plan, its chain, its note, extra instructions, fall_back of its twins), most
    # compact last
    levels = [(plan, chain, "", 0, False)]
    small = _compact_records(plan)
    steps = [(small, "compact records", 2 * requants)]
    if pack:
        steps.append((_packed_records(small), "compact records, shifts packed into the biases",
                      3 * requants))
    for p, note, extra in steps:
        twins = make(p) if p is not None else None
        if twins is None:
            break
        levels.append((p, _chain([_noted(t, note, extra_instructions=extra)
                                  for t in _links(twins)]), note, extra, False))
    for make_last, last_note, last_extra, fall_back in last_twins:
        last_plan, last, note, extra, _ = levels[-1]
        twin = make_last(last_plan)
        if twin is None:
            continue  # (e.g. a shape beyond the run-time struct's fields: the next twin)
        extra += last_extra
        note = (note + "; " if note else "") + last_note
        twins = _links(twin)
        if len(twins) == 1:  # e.g. the portable kernel: the twin of every link
            twins = twins * len(_links(last))
        levels.append((last_plan, _chain([_noted(t, note, extra_instructions=extra)
                                          for t in twins]), note, extra, fall_back))
    last, fall_back = levels[-1][1], levels[-1][4]
    for _, link_chain, _, _, link_fall_back in reversed(levels[:-1]):
        last = _with_twins(link_chain, _links(last), fall_back=fall_back)
        fall_back = link_fall_back
    return last


# instructions td_arm_add_tables spends on the two tables (the M4 emulator: about 24 an entry)
RAM_TABLE_INSTRUCTIONS = 12_100
# instructions a run-time shape costs a block of output pixels (loop bounds in registers
# or on the stack instead of constants)
RUNTIME_SHAPE_INSTRUCTIONS = 4


def _fused_add(g: Graph, mode: Optional[InplaceMode], name: str):
    """(variant name, add epilogue or None) for a conv, "_add" when its residual add is fused
    into it; None when the fused add cannot be folded into the kernel's epilogue."""
    if mode is None or not mode.fused:
        return name, None
    epi = _add_epilogue(g, mode)
    return None if epi is None else (name + "_add", epi)


def _conv_common_mve(g: Graph, op: Op, w8: np.ndarray, mode: Optional[InplaceMode]) -> Optional[Choice]:
    q = op.int8_params
    oc = w8.shape[0]
    wf = w8.reshape(oc, -1).astype(np.int64)
    b = op.inputs[2] if len(op.inputs) > 2 else ""
    bias = g.tensors[b].data.astype(np.int64) if b else np.zeros(oc, np.int64)
    geo = _conv_geom(q)
    fused = _fused_add(g, mode, "arm_mve_conv_1x1" if geo.kh == geo.kw == 1 else "arm_mve_conv")
    if fused is None:
        return None
    name, epi = fused
    return _mve_conv(g, op, geo, w8, bias, wf.sum(1), np.abs(wf).sum(1), q, epi, name)


def _mve_fc(g: Graph, op: Op) -> Optional[Choice]:
    q = op.int8_params
    w8 = g.tensors[op.inputs[1]].data
    n_out, n_in = w8.shape
    b = op.inputs[2] if len(op.inputs) > 2 else ""
    bias = g.tensors[b].data.astype(np.int64) if b else np.zeros(n_out, np.int64)
    wf = w8.astype(np.int64)
    rows = q["rows"]
    geo = _conv_geom(dict(in_h=1, in_w=rows, in_c=n_in, out_h=1, out_w=rows, out_c=n_out,
                          k_h=1, k_w=1, stride_h=1, stride_w=1, pad_top=0, pad_left=0))
    if n_in % 16 == 0:
        # no scratch: the rows are read in place
        plan = requant_plan(bias, wf.sum(1), np.abs(wf).sum(1), q["input_offset"],
                            _per_channel(q, "multiplier", n_out), _per_channel(q, "shift", n_out),
                            q["output_offset"], q["act_min"], q["act_max"], max_scale_bits=30)
        if plan is None:
            return None
        blob = _mve_stream(w8.reshape(n_out, 1, 1, n_in), plan, n_in // 16)

        cfg = ("td_arm_fc_cfg", dict(rows=rows, in_features=n_in, out_c=n_out, rq=plan.c_init()),
               "fully connected, Helium")
        return Choice("arm_mve_fc", _layer_emitter("mve", MVE_H, lambda ctx, op_: (
            "td_mve_fc(in, (const int8_t *)wv, out, &CFG);"), blob, cfg=cfg), 0)
    return _mve_conv(g, op, geo, w8.reshape(n_out, 1, 1, n_in), bias, wf.sum(1), np.abs(wf).sum(1),
                     q, None, "arm_mve_fc_im2col")


def _dsp_fc(g: Graph, op: Op) -> Optional[Choice]:
    q = op.int8_params
    w8 = g.tensors[op.inputs[1]].data  # [out][in]
    n_out, n_in = w8.shape
    rows = q["rows"]
    b = op.inputs[2] if len(op.inputs) > 2 else ""
    bias = g.tensors[b].data.astype(np.int64) if b else np.zeros(n_out, np.int64)
    wf = w8.astype(np.int64)
    geo = _conv_geom(dict(in_h=1, in_w=rows, in_c=n_in, out_h=1, out_w=rows, out_c=n_out,
                          k_h=1, k_w=1, stride_h=1, stride_w=1, pad_top=0, pad_left=0))
    w4 = w8.reshape(n_out, 1, 1, n_in)
    in_zp = -int(q["input_offset"])
    direct = n_in % 4 == 0 and rows < 3  # no scratch: the activations are widened inside the loop

    def make(shift=None, int8_weights=False):
        return requant_plan(bias, wf.sum(1), np.abs(wf).sum(1), q["input_offset"],
                            _per_channel(q, "multiplier", n_out), _per_channel(q, "shift", n_out),
                            q["output_offset"], q["act_min"], q["act_max"], uniform_shift=shift,
                            int8_weights=int8_weights)

    def variant(plan: Optional[RequantPlan]) -> Optional[Choice]:
        if plan is None:
            return None
        int8_weights = plan.acc_shift > 0
        suffix = "_w8" if int8_weights else ""
        alternative = (lambda e: None) if int8_weights else make
        if direct:
            def emit_fc(ctx, op_, sym, p):
                fields = dict(rows=rows, in_features=n_in, out_c=n_out, rq=p.c_init())
                if p.acc_shift:
                    fields["acc_shift"] = p.acc_shift
                cfg = ("td_arm_fc_cfg", fields, "fully connected, 4 features per block" +
                       (", int8 weights" if p.acc_shift else ""))
                return _layer_emitter("arm", GEMM_H, lambda ctx_, o: (
                    "td_arm_fc(in, (const int16_t *)wv, out, &CFG);"), _fc_stream(w8, p), cfg=cfg)(ctx, op_, sym)
            return Choice("arm_dsp_fc" + suffix, _with_alternatives(emit_fc, plan, alternative), 0,
                          const_bytes=4 * _fc_stream(w8, plan).size)

        def emit(ctx, op_, sym, p):
            return _emit_gemm(ctx, op_, sym, geo, w4, p, in_zp)
        return Choice("arm_dsp_fc_gemm" + suffix, _with_alternatives(emit, plan, alternative),
                      _conv_scratch(geo), const_bytes=4 * _gemm_stream(w4, geo, plan).size)
    # int8 weights: per 4 inputs and feature two SXTB16 (half an LDRD)
    extra = ops.macs(g, op) * 3 // 8 + 3 * rows * n_out if direct else \
        _gemm_extra(ops.macs(g, op), rows * n_out)
    plan8 = make(int8_weights=True)
    blocks = rows * (-(-n_out // 4) if direct else -(-n_out // 2))
    return _with_compact(variant(make()), _with_records_twin(variant, plan8, blocks), extra)


def _fc_stream(w8: np.ndarray, plan: RequantPlan) -> np.ndarray:
    """[out][in] int8 -> td_arm_fc_block's stream (weights in SXTB16 order)."""
    n_out, n_in = w8.shape
    k4 = n_in // 4
    wsc = live_weights(w8, plan).astype(np.int64)
    if not plan.acc_shift:
        wsc = wsc * (np.int64(1) << plan.scale_bits.astype(np.int64)).reshape(-1, 1)
    wsc = wsc.reshape(n_out, k4, 4)[..., [0, 2, 1, 3]]
    out, c0 = [], 0
    while c0 < n_out:
        m = 4 if n_out - c0 >= 4 else (2 if n_out - c0 >= 2 else 1)
        out.append(_biases(plan, c0, m))
        lanes = wsc[c0:c0 + m].transpose(1, 0, 2).reshape(-1)
        out.append(_pack8(_w8_order(lanes)) if plan.acc_shift else _pack16(lanes))
        out.append(plan.records[c0:c0 + m].reshape(-1).astype(np.int64))
        c0 += m
    return np.concatenate(out).astype(np.int32)


def _dsp_fc_s4(g: Graph, op: Op) -> Optional[Choice]:
    """Fully connected with int4 weights (td_arm_fc_s4, arm/dsp_fc_s4.c): the weights packed
    eight to a word, the accumulator 16 times the sum, the portable requantization."""
    w4 = g.tensors[op.inputs[1]].data  # int8 values in [-8, 7], [out][in]
    if w4.shape[1] % 8:
        return None
    wf = w4.astype(np.int64)
    start = _int4.starting_accumulators(g, op, wf, scale=16)  # the accumulator carries 16x
    if start is None:
        return None
    return _int4.packed_choice(op, "arm_dsp_fc_s4", "td_arm_fc_s4", "arm/dsp_fc_s4.c", "td_fc_s8_params",
                               [("stream", _fc_s4_stream(wf, start), "int32_t",
                                 "starting accumulators and int4 weights, 8 per word", True)])


def _dsp_conv_s4(g: Graph, op: Op) -> Optional[Choice]:
    """Convolution with int4 weights (td_arm_conv_s4, arm/dsp_conv_s4.c): one shared
    function; the windows copied by td_arm_im2col_rt, the weights widened in registers
    (eight per word), the accumulator 16 times the sum, the Arm requantization records."""
    q = op.int8_params
    if q["groups"] != 1 or q["dil_h"] != 1 or q["dil_w"] != 1:
        return None
    w4 = g.tensors[op.inputs[1]].data  # int8 values in [-8, 7], [oc][kh][kw][c]
    oc = w4.shape[0]
    if _int4.starting_accumulators(g, op, w4.reshape(oc, -1).astype(np.int64), scale=16) is None:
        return None  # the accumulator carries 16 times the sum
    plan = _conv_plan(g, op, w4, int8_weights=True)
    if plan is None:
        return None
    geo = _conv_geom(q)
    k8 = -(-geo.k // 8)
    stream = _conv_s4_stream(w4, geo, plan, k8)
    win = win_init(geo.ih, geo.iw, geo.c, geo.oh, geo.ow, geo.kh, geo.kw, geo.sh, geo.sw,
                   geo.pt, geo.pl, -int(q["input_offset"]))
    cfg = ("td_arm_conv_s4_cfg", dict(win=win, rq=plan.c_init(), pixels=geo.oh * geo.ow,
                                      out_c=oc, k8=k8, acc_shift=plan.acc_shift),
           "convolution on int4 weights: windows of 3 pixels, 8-steps of packed weights")
    emit = _layer_emitter("arm", CONV_S4_H, lambda ctx, op_: (
        f"td_arm_conv_s4(in, (int16_t *){ctx.scratch(op_)}, (const int32_t *)wv, out, &CFG);"),
        stream, cfg=cfg)
    return Choice("arm_dsp_conv_s4", emit, 3 * 16 * k8 + 8, const_bytes=4 * stream.size)


def _mve_fc_s4(g: Graph, op: Op) -> Optional[Choice]:
    """Fully connected with int4 weights on Helium (td_mve_fc_s4, arm/mve_fc_s4.c): the
    weights packed in halves, the portable requantization (see _int4.halves_fc)."""
    return _int4.halves_fc(g, op, "arm_mve_fc_s4", "td_mve_fc_s4", "arm/mve_fc_s4.c")


MVE_S4_PIXELS = 4  # TD_MVE_S4_PIXELS


def _mve_conv_s4(g: Graph, op: Op) -> Optional[Choice]:
    """Convolution with int4 weights on Helium (td_mve_conv_s4, arm/mve_conv_s4.c): windows
    copied by td_mve_im2col into rows of kc * 16 bytes (kc even), each channel's row of
    weights packed in halves (pack_int4_halves), the portable requantization."""
    q = op.int8_params
    if q["groups"] != 1 or q["dil_h"] != 1 or q["dil_w"] != 1:
        return None
    w4 = g.tensors[op.inputs[1]].data  # int8 values in [-8, 7], [oc][kh][kw][c]
    oc = w4.shape[0]
    wf = w4.reshape(oc, -1).astype(np.int64)
    klen = wf.shape[1]
    kc = -(-klen // 32) * 2
    start = _int4.starting_accumulators(g, op, wf)
    if start is None:
        return None
    rows = np.zeros((oc, kc * 16), np.int64)
    rows[:, :klen] = wf
    return _int4.packed_choice(
        op, "arm_mve_conv_s4", "td_mve_conv_s4", "arm/mve_conv_s4.c", "td_conv_s8_params",
        [("start", start, "int32_t", "starting accumulators"),
         ("w", pack_int4_halves(rows), "uint8_t",
          f"int4 weights, per channel two per byte (weights j and {kc * 8} + j)", True)],
        scratch=MVE_S4_PIXELS * kc * 16,
        extra=lambda ctx, op_: [f"(int8_t *){ctx.scratch(op_)}", str(kc)])


# nibble j of a td_arm_dw_s4 weight word holds channel DW_S4_NIBBLES[j] of its 8
DW_S4_NIBBLES = [0, 1, 4, 5, 2, 3, 6, 7]


# td_arm_dw_s4 lists a window's taps on the stack (TD_DW_S4_MAX_TAPS)
DW_S4_MAX_TAPS = 64


def _dsp_dw_s4(g: Graph, op: Op) -> Optional[Choice]:
    """Depthwise convolution with int4 weights on the DSP extension (td_arm_dw_s4,
    arm/dsp_dw_s4.c): depth multiplier 1, no dilation, at most DW_S4_MAX_TAPS taps; 8
    channels a weight word (the last word of a tap holds the channel count's remainder,
    taken one channel at a time); the accumulators 16 times the sums, the Arm
    requantization records (compact ones where they are exact), or the portable
    requantization where requant_plan cannot prove them."""
    q = op.int8_params
    ch = int(q["out_c"])
    taps = int(q["k_h"]) * int(q["k_w"])
    if ch != int(q["in_c"]) or q["dil_h"] != 1 or q["dil_w"] != 1 or taps > DW_S4_MAX_TAPS:
        return None
    rows = g.tensors[op.inputs[1]].data.astype(np.int64).reshape(taps, ch)  # [taps][ch]
    start = _int4.starting_accumulators(g, op, rows.T, scale=16)
    if start is None:
        return None  # the accumulators carry 16 times the sums
    b = op.inputs[2] if len(op.inputs) > 2 else ""
    bias = g.tensors[b].data.astype(np.int64) if b else np.zeros(ch, np.int64)
    mult, shift = _per_channel(q, "multiplier", ch), _per_channel(q, "shift", ch)
    plan = requant_plan(bias, rows.sum(0), np.abs(rows).sum(0), q["input_offset"], mult, shift,
                        q["output_offset"], q["act_min"], q["act_max"], int8_weights=True)
    if plan is not None:
        plan = _compact_records(plan) or plan
        live, records = live_weights(rows.T, plan).T, plan.records
        start = plan.bias2.astype(np.int64) >> plan.acc_shift  # constant channels: their own
        rq, shift_acc, portable = plan.c_init(), plan.acc_shift, 0
    else:  # the portable requantization: records {multiplier, shift}
        live, records = rows, np.stack([np.asarray(mult, np.int64), np.asarray(shift, np.int64)], 1)
        rq = c_init(fix=0, rec_words=2, uniform_shift=-1, fold=0,
                    out_zero_point=int(q["output_offset"]), clamp=1, act_min=int(q["act_min"]),
                    act_max=int(q["act_max"]))
        shift_acc, portable = 0, 1
    words8 = -(-ch // 8)
    padded = np.zeros((taps, 8 * words8), np.int64)
    padded[:, :ch] = live
    lanes = padded.reshape(taps, words8, 8)[..., DW_S4_NIBBLES]
    words = sum((lanes[..., j] & 15) << (4 * j) for j in range(8)).astype(np.uint32).view(np.int32)
    stream = np.concatenate([16 * start, records.reshape(-1).astype(np.int64),
                             words.reshape(-1).astype(np.int64)]).astype(np.int32)
    win = win_init(int(q["in_h"]), int(q["in_w"]), ch, int(q["out_h"]), int(q["out_w"]),
                   int(q["k_h"]), int(q["k_w"]), int(q["stride_h"]), int(q["stride_w"]),
                   int(q["pad_top"]), int(q["pad_left"]), -int(q["input_offset"]))
    cfg = ("td_arm_dw_s4_cfg", dict(win=win, rq=rq, acc_shift=shift_acc, portable=portable),
           "depthwise on int4 weights: per pixel the window's taps, channels in halves of 4")
    emit = _layer_emitter("arm", DW_S4_H, lambda ctx, op_: (
        "td_arm_dw_s4(in, (const int32_t *)wv, out, &CFG);"), stream, cfg=cfg)
    return Choice("arm_dsp_dw_s4", emit, const_bytes=4 * stream.size)


# the channel order of td_mve_dw_s4's requantization arrays in a block of 16 (VMOVLB /
# VMOVLT of the two int16 halves)
MVE_DW_S4_ORDER = [0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15]


def _mve_dw_s4(g: Graph, op: Op) -> Optional[Choice]:
    """Depthwise convolution with int4 weights on Helium (td_mve_dw_s4, arm/mve_dw_s4.c):
    depth multiplier 1, channels a multiple of 16, no dilation, at most 31 taps (the int16
    lane sums stay exact)."""
    q = op.int8_params
    ch = int(q["out_c"])
    taps = int(q["k_h"]) * int(q["k_w"])
    if ch != int(q["in_c"]) or ch % 16 or q["dil_h"] != 1 or q["dil_w"] != 1 or taps > 31:
        return None
    rows = g.tensors[op.inputs[1]].data.astype(np.int64).reshape(taps, ch)  # [taps][ch]
    mult = np.broadcast_to(np.asarray(q["multiplier"], np.int64).reshape(-1), (ch,))
    shift = np.broadcast_to(np.asarray(q["shift"], np.int64).reshape(-1), (ch,))
    left = np.maximum(shift, 0)
    start = _int4.starting_accumulators(g, op, rows.T, scale=1)
    if start is None or int(np.max((np.abs(start) + 128 * np.abs(rows).sum(0)) << left)) > INT32_MAX:
        return None
    order = np.concatenate([blk + np.asarray(MVE_DW_S4_ORDER) for blk in range(0, ch, 16)])
    rq = np.concatenate([start[order], mult[order], left[order], -np.maximum(-shift, 0)[order]])
    # [block][tap][8 bytes]: byte j of a block's tap holds its channels j and 8 + j
    blocks = rows.reshape(taps, ch // 16, 2, 8).transpose(1, 0, 3, 2)  # [block][tap][j][half]
    packed = ((blocks[..., 0] & 15) | ((blocks[..., 1] & 15) << 4)).astype(np.uint8).reshape(-1)
    return _int4.packed_choice(
        op, "arm_mve_dw_s4", "td_mve_dw_s4", "arm/mve_dw_s4.c", "td_conv_s8_params",
        [("rq", rq, "int32_t", "starting accumulators, multipliers, left and right shifts", True),
         ("w", packed, "uint8_t", "int4 weights, per 16 channels and tap two per byte")])


# nibble j of a word holds the weight of K position S4_CONV_NIBBLES[j] of its 8-step (see
# td_arm_conv_s4.h)
S4_CONV_NIBBLES = [0, 4, 2, 6, 1, 5, 3, 7]


def _conv_s4_stream(w4: np.ndarray, geo: ConvGeom, plan: RequantPlan, k8: int) -> np.ndarray:
    """int4 values [oc][kh][kw][c] -> td_arm_conv_s4's stream: per output channel 16 times
    the starting accumulator, k8 words of packed weights in the block's K order (that of
    _gemm_stream, zero-padded to a multiple of 8), the requantization record."""
    oc, kh, kw, c = w4.shape
    seg = kw * c
    g4, left = seg // 4 * 4, seg % 4
    rows = live_weights(w4, plan).reshape(oc, kh, seg).astype(np.int64)
    full = rows[:, :, :g4].reshape(oc, kh, g4 // 4, 4)[..., [0, 2, 1, 3]].reshape(oc, -1)
    rest = rows[:, :, g4:].reshape(oc, kh * left)
    flat = np.zeros((oc, 8 * k8), np.int64)
    flat[:, :full.shape[1]] = full
    flat[:, full.shape[1]:full.shape[1] + rest.shape[1]] = rest
    lanes = flat.reshape(oc, k8, 8)[..., S4_CONV_NIBBLES]
    words = sum((lanes[..., j] & 15) << (4 * j) for j in range(8)).astype(np.uint32).view(np.int32)
    out = []
    for ch in range(oc):
        out.append([16 * (int(plan.bias2[ch]) >> plan.acc_shift)])
        out.append(words[ch].astype(np.int64))
        out.append(plan.records[ch].astype(np.int64))
    return np.concatenate([np.asarray(o, np.int64) for o in out]).astype(np.int32)


S4_NIBBLES = [0, 4, 1, 5, 2, 6, 3, 7]  # nibble j of a word holds weight S4_NIBBLES[j] of 8


def _fc_s4_stream(w4: np.ndarray, start: np.ndarray) -> np.ndarray:
    """[out][in] int4 values and the starting accumulators -> td_arm_fc_s4's stream."""
    n_out, n_in = w4.shape
    lanes = w4.reshape(n_out, n_in // 8, 8)[..., S4_NIBBLES]
    words = sum((lanes[..., j] & 15) << (4 * j) for j in range(8)).astype(np.uint32).view(np.int32)
    out = []
    for c0 in range(0, n_out, 2):
        m = min(2, n_out - c0)
        out.append(start[c0:c0 + m] * 16)
        out.append(words[c0:c0 + m].T.reshape(-1).astype(np.int64))
    return np.concatenate(out).astype(np.int32)


# --------------------------------------------------------------------------
# Armv7E-M DSP: depthwise 3x3
# --------------------------------------------------------------------------
def _dw_reads(ou: int, su: int) -> int:
    """int16 read along a ring slot row (from column 0) for OU outputs."""
    span = {8: (10, 18), 6: (8, 14), 4: (6, 10), 2: (4, 6)}
    u, reads = 0, 0
    while u + 8 <= ou:
        reads = max(reads, u * su + span[8][su - 1])
        u += 8
    r = ou - u
    if r:
        nb = 8 if r > 6 else 6 if r > 4 else 4 if r > 2 else 2
        reads = max(reads, u * su + span[nb][su - 1])
    return reads


def dw_alias_safe(q: dict) -> bool:
    """Whether the row-ordered depthwise kernels may write their output exactly
    over their input (out == in, increasing rows): each output row lands on
    input pixels that no later row reads from memory (pixel stride C on both
    sides, so each byte keeps its channel; rows already read sit in the ring)."""
    if q["out_c"] != q["in_c"]:
        return False
    ih, iw, ow, sv, pt = q["in_h"], q["in_w"], q["out_w"], q["stride_h"], q["pad_top"]
    kh = q["k_h"]
    for oy in range(q["out_h"] - 1):
        # the first row the next output row loads from memory (the ring has up to
        # oy*sv - pt + kh - 1)
        first = max(oy * sv - pt + kh, (oy + 1) * sv - pt, 0)
        if first < ih and first <= (oy + 1) * sv - pt + kh - 1 and (oy + 1) * ow > first * iw:
            return False
    return True


def dw_groups(op: Op, ch: int, mode: Optional[InplaceMode]) -> list:
    """Channels per ring group for a depthwise layer, fastest (all channels in
    one group) first.  Smaller groups shrink the ring but cost a little per
    row; with several groups the output must not overlap the input except
    exactly (the planner's alias), so a layer that may run as an overlapping
    window without alias keeps one group."""
    if ch % 4 or (mode is not None and not dw_alias_safe(op.int8_params)):
        return [ch]
    return [d for d in range(ch, 3, -4) if ch % d == 0]


def _chain(choices: list) -> Optional[Choice]:
    """Link alternatives (fastest first) through Choice.smaller."""
    head = None
    for choice in reversed(choices):
        head = replace(choice, smaller=head)
    return head


def _links(chain: Optional[Choice]) -> list:
    """The alternatives of a chain (Choice.smaller), fastest first."""
    out = []
    while chain is not None:
        out.append(chain)
        chain = chain.smaller
    return out


def _with_twins(fast: Optional[Choice], twins: list, fall_back: bool = False) -> Optional[Choice]:
    """The chain `fast` with twins[i] as the compact twin of its i-th link (the twins
    chained too), each carrying the flash it saves against its link: every link carries
    the trade, so that --optimize balanced still sees it when the planner moves to a
    smaller alternative.  Links beyond the twins are dropped.  fall_back (twins that need
    more scratch than their links, e.g. tables built in RAM): past the twins, their chain
    goes on with the links themselves, which the planner takes when it finds no room."""
    links = _links(fast)
    paired = [replace(t, flash_saved=max(0, link.const_bytes - t.const_bytes))
              for link, t in zip(links, twins)]
    twin_chain = _links(_chain(paired + (links if fall_back else [])))
    return _chain([replace(link, compact=t) for link, t in zip(links, twin_chain)])


def thumb_add_imm(v: int) -> bool:
    """`add rd, rn, #v` assembles in Thumb-2 (ADDW/SUBW or a modified immediate)."""
    v = abs(v)
    if v <= 4095:
        return True
    while v and not v & 1:
        v >>= 1
    return v <= 0xFF


def _dsp_dw(g: Graph, op: Op, mode: Optional[InplaceMode]) -> Optional[Choice]:
    q = op.int8_params
    if (q["k_h"], q["k_w"]) not in ((3, 3), (5, 5)) or q["dil_h"] != 1 or q["dil_w"] != 1:
        return None
    if q["out_c"] != q["in_c"] or q["stride_h"] < 1 or q["stride_w"] not in (1, 2):
        return None
    if q["k_h"] == 5:
        return _dsp_dw5(g, op, mode)
    w8 = g.tensors[op.inputs[1]].data  # [3][3][C]
    ch = q["out_c"]
    b = op.inputs[2] if len(op.inputs) > 2 else ""
    bias = g.tensors[b].data.astype(np.int64) if b else np.zeros(ch, np.int64)
    wf = w8.reshape(9, ch).T.astype(np.int64)

    def make(shift=None):
        return requant_plan(bias, wf.sum(1), np.abs(wf).sum(1), q["input_offset"],
                            _per_channel(q, "multiplier", ch), _per_channel(q, "shift", ch),
                            q["output_offset"], q["act_min"], q["act_max"], uniform_shift=shift)
    plan = make()
    if plan is None:
        return None
    pu = max(_dw_reads(q["out_w"], q["stride_w"]), q["pad_left"] + q["in_w"])
    pu += pu % 2
    groups = [cg for cg in dw_groups(op, ch, mode) if thumb_add_imm(2 * cg * pu) and thumb_add_imm(4 * cg * pu)]
    def stream(p: RequantPlan) -> np.ndarray:
        return _dw_stream(w8, p)
    wide = _dw_choices("arm_dsp_dw3x3", "td_arm_dw3x3(in, (int16_t *){ring}, (const int32_t *)wv",
                       "arm", DW_H, 2, stream, q, pu, plan, groups, make)
    plan8 = requant_plan(bias, wf.sum(1), np.abs(wf).sum(1), q["input_offset"],
                         _per_channel(q, "multiplier", ch), _per_channel(q, "shift", ch),
                         q["output_offset"], q["act_min"], q["act_max"], int8_weights=True)
    if wide is None or plan8 is None:
        return wide

    def compact_chain(p: RequantPlan) -> Optional[Choice]:
        return _dw_choices("arm_dsp_dw3x3_w8", "td_arm_dw3x3(in, (int16_t *){ring}, (const int32_t *)wv",
                           "arm", DW_H, 2, stream, q, pu, p, groups, lambda e: None)
    # --optimize size, past the packed records: the shape as run-time data (one function
    # for the layers of a stride along x); where even that is over the board's flash: the
    # portable kernel (its code is shared by every depthwise layer; 9 weight bytes, the
    # bias, a multiplier and a shift byte a channel), about 5 instructions a MAC more
    runtime = (lambda p: _dw_rt_choices(q, 3, pu, p, groups, compact_chain(p))
               if fits_int16(_dw_shape(q, pu, groups[0], p, 1)) else None,
               "run-time shape if shared",
               q["out_h"] * ch * (DW_RUNTIME_ROW_INSTRUCTIONS +
                                  DW_RUNTIME_BLOCK_INSTRUCTIONS * -(-q["out_w"] // 8)), False)
    portable = (lambda p: Choice("portable", None, 0, portable=True, fit_only=True,
                                 const_bytes=18 * ch),
                "the portable kernel: less code", 5 * 9 * ch * q["out_h"] * q["out_w"], False)
    compact = _with_records_twin(compact_chain, plan8, q["out_h"] * ch, (runtime, portable),
                                 pack=True)
    # int8 weights: per block of up to 8 outputs of a row and channel, an LDR and two SXTB16
    # where an LDRD loaded each kernel row, and the shifts (~20, fitted to the emulator)
    extra = 20 * q["out_h"] * ch * -(-q["out_w"] // 8)
    return _with_twins(wide, [_int8_twin(_noted(b, "int8 weights"), extra) for b in _links(compact)])


def _dw5_reads(ou: int, su: int) -> int:
    """int16 read along a ring slot row by td_arm_dw5_row for OU outputs (pairs of outputs;
    a pair at u reads the words from u * su up to three (su 1) or four (su 2) further)."""
    pairs_end = ou + (ou & 1)
    return pairs_end + 4 if su == 1 else 2 * pairs_end + 4


def _dsp_dw5(g: Graph, op: Op, mode: Optional[InplaceMode]) -> Optional[Choice]:
    """Depthwise 5x5 on int8 weights (td_arm_dw5x5): the 3x3's ring with five rows, each
    kernel row as three SMLAD-family products per output; its stream holds 8 weight bytes a
    kernel row (int16 pairs would double it).  The portable kernel is its compact twin
    (--optimize size; balanced where the flash allows the fast one)."""
    q = op.int8_params
    w8 = g.tensors[op.inputs[1]].data  # [5][5][C]
    ch = q["out_c"]
    b = op.inputs[2] if len(op.inputs) > 2 else ""
    bias = g.tensors[b].data.astype(np.int64) if b else np.zeros(ch, np.int64)
    wf = w8.reshape(25, ch).T.astype(np.int64)
    plan = requant_plan(bias, wf.sum(1), np.abs(wf).sum(1), q["input_offset"],
                        _per_channel(q, "multiplier", ch), _per_channel(q, "shift", ch),
                        q["output_offset"], q["act_min"], q["act_max"], int8_weights=True)
    if plan is None:
        return None
    pu = max(_dw5_reads(q["out_w"], q["stride_w"]), q["pad_left"] + q["in_w"])
    pu += pu % 2

    def stream(p: RequantPlan) -> np.ndarray:
        wl = live_weights(w8.reshape(25, ch).T, p).reshape(ch, 5, 5).astype(np.int64)
        words = []
        for c in range(ch):
            words.append([int(p.bias2[c]) >> p.acc_shift])
            for r in range(5):
                w = wl[c, r]
                words.append(_pack8([w[0], w[2], w[1], w[3], w[1], w[3], w[2], w[4]]))
            words.append(p.records[c].astype(np.int64))
        return np.concatenate([np.asarray(x, np.int64) for x in words]).astype(np.int32)
    fast = _dw_choices("arm_dsp_dw5x5_w8", "td_arm_dw5x5(in, (int16_t *){ring}, (const int32_t *)wv",
                       "arm", DW_H, 2, stream, q, pu, plan, dw_groups(op, ch, mode), lambda e: None, k=5)
    # its compact twin is the portable kernel: 25 weight bytes, the bias, a multiplier and
    # a shift byte a channel (34 bytes against 56), about 5 instructions a MAC more (its
    # 0.11-0.14 MAC/instruction against 0.33 on the M4)
    twin = Choice("portable", None, 0, portable=True, detail="the portable kernel: less flash",
                  const_bytes=34 * ch, extra_instructions=5 * 25 * ch * q["out_h"] * q["out_w"])
    return _with_twins(fast, [twin] * len(_links(fast)))


def _dw_stream(w8: np.ndarray, plan: RequantPlan) -> np.ndarray:
    """[3][3][C] int8 -> td_arm_dw3x3's stream: per channel the bias, per kernel row the
    int16 pairs (w0, w1), (w1, w2) scaled by 2^scale_bits, or (plan.acc_shift) one word of
    the int8 bytes (w0, w1, w1, w2), then the record."""
    ch = w8.shape[2]
    w8 = live_weights(w8.reshape(9, ch).T, plan).T.reshape(w8.shape)
    sb = plan.scale_bits.astype(np.int64)
    stream = []
    for c in range(ch):
        if plan.acc_shift:
            wc = w8[:, :, c].astype(np.int64)
            words = list(_biases(plan, c, 1))
            for r in range(3):
                words += list(_pack8([wc[r, 0], wc[r, 1], wc[r, 1], wc[r, 2]]))
        else:
            wc = w8[:, :, c].astype(np.int64) << int(sb[c])
            words = [int(plan.bias2[c])]
            for r in range(3):
                words += list(_pack16([wc[r, 0], wc[r, 1], wc[r, 1], wc[r, 2]]))
        stream.append(np.asarray(words, np.int64))
        stream.append(plan.stream_records(c, 1))
    return np.concatenate(stream).astype(np.int32)


def _dw_choices(name: str, head: str, suffix: str, header: str, elem_bytes: int, blob, q: dict,
                pu: int, plan: RequantPlan, groups: list, make, k: int = 3) -> Optional[Choice]:
    """The depthwise k x k variant `name` for each ring group size in `groups`
    (fastest first, chained through Choice.smaller).  head: the kernel call's
    text up to its weights argument, with {ring} for the scratch pointer;
    blob(plan): the constant stream; make(shift): the plan with another
    uniform shift (see alternative_plans)."""
    win = win_init(q["in_h"], q["in_w"], q["out_c"], q["out_h"], q["out_w"], k, k, q["stride_h"],
                   q["stride_w"], q["pad_top"], q["pad_left"], -int(q["input_offset"]))

    def emitter(cg: int):
        def emit(ctx, op_, sym, p):
            def cfg(ctx_, o):
                fields = dict(win=win, rq=p.c_init(), group_c=cg, ring_w=pu, dir=_direction(ctx_, o))
                if p.acc_shift:
                    fields["acc_shift"] = p.acc_shift
                return ("td_arm_dw_cfg", fields,
                        f"depthwise {k}x{k}; scratch: {k} input rows of ring_w for group_c channels" +
                        ("; int8 weights" if p.acc_shift else ""))
            return _layer_emitter(suffix, header, lambda ctx_, o: (
                f"{head.format(ring=ctx_.scratch(o))}, out, &CFG);"), blob(p), cfg=cfg)(ctx, op_, sym)
        return _with_alternatives(emit, plan, make)
    return _chain([Choice(name, emitter(cg), k * cg * pu * elem_bytes + 16, alias_inplace=dw_alias_safe(q),
                          detail=f"ring of {cg} channels", const_bytes=4 * blob(plan).size)
                   for cg in groups])


# instructions a run-time shape costs a depthwise layer per output row and channel, and
# per block of up to 8 outputs of it (loop bounds, ring steps and the output's pixel stride
# read from the stack instead of constants; fitted to vww on the M4 emulator)
DW_RUNTIME_ROW_INSTRUCTIONS = 30
DW_RUNTIME_BLOCK_INSTRUCTIONS = 70


def _dw_shape(q: dict, pu: int, cg: int, p: RequantPlan, direction: int) -> list:
    """A depthwise layer's td_arm_dw_shape row (int16_t fields)."""
    return [q["in_h"], q["in_w"], q["out_c"], q["out_h"], q["out_w"], q["stride_h"], q["pad_top"],
            q["pad_left"], -int(q["input_offset"]), cg, pu, direction, p.zp, p.lo, p.hi]


def _dw_rt_choices(q: dict, k: int, pu: int, plan: RequantPlan, groups: list,
                   specialized: Choice) -> Choice:
    """The int8-weight depthwise k x k chain `specialized` (plan, one link per ring group
    size in `groups`) whose calls may take the layer's shape as run-time data
    (td_arm_dw_layer_rt and a td_arm_dw_shape constant the wrapper takes as an argument),
    so that the layers of one kernel size, stride along x and requantization flags share
    one function: each call is the specialized one with the run-time form as its
    alternative, which codegen.share_functions takes where it lets more layers share code
    (its Call's detail "shared" then follows the variant's in report.json)."""
    rq = plan.fields()
    for run_time in ("out_zero_point", "act_min", "act_max"):
        del rq[run_time]
    head = dict(k=k, stride_w=q["stride_w"], acc_shift=plan.acc_shift)
    what = (f"depthwise {k}x{k} on int8 weights, the shape from the layer's td_arm_dw_shape; "
            f"scratch: {k} input rows of ring_w for group_c channels")

    def emitter(cg: int, spec: Choice):
        def emit(ctx, op_, sym):
            call = spec.emit(ctx, op_, sym)
            blob = call.consts[0]  # the specialized call's stream (_layer_emitter's first)
            shape = ctx.const(sym, "shape", np.array([_dw_shape(q, pu, cg, plan, _direction(ctx, op_))],
                                                     np.int64), ctype="td_arm_dw_shape")
            fn, pre = f"{sym}_arm", layer_prefix(sym)
            names = ", ".join(f"{pre}_{f}" for f in (*head, *rq))
            body = wrapper_fn(fn, ["const int8_t *in", "const void *wv", "int8_t *out", "void *scratch",
                                   "const td_arm_dw_shape *shape"],
                              "td_arm_dw_layer_rt(in, (int16_t *)scratch, (const int32_t *)wv, out, "
                              f"shape,\n        {names});")
            args = [ctx.ptr(op_.inputs[0]), blob.sym, ctx.ptr(op_.outputs[0], False),
                    ctx.scratch(op_), shape.sym]
            call.alternatives = [Call(fn, None, args, statics=[c_enum(pre, [head, rq], what), body],
                                      consts=[blob, shape], headers=[DW_H], detail="shared")]
            return call
        return emit
    return _chain([replace(spec, emit=emitter(cg, spec)) for cg, spec in zip(groups, _links(specialized))])


# --------------------------------------------------------------------------
# Armv7E-M DSP: global average pool
# --------------------------------------------------------------------------
def _dsp_gavg(g: Graph, op: Op) -> Optional[Choice]:
    q = op.int8_params
    if (q["out_h"], q["out_w"]) != (1, 1) or (q["k_h"], q["k_w"]) != (q["in_h"], q["in_w"]):
        return None
    if q["pad_top"] or q["pad_left"] or q["in_h"] * q["in_w"] > 255:
        return None
    n_px, ch = q["in_h"] * q["in_w"], q["channels"]

    cfg = ("td_arm_gavg_cfg", dict(pixels=n_px, channels=ch, act_min=int(q["act_min"]),
                                   act_max=int(q["act_max"])), "global average pool")
    return Choice("arm_dsp_global_avg_pool", _layer_emitter("arm", POOL_H, lambda ctx, op_: (
        "td_arm_gavg(in, out, &CFG);"), cfg=cfg), 0)


# --------------------------------------------------------------------------
# Armv7E-M DSP and Helium: MatMul of two activations (arm/dsp_batch_matmul_s8.c,
# arm/mve_batch_matmul_s8.c)
# --------------------------------------------------------------------------
def _mve_batch_matmul(op: Op) -> Optional[Choice]:
    """VMLADAVA over K (B contiguous along K) or int32 lanes over 16 output columns (B along
    N), when A's rows are contiguous along K; the portable kernel's parameters."""
    q = op.int8_params
    if q["a_k_stride"] != 1 or 1 not in (q["b_k_stride"], q["b_n_stride"]):
        return None

    def emit(ctx, op_, sym):
        return s8_call(ctx, op_, sym, "td_mve_batch_matmul_s8", "arm/mve_batch_matmul_s8.c",
                       "td_batch_matmul_s8_params", "abo")
    detail = ("B read along K, 16 pairs per VMLADAVA" if q["b_k_stride"] == 1
              else "B read along N, 16 output columns in int32 lanes")
    return Choice("arm_mve_batch_matmul", emit, detail=detail)


def _dsp_batch_matmul(op: Op) -> Optional[Choice]:
    """SMLAD on halfword pairs of offset operands, when A's rows are contiguous along K
    and B is contiguous along K (q @ k^T) or N (a @ v); the same parameters as the
    portable kernel."""
    q = op.int8_params
    if q["a_k_stride"] != 1 or 1 not in (q["b_k_stride"], q["b_n_stride"]):
        return None

    def emit(ctx, op_, sym):
        return s8_call(ctx, op_, sym, "td_arm_batch_matmul_s8", "arm/dsp_batch_matmul_s8.c",
                       "td_batch_matmul_s8_params", "abo")
    along = "K" if q["b_k_stride"] == 1 else "N"
    return Choice("arm_dsp_batch_matmul", emit, detail=f"B read along {along}, two output columns per step")


# --------------------------------------------------------------------------
# Armv7E-M DSP: max pooling
# --------------------------------------------------------------------------
def _dsp_maxpool(g: Graph, op: Op) -> Optional[Choice]:
    q = op.int8_params
    win = win_init(q["in_h"], q["in_w"], q["channels"], q["out_h"], q["out_w"], q["k_h"], q["k_w"],
                   q["stride_h"], q["stride_w"], q["pad_top"], q["pad_left"], 0)
    cfg = ("td_arm_maxpool_cfg", dict(win=win, act_min=int(q["act_min"]),
                                      act_max=int(q["act_max"])), "max pool")
    return Choice("arm_dsp_max_pool", _layer_emitter("arm", POOL_H, lambda ctx, op_: (
        "td_arm_maxpool(in, out, &CFG);"), cfg=cfg), 0)


# --------------------------------------------------------------------------
# Helium (MVE): convolution and fully connected
# --------------------------------------------------------------------------
def _mve_stream(w: np.ndarray, plan: RequantPlan, kc: int) -> np.ndarray:
    """int8 weights [oc][kh][kw][c] -> td_mve_block's constant stream."""
    oc = w.shape[0]
    flat = np.zeros((oc, kc * 16), np.int64)
    flat[:, :w[0].size] = live_weights(w.reshape(oc, -1), plan)
    sb = plan.scale_bits.astype(np.int64)
    bias1 = plan.bias2.astype(np.int64) >> sb
    rec = plan.records.astype(np.int64)
    e = rec[:, 2] if plan.e < 0 else np.zeros(oc, np.int64)
    mask = rec[:, plan.rs - 1] if plan.fix == 2 else np.zeros(oc, np.int64)
    out = []
    c0 = 0
    while c0 < oc:
        m = 4 if oc - c0 >= 4 else (2 if oc - c0 >= 2 else 1)
        sl = slice(c0, c0 + m)
        head = np.concatenate([bias1[sl], sb[sl], rec[sl, 0], rec[sl, 1], e[sl], mask[sl]])
        out.append(head.astype("<i4").view(np.uint8).astype(np.int64))
        chunks = flat[sl].reshape(m, kc, 16).transpose(1, 0, 2).reshape(-1)
        out.append(chunks.astype(np.int8).view(np.uint8).astype(np.int64))
        c0 += m
    raw = np.concatenate(out).astype(np.uint8)
    raw = np.concatenate([raw, np.zeros((-raw.size) % 4, np.uint8)])
    return raw.view("<i4").astype(np.int32)


def _mve_conv(g: Graph, op: Op, geo: ConvGeom, w8: np.ndarray, bias, wsum, wabs, q: dict,
              epi: Optional[AddEpilogue], name: str) -> Optional[Choice]:
    oc = w8.shape[0]
    plan = requant_plan(bias, wsum, wabs, q["input_offset"], _per_channel(q, "multiplier", oc),
                        _per_channel(q, "shift", oc), q["output_offset"], q["act_min"],
                        q["act_max"], max_scale_bits=30)
    if plan is None:
        return None
    klen = geo.kh * geo.kw * geo.c
    kc = (klen + 15) // 16
    blob = _mve_stream(w8, plan, kc)
    in_zp = -int(q["input_offset"])

    def emit(ctx, op_, sym):
        consts = [ctx.const(sym, "blob", blob, aligned=True)]
        wname = consts[0].sym
        fn, pre = f"{sym}_mve", layer_prefix(sym)
        groups = [dict(pixels=geo.oh * geo.ow, out_c=oc, kc=kc, dir=_direction(ctx, op_)),
                  win_fields(geo.ih, geo.iw, geo.c, geo.oh, geo.ow, geo.kh, geo.kw, geo.sh,
                             geo.sw, geo.pt, geo.pl, in_zp), plan.fields()]
        if epi is not None:
            consts += _epi_tables(ctx, sym, epi)
            ep_decl = "const td_arm_epi ep = {res, tconv + 128, tres + 128};"
            groups.append(epi.fields)
            ep, params = "&ep", "TD_MVE_CONV_ADD_PARAMS"
            args = [ctx.ptr(op_.inputs[0]), ctx.ptr(epi.residual), ctx.ptr(epi.output, False)]
        else:
            ep_decl, ep, params = "(void)res;", "NULL", "TD_MVE_CONV_PARAMS"
            args = [ctx.ptr(op_.inputs[0]), "NULL", ctx.ptr(op_.outputs[0], False)]
        cfg = c_enum(pre, groups, "im2col + Helium GEMM, 2 output pixels per block; kc: "
                                  "16-byte chunks per window; dir -1: in place, last pixel first")
        body = wrapper_fn(fn, _conv_params(epi), f"""{ep_decl}
    td_mve_conv(in, (int8_t *)scratch, (const int8_t *)(const void *)wv, out, {ep},
                {params}({pre}));""")
        return Call(fn, None, _conv_args(ctx, op_, args, wname, epi, consts), statics=[cfg, body],
                    consts=consts, headers=[MVE_H])
    return Choice(name, emit, 2 * kc * 16 + 16)


def _mve_dw(g: Graph, op: Op, mode: Optional[InplaceMode]) -> Optional[Choice]:
    q = op.int8_params
    if (q["k_h"], q["k_w"]) != (3, 3) or q["dil_h"] != 1 or q["dil_w"] != 1:
        return None
    ch = q["out_c"]
    if q["out_c"] != q["in_c"] or q["stride_h"] < 1 or q["stride_w"] < 1:
        return None
    w8 = g.tensors[op.inputs[1]].data  # [3][3][C]
    b = op.inputs[2] if len(op.inputs) > 2 else ""
    bias = g.tensors[b].data.astype(np.int64) if b else np.zeros(ch, np.int64)
    wf = w8.reshape(9, ch).T.astype(np.int64)

    def make(shift=None):
        p = requant_plan(bias, wf.sum(1), np.abs(wf).sum(1), q["input_offset"],
                         _per_channel(q, "multiplier", ch), _per_channel(q, "shift", ch),
                         q["output_offset"], q["act_min"], q["act_max"], max_scale_bits=30,
                         uniform_shift=shift)
        return None if p is None or p.e < 1 or p.fix == 1 else p
    plan = make()
    if plan is None:
        return None
    pu = max((q["out_w"] - 1) * q["stride_w"] + 3, q["pad_left"] + q["in_w"])
    if 2 * pu + 2 > 255 or 3 * pu * 7 > 65535:  # 8-bit gather / 16-bit scatter offsets
        return None

    def blob(p: RequantPlan) -> np.ndarray:
        sb = p.scale_bits.astype(np.int64)
        bias1 = p.bias2.astype(np.int64) >> sb
        rec = p.records.astype(np.int64)
        mask = rec[:, p.rs - 1] if p.fix == 2 else np.zeros(ch, np.int64)
        wv = np.zeros((ch, 16), np.int64)
        wv[:, :9] = wf
        kr = np.stack([bias1, sb, rec[:, 0], rec[:, 1], mask], axis=1).reshape(-1)
        offs = np.zeros((3, 16), np.int64)
        for ph in range(3):
            for r in range(3):
                for kx in range(3):
                    offs[ph, 3 * r + kx] = ((ph + r) % 3) * pu + kx
        raw = np.concatenate([wv.reshape(-1).astype(np.int8).view(np.uint8),
                              kr.astype("<i4").view(np.uint8), offs.reshape(-1).astype(np.uint8)])
        raw = np.concatenate([raw, np.zeros((-raw.size) % 4, np.uint8)])
        return raw.view("<i4").astype(np.int32)
    return _dw_choices("arm_mve_dw3x3", "td_mve_dw3x3(in, (int8_t *){ring}, (const int8_t *)wv",
                       "mve", MVE_H, 1, blob, q, pu, plan, dw_groups(op, ch, mode), make)

# --------------------------------------------------------------------------
# float32 with the FPU: convolution (GEMM with VFMA blocks), depthwise 3x3
# --------------------------------------------------------------------------
def _f32_conv(g: Graph, op: Op) -> Optional[Choice]:
    a = op.attrs
    x, w, b = (op.inputs + ["", ""])[:3]
    wt = g.tensors[w]
    if not wt.is_const or wt.data.dtype != np.float32 or list(a["dilations"]) != [1, 1]:
        return None
    _, ih, iw, ic = g.tensors[x].shape
    _, oh, ow, oc = g.tensors[op.outputs[0]].shape
    kh, kw = wt.shape[1], wt.shape[2]
    sh, sw = a["strides"]
    pt, pl = a["pads"][0], a["pads"][1]
    lo, hi = a.get("act", (-np.inf, np.inf))
    bias = g.tensors[b].data.astype(np.float32).reshape(-1) if b else np.zeros(oc, np.float32)
    wd = wt.data.astype(np.float32)
    group = a["group"]
    if group == 1:
        k = kh * kw * ic
        flat = wd.reshape(oc, k)
        parts, c0 = [], 0
        while c0 < oc:
            m = min(4, oc - c0)
            parts += [bias[c0:c0 + m], flat[c0:c0 + m].T.reshape(-1)]
            c0 += m
        blob = np.concatenate(parts).astype(np.float32)
        pw1 = kh == kw == 1 and sh == sw == 1 and pt == pl == 0
        named = ([dict(pixels=oh * ow, out_c=oc),
                  win_fields(ih, iw, ic, oh, ow, kh, kw, sh, sw, pt, pl, 0)],
                 "float32 convolution, im2col + FMA blocks")

        emit = _layer_emitter("f32", FPU_H, lambda ctx, op_: (
            f"td_f32_conv(in, {'NULL' if pw1 else '(float *)' + ctx.scratch(op_)}, (const float *)wv, out,\n"
            f"                @_pixels, @_out_c, /* act */ {c_float(lo)}, {c_float(hi)}, "
            f"TD_ARM_WIN_PARAMS(@));"), blob, "float", named=named)
        return Choice("arm_fpu_conv_1x1" if pw1 else "arm_fpu_conv", emit,
                      0 if pw1 else 5 * k * 4 + 16)
    if group == ic == oc and (kh, kw) == (3, 3) and wd.shape[3] == 1 and sw == 1 \
            and pl in (0, 1) and iw >= 2:
        blob = np.concatenate([bias.reshape(oc, 1), wd.reshape(oc, 9)], axis=1).reshape(-1)
        blob = blob.astype(np.float32)

        named = ([dict(in_h=ih, in_w=iw, in_c=oc, out_h=oh, out_w=ow, stride_h=sh, pad_top=pt,
                       pad_left=pl)], "float32 depthwise 3x3, stride_w 1, direct")
        return Choice("arm_fpu_dw3x3", _layer_emitter("f32", FPU_H, lambda ctx, op_: (
            "td_f32_dw3x3_direct(in, (const float *)wv, out, @_in_h, @_in_w, @_in_c, @_out_h,\n"
            "                        @_out_w, @_stride_h, @_pad_top, @_pad_left, "
            f"/* act */ {c_float(lo)}, {c_float(hi)});"), blob, "float", named=named), 0)
    if group == ic == oc and (kh, kw) == (3, 3) and wd.shape[3] == 1:
        pu = max((ow - 1) * sw + 3, pl + iw)
        blob = np.concatenate([bias.reshape(oc, 1), wd.reshape(oc, 9)], axis=1).reshape(-1)
        blob = blob.astype(np.float32)

        named = ([dict(in_h=ih, in_w=iw, in_c=oc, out_h=oh, out_w=ow, stride_h=sh, stride_w=sw,
                       pad_top=pt, pad_left=pl, ring_w=pu)],
                 "float32 depthwise 3x3; scratch: 3 input rows of ring_w per channel")
        return Choice("arm_fpu_dw3x3", _layer_emitter("f32", FPU_H, lambda ctx, op_: (
            f"td_f32_dw3x3(in, (float *){ctx.scratch(op_)}, (const float *)wv, out, @_in_h, @_in_w,\n"
            "                 @_in_c, @_out_h, @_out_w, @_stride_h, @_stride_w, @_pad_top, @_pad_left, "
            f"@_ring_w,\n                 /* dir */ 1, /* act */ {c_float(lo)}, {c_float(hi)});"),
            blob, "float", named=named), 3 * oc * pu * 4 + 16)
    return None


# --------------------------------------------------------------------------
# Helium: softmax with the exponential table (arm/mve_softmax_table_s8.c)
# --------------------------------------------------------------------------
def _mve_softmax(op: Op, target, mode: Optional[InplaceMode]) -> Optional[Choice]:
    """Where the portable kernel would be td_softmax_table_s8 (ops/softmax.py: uses_table),
    its Helium twin: same parameters and table, 4 elements per step, any depth (tail
    predication), in place allowed (each step reads its 4 elements before writing them)."""
    if "mve" not in target.features or not softmax.uses_table(op.int8_params) or \
            (mode is not None and mode.mode != "elementwise"):
        return None
    return Choice("arm_mve_softmax_table", lambda ctx, op_, sym: softmax.emit_table(
        ctx, op_, sym, "td_mve_softmax_table_s8", "arm/mve_softmax_table_s8.c"),
        detail="4 lanes per step, table gathers")


# --------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------
WINDOW_OK = {"conv2d_s8", "depthwise_conv2d_s8"}


def _pads_within_window(q) -> bool:
    """Every pad narrower than the (dilated) window: the DSP and Helium convolutions' edge
    code assumes each output window touches the input. A pad as wide as the window (an
    ONNX Conv's own pads, or a Pad folded into a 1x1 convolution) gives output pixels of
    padding only, which the portable kernel computes."""
    span_h = (int(q["k_h"]) - 1) * int(q["dil_h"]) + 1
    span_w = (int(q["k_w"]) - 1) * int(q["dil_w"]) + 1
    out_h, out_w, stride_h, stride_w = (int(q[k]) for k in ("out_h", "out_w", "stride_h", "stride_w"))
    bottom = (out_h - 1) * stride_h + span_h - int(q["in_h"]) - int(q["pad_top"])
    right = (out_w - 1) * stride_w + span_w - int(q["in_w"]) - int(q["pad_left"])
    return int(q["pad_top"]) < span_h and int(q["pad_left"]) < span_w and bottom < span_h and right < span_w


def choose(g: Graph, op: Op, target, mode: Optional[InplaceMode] = None) -> Optional[Choice]:
    """The variant for `op` on `target` under the in-place decision `mode`, or None
    for the portable kernel."""
    if getattr(target, "arch", None) != "arm":
        return None
    if op.kind == "conv2d" and "fpu" in target.features and "dsp" in target.features:
        if mode is not None:
            return None
        return _f32_conv(g, op)
    if op.int8_params is None:
        return None
    if g.int4_weights(op):  # packed int4 weights: only the variants that read them so
        if "dsp" not in target.features or mode is not None:
            return None
        if op.kind == "fully_connected_s8":
            return (_mve_fc_s4(g, op) if "mve" in target.features else None) or _dsp_fc_s4(g, op)
        if op.kind == "conv2d_s8":
            return (_mve_conv_s4(g, op) if "mve" in target.features else None) or _dsp_conv_s4(g, op)
        if op.kind == "depthwise_conv2d_s8":
            return (_mve_dw_s4(g, op) if "mve" in target.features else None) or _dsp_dw_s4(g, op)
        return None
    if op.kind == "softmax_s8":
        return _mve_softmax(op, target, mode)
    if op.kind == "add_s8" and "dsp" in target.features:
        return _dsp_add(g, op, mode)
    if op.kind == "layer_norm_s8" and "mve" in target.features:  # ops/layer_norm.py: Helium lanes
        if mode is not None and mode.mode != "elementwise":
            return None
        from ..ops import layer_norm
        return layer_norm.lanes_choice(op, "arm_mve_layer_norm", "td_mve_layer_norm_s8",
                                       "arm/mve_layer_norm_s8.c")
    if mode is not None:
        # Our convolutions copy their whole input into the int16 scratch
        # buffer before writing any output, so any overlap of output and
        # input ("window") is fine.
        if not ((mode.mode == "window" and op.kind in WINDOW_OK)
                or (mode.mode == "conv_add" and op.kind == "conv2d_s8")):
            return None
    if op.kind in ("conv2d_s8", "depthwise_conv2d_s8") and not _pads_within_window(op.int8_params):
        return None  # windows wholly in the padding: the portable kernel (fuzzer bug 6)
    if "mve" in target.features:
        if op.kind == "conv2d_s8":
            return _dsp_conv(g, op, mode, mve=True)
        if op.kind == "fully_connected_s8":
            return _mve_fc(g, op)
        if op.kind == "depthwise_conv2d_s8":
            choice = _mve_dw(g, op, mode)
            if choice is not None:
                return choice
        if op.kind in ("lstm_s8", "gru_s8"):  # ops/rnn.py: the portable bodies with VMLADAVA dot products
            from ..ops import rnn
            return rnn.arm_mve_choice(g, op)
        if op.kind == "batch_matmul_s8":
            return _mve_batch_matmul(op)
        if op.kind == "attention_s8":  # ops/attention.py: the portable body with Helium row products
            from ..ops import attention
            return attention.arm_mve_choice(g, op)
    if "dsp" in target.features:
        if op.kind == "conv2d_s8":
            return _dsp_conv(g, op, mode)
        if op.kind == "fully_connected_s8":
            return _dsp_fc(g, op)
        if op.kind == "depthwise_conv2d_s8":
            return _dsp_dw(g, op, mode)
        if op.kind in ("avg_pool_s8", "max_pool_s8") and \
                (op.int8_params["dil_h"], op.int8_params["dil_w"]) != (1, 1):
            return None  # dilated pools (rare, ONNX only) run the portable kernel
        if op.kind == "avg_pool_s8":
            return _dsp_gavg(g, op)
        if op.kind == "max_pool_s8":
            return _dsp_maxpool(g, op)
        if op.kind == "batch_matmul_s8":
            return _dsp_batch_matmul(op)
        if op.kind in ("lstm_s8", "gru_s8"):  # ops/rnn.py: the portable bodies with SMLAD dot products
            from ..ops import rnn
            return rnn.arm_dsp_choice(g, op)
        if op.kind == "attention_s8":  # ops/attention.py: the portable body with SMLAD row products
            from ..ops import attention
            return attention.arm_dsp_choice(g, op)
    return None
