"""int8 C kernels (runtime_c/src/s8) against the numpy golden kernels, bit for bit.

The kernels are compiled once per session into a shared library with the
project's strict warning flags (a warning fails the run), plus a small shim
that exports the header's static inline fixed-point primitives.  Parameters
come from tinydeploy.qmath (the single source) and are passed unchanged to the
golden kernel (as a dict) and to the C kernel (as the mirrored ctypes
struct).  Output buffers are poisoned and surrounded by guard bytes, so an
element that is not written or a write outside the buffer is caught.  Set
TD_TEST_CFLAGS (e.g. "-fsanitize=address,undefined -g") to add flags.
"""

import ctypes as ct
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tinydeploy import golden_kernels as gk  # noqa: E402
from tinydeploy import qmath  # noqa: E402
from tinydeploy.ops import concat as concat_op  # noqa: E402

INCLUDE = ROOT / "runtime_c" / "include"
SRC = ROOT / "runtime_c" / "src" / "s8"
# the portable kernels of td_kernels_s8.h (other files in src/s8 are other
# kernel sets built on this header and are tested with them)
SOURCES = [SRC / f"{n}_s8.c" for n in ("conv", "fully_connected", "binary", "pool",
                                       "softmax", "activation", "shape")]
WARN = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion",
        "-Wshadow", "-Werror"]
CROSS = {"arm-none-eabi-gcc": [["-mcpu=cortex-m4", "-mthumb"], ["-mcpu=cortex-m0plus", "-mthumb"]],
         "riscv64-unknown-elf-gcc": [["-march=rv32imc", "-mabi=ilp32", "-ffreestanding"]]}
GUARD = 16
POISON = 0x5A
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow],
                max_examples=60)

SHIM = r"""
#include "td_kernels_s8.h"
int32_t t_srdhm(int32_t a, int32_t b) { return td_srdhm(a, b); }
int32_t t_rdbpot(int32_t x, int32_t e) { return td_rdbpot(x, (int)e); }
int32_t t_mbqm(int32_t x, int32_t m, int32_t s) { return td_mbqm(x, m, s); }
int32_t t_exp_neg(int32_t a, int32_t bits) { return td_fp_exp_neg(a, (int)bits); }
int32_t t_one_over(int32_t a) { return td_fp_one_over_one_plus_x(a); }
int32_t t_one_minus(int32_t a) { return td_fp_one_minus_x_over_one_plus_x(a); }
"""


# ---------------------------------------------------------------- ctypes ABI

I16, I32 = ct.c_int16, ct.c_int32
Dims = I32 * gk.MAX_DIMS
P_I32 = ct.POINTER(I32)
P_I8 = ct.POINTER(ct.c_int8)


def _fields(ctype, names):
    return [(n, ctype) for n in names.split()]


class ConvParams(ct.Structure):
    _fields_ = _fields(I16, "in_h in_w in_c out_h out_w out_c k_h k_w stride_h stride_w "
                            "dil_h dil_w pad_top pad_left groups per_channel") + \
        _fields(I32, "input_offset output_offset act_min act_max") + \
        [("multiplier", P_I32), ("shift", P_I8)]


class FcParams(ct.Structure):
    _fields_ = _fields(I32, "rows in_features out_features per_channel input_offset "
                            "output_offset act_min act_max") + \
        [("multiplier", P_I32), ("shift", P_I32)]


_BCAST = [("out_shape", Dims), ("a_strides", Dims), ("b_strides", Dims)]


class AddParams(ct.Structure):
    _fields_ = _BCAST + _fields(I32, "input1_offset input2_offset output_offset left_shift "
                                     "input1_multiplier input1_shift input2_multiplier "
                                     "input2_shift output_multiplier output_shift "
                                     "act_min act_max")


class MulParams(ct.Structure):
    _fields_ = _BCAST + _fields(I32, "input1_offset input2_offset output_offset "
                                     "output_multiplier output_shift act_min act_max")


class PoolParams(ct.Structure):
    _fields_ = _fields(I16, "in_h in_w channels out_h out_w k_h k_w stride_h stride_w dil_h dil_w "
                            "pad_top pad_left count_include_pad") + \
        _fields(I32, "zero_point act_min act_max")


class MeanParams(ct.Structure):
    _fields_ = _fields(I32, "outer reduce inner input_offset output_offset multiplier shift")


class SoftmaxParams(ct.Structure):
    _fields_ = _fields(I32, "outer depth input_multiplier input_left_shift diff_min")


class SigmoidParams(ct.Structure):
    _fields_ = _fields(I32, "size input_zero_point input_range_radius input_multiplier "
                            "input_left_shift")


class HardSwishParams(ct.Structure):
    _fields_ = _fields(I32, "size input_zero_point output_zero_point "
                            "reluish_multiplier_fixedpoint_int16 reluish_multiplier_exponent "
                            "output_multiplier_fixedpoint_int16 output_multiplier_exponent")


class LeakyReluParams(ct.Structure):
    _fields_ = _fields(I32, "size input_zero_point output_zero_point output_multiplier_alpha "
                            "output_shift_alpha output_multiplier_identity "
                            "output_shift_identity")


class RequantizeParams(ct.Structure):
    _fields_ = _fields(I32, "size input_zero_point output_zero_point multiplier shift")


class ConcatInput(ct.Structure):
    _fields_ = _fields(I32, "inner requantize input_zero_point multiplier shift")


class ConcatParams(ct.Structure):
    _fields_ = _fields(I32, "outer n_inputs output_zero_point") + \
        [("inputs", ct.POINTER(ConcatInput)), ("tables", ct.POINTER(ct.c_int8))]


class PadParams(ct.Structure):
    _fields_ = [("in_shape", Dims), ("pad_before", Dims), ("out_shape", Dims),
                ("mode", I32), ("value", I32)]


class TransposeParams(ct.Structure):
    _fields_ = [("out_shape", Dims), ("in_strides", Dims)]


def make_struct(cls, p, keep):
    """Fill a ctypes struct from a params dict (the generator's view).
    Pointer fields get int32 (or int8) arrays kept alive in `keep`."""
    s = cls()
    for name, ctype in cls._fields_:
        v = p[name]
        if ctype is P_I32 or ctype is P_I8:
            dtype = np.int32 if ctype is P_I32 else np.int8
            arr = np.ascontiguousarray(np.atleast_1d(v), dtype)
            assert np.array_equal(arr, np.atleast_1d(v)), (name, v)  # no value cut
            keep.append(arr)
            setattr(s, name, arr.ctypes.data_as(ctype))
        elif isinstance(ctype, type) and issubclass(ctype, ct.Array):
            setattr(s, name, ctype(*[int(x) for x in v]))
        else:
            setattr(s, name, int(v))
    return s


# ------------------------------------------------------------- build & call

def _compile(cc, flags, sources, out):
    cmd = [cc, *WARN, *flags, f"-I{INCLUDE}", *map(str, sources), "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout}{res.stderr}"


@pytest.fixture(scope="session")
def lib(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s8")
    shim = tmp / "shim.c"
    shim.write_text(SHIM)
    extra = os.environ.get("TD_TEST_CFLAGS", "").split()
    so = tmp / "libtd_s8.so"
    _compile("gcc", ["-shared", "-fPIC", *extra], [*SOURCES, shim], so)
    L = ct.CDLL(str(so))
    for name in ("t_srdhm", "t_rdbpot", "t_mbqm", "t_exp_neg", "t_one_over", "t_one_minus"):
        getattr(L, name).restype = I32
    return L


@pytest.mark.parametrize("compiler", sorted(CROSS))
def test_cross_compiles_warning_free(tmp_path, compiler):
    cc = shutil.which(compiler)
    if cc is None:
        pytest.skip(f"{compiler} not installed")
    for flags in CROSS[compiler]:
        for src in SOURCES:
            _compile(cc, [*flags, "-c"], [src], tmp_path / (src.stem + ".o"))


def _i8(a):
    return np.ascontiguousarray(a, np.int8)


def _ptr(a):
    return a.ctypes.data_as(P_I8)


class OutBuf:
    """Poisoned output buffer with guard bytes on both sides."""

    def __init__(self, n):
        self.n = n
        self.mem = np.full(n + 2 * GUARD, POISON, np.uint8).view(np.int8)

    @property
    def ptr(self):
        return _ptr(self.mem[GUARD:])

    def result(self):
        assert (self.mem[:GUARD].view(np.uint8) == POISON).all(), "write before output"
        assert (self.mem[GUARD + self.n:].view(np.uint8) == POISON).all(), "write past output"
        return self.mem[GUARD:GUARD + self.n].copy()


def assert_same(c_out, golden):
    golden = np.asarray(golden, np.int8).ravel()
    c_out = np.asarray(c_out, np.int8).ravel()
    assert c_out.shape == golden.shape
    bad = np.flatnonzero(c_out != golden)
    assert bad.size == 0, (f"{bad.size} mismatches, first at {bad[0]}: "
                           f"C {c_out[bad[0]]} golden {golden[bad[0]]}")


def call_unary(fn, params_cls, p, x):
    keep = []
    s = make_struct(params_cls, p, keep)
    x = _i8(x)
    out = OutBuf(x.size)
    fn(ct.byref(s), _ptr(x), out.ptr)
    # in place: output == input
    xi = x.copy()
    fn(ct.byref(s), _ptr(xi), _ptr(xi))
    res = out.result()
    assert_same(xi, res)
    return res


# ---------------------------------------------------------------- strategies

zero_points = st.one_of(st.sampled_from([-128, 127, 0]), st.integers(-128, 127))


@st.composite
def reals(draw, lo=-40.0, hi=8.0):
    """Effective multipliers 2^lo .. 2^hi, with exact powers of two too."""
    e = draw(st.floats(lo, hi))
    return draw(st.sampled_from([2.0 ** e, 2.0 ** round(e)]))


@st.composite
def act_ranges(draw):
    if draw(st.booleans()):
        return -128, 127
    a, b = sorted(draw(st.tuples(st.integers(-128, 127), st.integers(-128, 127))))
    return a, b


def rng_from(draw):
    return np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))


def int8_data(rng, shape, lo=-128):
    return rng.integers(lo, 128, size=shape, dtype=np.int64).astype(np.int8)


def quant_fields(draw, n_channels, rng):
    """Conv/FC quantization fields from random float scales (via qmath)."""
    in_scale = np.float32(2.0 ** draw(st.floats(-10, 2)))
    out_scale = np.float32(2.0 ** draw(st.floats(-10, 2)))
    per_channel = draw(st.booleans()) or n_channels == 1
    n = n_channels if per_channel else 1
    target = np.array([draw(reals()) for _ in range(min(n, 3))] * n)[:n]
    w_scales = (target * float(out_scale) / float(in_scale)).astype(np.float32)
    w_scales = np.where(w_scales > 0, w_scales, np.float32(1e-30))
    zin, zout = draw(zero_points), draw(zero_points)
    return qmath.conv_params(in_scale, zin, w_scales, out_scale, zout,
                             act_range=draw(act_ranges()))


# ---------------------------------------------------------------- primitives

def py_srdhm(a, b):
    if a == b == -2 ** 31:
        return 2 ** 31 - 1
    ab = a * b
    v = ab + (2 ** 30 if ab >= 0 else 1 - 2 ** 30)
    return int(v / 2 ** 31) if abs(v) < 2 ** 52 else (abs(v) >> 31) * (1 if v >= 0 else -1)


def py_rdbpot(x, e):
    mask = (1 << e) - 1
    rem, thr = x & mask, (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


int32s = st.one_of(st.integers(-2 ** 31, 2 ** 31 - 1),
                   st.sampled_from([-2 ** 31, 2 ** 31 - 1, 0, 1, -1, 2 ** 30, -2 ** 30]))


@settings(**dict(SETTINGS, max_examples=300))
@given(int32s, int32s)
@example(-2 ** 31, -2 ** 31)
def test_srdhm(lib, a, b):
    expect = py_srdhm(a, b)
    assert int(qmath.srdhm(a, b)) == expect
    assert lib.t_srdhm(a, b) == expect


@settings(**dict(SETTINGS, max_examples=300))
@given(int32s, st.integers(0, 31))
def test_rdbpot(lib, x, e):
    expect = py_rdbpot(x, e)
    assert int(qmath.rdbpot(x, e)) == expect
    assert lib.t_rdbpot(x, e) == expect


@settings(**dict(SETTINGS, max_examples=300))
@given(int32s, st.integers(0, 2 ** 31 - 1), st.integers(-31, 30))
def test_mbqm(lib, x, m, s):
    assert lib.t_mbqm(x, m, s) == int(qmath.mbqm(x, m, s))


@settings(**dict(SETTINGS, max_examples=200))
@given(st.integers(-2 ** 31 + 2 ** 26, 0), st.sampled_from([4, 5]), st.integers(0, 2 ** 31 - 1))
def test_fixed_point_functions(lib, a, bits, u):
    assert lib.t_exp_neg(a, bits) == int(qmath.exp_on_negative_values(a, bits))
    assert lib.t_one_over(u) == int(qmath.one_over_one_plus_x_for_x_in_0_1(u))
    assert lib.t_one_minus(u) == int(qmath.one_minus_x_over_one_plus_x_for_x_in_0_1(u))


def test_fixed_point_accuracy():
    a = np.arange(-(31 << 26), 1, 1 << 18)
    err = qmath.exp_on_negative_values(a, 5) / 2.0 ** 31 - np.exp(a / 2.0 ** 26)
    assert np.abs(err).max() < 1e-6
    x = np.linspace(-7.9, 7.9, 501)
    q4 = np.round(x * 2 ** 27).astype(np.int64)
    assert np.abs(qmath.fixed_logistic(q4, 4) / 2.0 ** 31 - 1 / (1 + np.exp(-x))).max() < 1e-6
    assert np.abs(qmath.fixed_tanh(q4, 4) / 2.0 ** 31 - np.tanh(x)).max() < 1e-6


def test_quantize_multiplier_edge_cases():
    assert qmath.quantize_multiplier(0.0) == (0, 0)
    assert qmath.quantize_multiplier(0.5) == (1 << 30, 0)
    assert qmath.quantize_multiplier(1.0) == (1 << 30, 1)
    assert qmath.quantize_multiplier(3.0) == (3 << 29, 2)
    # rounds up to 2^31 -> halved, exponent + 1
    assert qmath.quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)
    # below ~2^-32 flushes to zero
    assert qmath.quantize_multiplier(2.0 ** -33) == (0, 0)
    assert qmath.quantize_multiplier(2.0 ** -32) == (1 << 30, -31)
    m, s = qmath.quantize_multiplier(-0.75)
    assert (m, s) == (-(3 << 29), 0)
    for r in (1e-9, 0.3, 0.9999, 1.7, 123.4, 2.0 ** 20):
        m, s = qmath.quantize_multiplier(r)
        assert 2 ** 30 <= m < 2 ** 31
        assert abs(m * 2.0 ** (s - 31) - r) <= r * 2.0 ** -30
    ms, ss = qmath.quantize_multiplier_array([0.0, 0.5, 2.0 ** -40])
    assert ms.tolist() == [0, 1 << 30, 0] and ss.tolist() == [0, 0, 0]


def test_activation_range():
    assert qmath.fused_activation_range("relu", 0.1, -128) == (-128, 127)
    assert qmath.fused_activation_range("relu", 0.1, -5) == (-5, 127)
    assert qmath.fused_activation_range("relu6", 0.05, -128) == (-128, -8)
    assert qmath.fused_activation_range(None, 0.05, 3) == (-128, 127)
    assert qmath.activation_range(0.02, 10, -1.0, 1.0) == (-40, 60)


# ------------------------------------------------------------ convolutions

@st.composite
def conv_cases(draw, depthwise=False):
    rng = rng_from(draw)
    if depthwise:
        in_c = draw(st.integers(1, 7))
        groups, cg, ocg = in_c, 1, draw(st.integers(1, 3))
    else:
        groups = draw(st.integers(1, 3))
        cg, ocg = draw(st.integers(1, 6)), draw(st.integers(1, 5))
        in_c = groups * cg
    out_c = groups * ocg
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = draw(st.tuples(*[st.integers(0, 3)] * 4))
    h_lo = max(1, dh * (kh - 1) + 1 - pads[0] - pads[2])
    w_lo = max(1, dw * (kw - 1) + 1 - pads[1] - pads[3])
    h, w = draw(st.integers(h_lo, h_lo + 6)), draw(st.integers(w_lo, w_lo + 6))
    geo = gk.conv_geometry((h, w, in_c), out_c, (kh, kw), (sh, sw), (dh, dw), pads, groups)
    p = {**geo, **quant_fields(draw, out_c, rng)}
    x = int8_data(rng, (h, w, in_c))
    wshape = (kh, kw, out_c) if depthwise else (out_c, kh, kw, cg)
    wt = int8_data(rng, wshape, lo=draw(st.sampled_from([-127, -128])))
    bias = None
    if draw(st.booleans()):
        bias = rng.integers(-2 ** draw(st.integers(0, 24)), 2 ** 20, size=out_c).astype(np.int32)
    return p, x, wt, bias


def run_conv(lib, fn, p, x, w, bias):
    keep = []
    s = make_struct(ConvParams, p, keep)
    x, w = _i8(x), _i8(w)
    b = None if bias is None else np.ascontiguousarray(bias, np.int32)
    out = OutBuf(p["out_h"] * p["out_w"] * p["out_c"])
    fn(ct.byref(s), _ptr(x), _ptr(w), None if b is None else b.ctypes.data_as(P_I32), out.ptr)
    return out.result()


@settings(**dict(SETTINGS, max_examples=150))
@given(conv_cases())
def test_conv2d(lib, case):
    p, x, w, bias = case
    golden = gk.conv2d(x, w, bias, p)
    assert golden.shape == (p["out_h"], p["out_w"], p["out_c"])
    assert_same(run_conv(lib, lib.td_conv2d_s8, p, x, w, bias), golden)


@settings(**dict(SETTINGS, max_examples=150))
@given(conv_cases(depthwise=True))
def test_depthwise_conv2d(lib, case):
    p, x, w, bias = case
    golden = gk.depthwise_conv2d(x, w, bias, p)
    # the grouped conv path of the golden model agrees with the depthwise one
    assert_same(gk.conv2d(x, gk.depthwise_weights_to_conv(w), bias, p), golden)
    assert_same(run_conv(lib, lib.td_depthwise_conv2d_s8, p, x, w, bias), golden)
    assert_same(run_conv(lib, lib.td_conv2d_s8, p, x, gk.depthwise_weights_to_conv(w), bias),
                golden)


def test_conv_saturates_and_uses_padding_taps_correctly(lib):
    # extreme zero points, all-extreme data, huge multiplier -> saturation
    for zin in (-128, 127):
        x = np.full((3, 3, 2), 127 if zin == -128 else -128, np.int8)
        w = np.full((2, 3, 3, 2), 127, np.int8)
        geo = gk.conv_geometry((3, 3, 2), 2, (3, 3), pads=(1, 1, 1, 1))
        for real in (2.0 ** 6, 2.0 ** -36, 1.0):
            p = {**geo, **qmath.conv_params(1.0, zin, [real, real / 3], 1.0, 5)}
            golden = gk.conv2d(x, w, None, p)
            assert_same(run_conv(lib, lib.td_conv2d_s8, p, x, w, None), golden)
    assert golden.min() >= -128


@settings(**SETTINGS)
@given(st.data())
def test_fully_connected(lib, data):
    draw = data.draw
    rng = rng_from(draw)
    rows, n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 70)), draw(st.integers(1, 21))
    q = quant_fields(draw, n_out, rng)
    if draw(st.booleans()):   # per-tensor weights
        q = qmath.fc_params(np.float32(0.05), draw(zero_points), [draw(reals(-20, 2)) * 0.5],
                            np.float32(0.025), draw(zero_points), act_range=draw(act_ranges()))
    p = {"rows": rows, "in_features": n_in, "out_features": n_out, **q}
    x, w = int8_data(rng, (rows, n_in)), int8_data(rng, (n_out, n_in), -127)
    bias = rng.integers(-2 ** 16, 2 ** 16, size=n_out).astype(np.int32) if draw(st.booleans()) else None
    keep = []
    s = make_struct(FcParams, p, keep)
    out = OutBuf(rows * n_out)
    b = None if bias is None else bias.ctypes.data_as(P_I32)
    lib.td_fully_connected_s8(ct.byref(s), _ptr(_i8(x)), _ptr(_i8(w)), b, out.ptr)
    assert_same(out.result(), gk.fully_connected(x, w, bias, p))


# ---------------------------------------------------------- binary ops

@st.composite
def broadcast_shapes(draw):
    nd = draw(st.integers(1, 4))
    out = [draw(st.integers(1, 4)) for _ in range(nd)]
    a = [d if draw(st.integers(0, 3)) else 1 for d in out]
    b = [d if draw(st.integers(0, 3)) else 1 for d in out]
    a = a[draw(st.integers(0, nd - 1)):] if draw(st.booleans()) else a
    return tuple(a), tuple(b)


def scale(draw, lo=-12, hi=3):
    return np.float32(2.0 ** draw(st.floats(lo, hi)))


def run_binary(lib, fn, cls, p, a, b, in_place):
    keep = []
    s = make_struct(cls, p, keep)
    a, b = _i8(a), _i8(b)
    n = int(np.prod(p["out_shape"]))
    out = OutBuf(n)
    fn(ct.byref(s), _ptr(a), _ptr(b), out.ptr)
    res = out.result()
    if in_place and a.size == n:
        ai = a.copy()
        fn(ct.byref(s), _ptr(ai), _ptr(b), _ptr(ai))
        assert_same(ai, res)
    return res


@settings(**dict(SETTINGS, max_examples=100))
@given(st.data())
def test_add(lib, data):
    draw = data.draw
    rng = rng_from(draw)
    sa, sb = draw(broadcast_shapes())
    s1, s2 = scale(draw), scale(draw)
    so = np.float32(max(s1, s2) * 2.0 ** draw(st.floats(-6, 4)))
    q = qmath.add_params(s1, draw(zero_points), s2, draw(zero_points), so, draw(zero_points),
                         act_range=draw(act_ranges()))
    p = {**gk.broadcast_geometry(sa, sb), **q}
    a, b = int8_data(rng, sa), int8_data(rng, sb)
    golden = gk.add(a, b, p)
    assert golden.shape == tuple(p["out_shape"])
    assert_same(run_binary(lib, lib.td_add_s8, AddParams, p, a, b, True), golden)


@settings(**dict(SETTINGS, max_examples=100))
@given(st.data())
def test_mul(lib, data):
    draw = data.draw
    rng = rng_from(draw)
    sa, sb = draw(broadcast_shapes())
    q = qmath.mul_params(scale(draw), draw(zero_points), scale(draw), draw(zero_points),
                         scale(draw, -20, 0), draw(zero_points), act_range=draw(act_ranges()))
    p = {**gk.broadcast_geometry(sa, sb), **q}
    a, b = int8_data(rng, sa), int8_data(rng, sb)
    assert_same(run_binary(lib, lib.td_mul_s8, MulParams, p, a, b, True), gk.mul(a, b, p))


def test_add_real_values():
    # a sanity check of the TFLite formulation against float arithmetic
    p = {**gk.broadcast_geometry((5,), (5,)),
         **qmath.add_params(0.1, 3, 0.2, -7, 0.25, 1)}
    a = np.array([-128, -5, 0, 60, 127], np.int8)
    b = np.array([127, 20, -7, -128, 0], np.int8)
    real = 0.1 * (a.astype(int) - 3) + 0.2 * (b.astype(int) + 7)
    expect = np.clip(np.round(real / 0.25) + 1, -128, 127)
    assert np.abs(gk.add(a, b, p).ravel().astype(int) - expect).max() <= 1


# ---------------------------------------------------------- pooling / mean

@settings(**dict(SETTINGS, max_examples=120))
@given(st.data())
def test_pools(lib, data):
    draw = data.draw
    rng = rng_from(draw)
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 1, 2, 3]))
    pads = draw(st.tuples(*[st.integers(0, 3)] * 4))
    h = draw(st.integers(max(1, (kh - 1) * dh + 1 - pads[0] - pads[2]), 12))
    w = draw(st.integers(max(1, (kw - 1) * dw + 1 - pads[1] - pads[3]), 12))
    c = draw(st.integers(1, 6))
    geo = gk.pool_geometry((h, w, c), (kh, kw), (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                           pads, draw(st.booleans()), draw(zero_points), (dh, dw))
    p = {**geo, **qmath.pool_params(act_range=draw(act_ranges()))}
    x = int8_data(rng, (h, w, c))
    keep = []
    s = make_struct(PoolParams, p, keep)
    for fn, ref in ((lib.td_max_pool_s8, gk.max_pool), (lib.td_avg_pool_s8, gk.avg_pool)):
        out = OutBuf(p["out_h"] * p["out_w"] * c)
        fn(ct.byref(s), _ptr(_i8(x)), out.ptr)
        assert_same(out.result(), ref(x, p))


def test_avg_pool_rounding():
    # TFLite rounds the average half away from zero
    p = {**gk.pool_geometry((1, 2, 1), (1, 2), (1, 1)), **qmath.pool_params()}
    for pair, expect in (((1, 2), 2), ((-1, -2), -2), ((1, -2), -1), ((2, -1), 1)):
        assert int(gk.avg_pool(np.array(pair, np.int8), p).ravel()[0]) == expect


@settings(**SETTINGS)
@given(st.data())
def test_mean(lib, data):
    draw = data.draw
    rng = rng_from(draw)
    outer, red, inner = draw(st.integers(1, 3)), draw(st.integers(1, 80)), draw(st.integers(1, 9))
    si = scale(draw)
    so = np.float32(si * 2.0 ** draw(st.floats(-4, 4)))
    p = {"outer": outer, "reduce": red, "inner": inner,
         **qmath.mean_params(si, draw(zero_points), so, draw(zero_points), red)}
    x = int8_data(rng, (outer, red, inner))
    keep = []
    s = make_struct(MeanParams, p, keep)
    out = OutBuf(outer * inner)
    lib.td_mean_s8(ct.byref(s), _ptr(_i8(x)), out.ptr)
    assert_same(out.result(), gk.mean(x, p))


# ---------------------------------------------------- softmax / activations

ALL_INT8 = np.arange(-128, 128).astype(np.int8)


@settings(**SETTINGS)
@given(st.data())
def test_softmax(lib, data):
    draw = data.draw
    rng = rng_from(draw)
    outer, depth = draw(st.integers(1, 4)), draw(st.integers(1, 40))
    q = qmath.softmax_params(scale(draw, -10, 2), draw(st.sampled_from([1.0, 0.5, 2.0, 0.3])))
    p = {"outer": outer, "depth": depth, **q}
    x = int8_data(rng, (outer, depth))
    golden = gk.softmax(x, p)
    assert_same(call_unary(lib.td_softmax_s8, SoftmaxParams, p, x), golden)
    probs = (golden.astype(int) + 128) / 256
    assert np.abs(probs.sum(axis=1) - 1).max() < 0.02 * depth + 0.01


@settings(**SETTINGS)
@given(st.data())
def test_sigmoid_tanh_exhaustive(lib, data):
    draw = data.draw
    s, zp = scale(draw, -12, 2), draw(zero_points)
    for fn, ref, params, real in (
            (lib.td_sigmoid_s8, gk.sigmoid, qmath.sigmoid_params, lambda v: 0.5 * (1 + np.tanh(v / 2))),
            (lib.td_tanh_s8, gk.tanh, qmath.tanh_params, np.tanh)):
        p = {"size": 256, **params(s, zp)}
        golden = ref(ALL_INT8, p)
        assert_same(call_unary(fn, SigmoidParams, p, ALL_INT8), golden)
        if s > 0.25:   # TFLite saturates coarse inputs early (input_range_radius)
            continue
        out_scale, out_zp = (1 / 256, -128) if ref is gk.sigmoid else (1 / 128, 0)
        expect = np.clip(np.round(real(float(s) * (ALL_INT8.astype(int) - zp)) / out_scale) + out_zp,
                         -128, 127)
        assert np.abs(golden.astype(int) - expect).max() <= 1


@settings(**SETTINGS)
@given(st.data())
def test_hardswish_exhaustive(lib, data):
    draw = data.draw
    si = scale(draw, -10, 1)
    so = np.float32(si * 2.0 ** draw(st.floats(-6.9, 3)))
    zi, zo = draw(zero_points), draw(zero_points)
    p = {"size": 256, **qmath.hardswish_params(si, zi, so, zo)}
    golden = gk.hardswish(ALL_INT8, p)
    assert_same(call_unary(lib.td_hardswish_s8, HardSwishParams, p, ALL_INT8), golden)
    xr = float(si) * (ALL_INT8.astype(int) - zi)
    expect = np.clip(np.round(xr * np.clip(xr + 3, 0, 6) / 6 / float(so)) + zo, -128, 127)
    assert np.abs(golden.astype(int) - expect).max() <= 2


@settings(**SETTINGS)
@given(st.data())
def test_leaky_relu_requantize_exhaustive(lib, data):
    draw = data.draw
    si, so = scale(draw), scale(draw)
    zi, zo = draw(zero_points), draw(zero_points)
    alpha = draw(st.sampled_from([0.01, 0.1, 0.2, 1.5, -0.3]))
    p = {"size": 256, **qmath.leaky_relu_params(si, zi, so, zo, alpha)}
    assert_same(call_unary(lib.td_leaky_relu_s8, LeakyReluParams, p, ALL_INT8),
                gk.leaky_relu(ALL_INT8, p))
    p = {"size": 256, **qmath.requantize_params(si, zi, so, zo)}
    golden = gk.requantize(ALL_INT8, p)
    assert_same(call_unary(lib.td_requantize_s8, RequantizeParams, p, ALL_INT8), golden)
    expect = np.clip(np.round(float(si) * (ALL_INT8.astype(int) - zi) / float(so)) + zo, -128, 127)
    assert np.abs(golden.astype(int) - expect).max() <= 1


def test_lut(lib):
    p = {"size": 256, **qmath.sigmoid_params(0.05, 3)}
    table = gk.lut_table(lambda v: gk.sigmoid(v, p))
    for n in (1000, 1003):  # four at a time, and the rest
        x = np.random.default_rng(n).integers(-128, 128, n).astype(np.int8)
        out = OutBuf(x.size)
        lib.td_lut_s8(x.size, _ptr(table), _ptr(x), out.ptr)
        assert_same(out.result(), gk.sigmoid(x, p))
        assert_same(gk.lut(x, table), gk.sigmoid(x, p))
        # in place (output == input), as element-wise kernels may run
        y = _i8(x.copy())
        lib.td_lut_s8(x.size, _ptr(table), _ptr(y), _ptr(y))
        assert_same(np.asarray(y), gk.sigmoid(x, p))


# ---------------------------------------------------------- data movement

@settings(**SETTINGS)
@given(st.data())
def test_concat(lib, data):
    draw = data.draw
    rng = rng_from(draw)
    outer, n = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    so, zo = scale(draw), draw(zero_points)
    ins, xs = [], []
    for _ in range(n):
        inner = draw(st.integers(1, 7))
        same = draw(st.booleans())
        si, zi = (so, zo) if same else (scale(draw), draw(zero_points))
        ins.append(qmath.concat_input_params(inner, si, zi, so, zo))
        xs.append(int8_data(rng, (outer, inner)))
    p = {"outer": outer, "n_inputs": n, "output_zero_point": zo, "inputs": ins}
    golden = gk.concat(xs, p)
    keep = []
    # the generated code's form (a table per requantized input, `requantize` its number
    # from 1: ops/concat.py) or the computed requantization (no tables)
    tabled = draw(st.booleans()) and any(q["requantize"] for q in ins)
    rows, tables = [], []
    for q in ins:
        row = dict(q)
        if tabled and q["requantize"]:
            tables.append(concat_op._requant_table(p, q))
            row["requantize"] = len(tables)
        rows.append(row)
    arr = (ConcatInput * n)(*[make_struct(ConcatInput, q, keep) for q in rows])
    tab = np.ascontiguousarray(np.concatenate(tables) if tables else np.zeros(1, np.int8))
    s = ConcatParams(outer, n, zo, ct.cast(arr, ct.POINTER(ConcatInput)),
                     tab.ctypes.data_as(ct.POINTER(ct.c_int8)) if tables else None)
    xs_c = [_i8(x) for x in xs]
    ptrs = (P_I8 * n)(*[_ptr(x) for x in xs_c])
    out = OutBuf(golden.size)
    lib.td_concat_s8(ct.byref(s), ptrs, out.ptr)
    assert_same(out.result(), golden)


@settings(**SETTINGS)
@given(st.data())
def test_pad(lib, data):
    draw = data.draw
    rng = rng_from(draw)
    nd = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 4)) for _ in range(nd)]
    mode = draw(st.sampled_from([0, 1, 2]))
    limit = (lambda d: d - 1) if mode == 1 else (lambda d: 3)
    before = [draw(st.integers(0, limit(d))) for d in shape]
    after = [draw(st.integers(0, limit(d))) for d in shape]
    p = gk.pad_geometry(shape, before, after, mode, draw(zero_points))
    x = int8_data(rng, shape)
    golden = gk.pad(x, p)
    keep = []
    s = make_struct(PadParams, p, keep)
    out = OutBuf(golden.size)
    lib.td_pad_s8(ct.byref(s), _ptr(_i8(x)), out.ptr)
    assert_same(out.result(), golden)


@settings(**SETTINGS)
@given(st.data())
def test_transpose(lib, data):
    draw = data.draw
    rng = rng_from(draw)
    nd = draw(st.integers(1, 5))
    # up to 9 along an axis in up to 4 dimensions: rows long enough for the kernel to run
    # along the input's contiguous axis (in fours and the rest) when the output's are short
    shape = [draw(st.integers(1, 9 if nd <= 4 else 4)) for _ in range(nd)]
    perm = draw(st.permutations(range(nd)))
    x = int8_data(rng, shape)
    p = gk.transpose_geometry(shape, perm)
    golden = gk.transpose(x, p)
    assert_same(golden, np.transpose(x, perm))
    keep = []
    s = make_struct(TransposeParams, p, keep)
    out = OutBuf(x.size)
    lib.td_transpose_s8(ct.byref(s), _ptr(_i8(x)), out.ptr)
    assert_same(out.result(), golden)


def test_requantize_identity_is_exact():
    p = qmath.requantize_params(0.37, 5, 0.37, 5)
    assert gk.requantize(ALL_INT8, p).tolist() == ALL_INT8.tolist()
    assert math.isclose(p["multiplier"] * 2.0 ** (p["shift"] - 31), 1.0)


# ------------------------------------------- whole models through the C kernels

class CKernels:
    """golden_kernels-compatible functions backed by the C library, so the
    TFLite oracle runner can execute a whole model on the C kernels."""

    def __init__(self, lib):
        self.lib = lib

    def __getattr__(self, name):          # geometry helpers, reshape, ...
        return getattr(gk, name)

    def conv2d(self, x, w, b, p):
        out = run_conv(self.lib, self.lib.td_conv2d_s8, p, x, w, b)
        return out.reshape(p["out_h"], p["out_w"], p["out_c"])

    def depthwise_conv2d(self, x, w, b, p):
        out = run_conv(self.lib, self.lib.td_depthwise_conv2d_s8, p, x, w, b)
        return out.reshape(p["out_h"], p["out_w"], p["out_c"])

    def fully_connected(self, x, w, b, p):
        keep = []
        s = make_struct(FcParams, p, keep)
        bias = None if b is None else np.ascontiguousarray(b, np.int32)
        out = OutBuf(p["rows"] * p["out_features"])
        self.lib.td_fully_connected_s8(ct.byref(s), _ptr(_i8(x)), _ptr(_i8(w)),
                                       None if bias is None else bias.ctypes.data_as(P_I32),
                                       out.ptr)
        return out.result().reshape(p["rows"], p["out_features"])

    def _pool(self, fn, x, p):
        keep = []
        s = make_struct(PoolParams, p, keep)
        out = OutBuf(p["out_h"] * p["out_w"] * p["channels"])
        fn(ct.byref(s), _ptr(_i8(x)), out.ptr)
        return out.result()

    def avg_pool(self, x, p):
        return self._pool(self.lib.td_avg_pool_s8, x, p)

    def max_pool(self, x, p):
        return self._pool(self.lib.td_max_pool_s8, x, p)

    def softmax(self, x, p):
        return call_unary(self.lib.td_softmax_s8, SoftmaxParams, p, x)

    def add(self, a, b, p):
        return run_binary(self.lib, self.lib.td_add_s8, AddParams, p, a, b, False)


@pytest.mark.parametrize("name", ["kws", "resnet8", "vww", "ad"])
def test_mlperf_models_on_c_kernels(lib, name, monkeypatch):
    sys.path.insert(0, str(ROOT / "tests"))
    import tflite_oracle
    from conftest import MODELS
    d = MODELS / name
    if not (d / "int8.tflite").exists():
        pytest.fail(f"missing {d}: the MLPerf models must be beside the repo")
    model = tflite_oracle.TFLiteModel.from_file(d / "int8.tflite")
    monkeypatch.setattr(tflite_oracle, "gk", CKernels(lib))
    with np.load(d / "reference.npz") as ref:
        for x, y in list(zip(ref["int8_inputs"], ref["tflm_int8_outputs"]))[:3]:
            assert_same(model.run(x), y)
