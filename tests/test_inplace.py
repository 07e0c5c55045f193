"""In-place execution (tinydeploy/inplace.py, runtime_c/src/s8/inplace_s8.c).

1. The access-order model: inplace.deltas() gives, for every conv/depthwise
   configuration, the smallest shift of the output below (forward) or above
   (backward) its input at which no input byte is overwritten before its last
   read -- checked against a byte-level simulation of the kernels' order.
2. The C kernels, on the host: the overlapping conv, depthwise and fused
   conv+add kernels, run with buffers overlapped at exactly those shifts,
   equal the portable kernels on separate buffers, bit for bit.
3. A model exercising every in-place mode (window forward/backward over a
   stride-1 and stride-2 conv, depthwise, 1x1 with Cout > Cin and Cout < Cin,
   the fused conv+add written over its residual or over its input,
   element-wise unary/binary ops) is bit-exact with the golden model on the
   emulated stm32f746 and rv32-zve32x, with the overlaps forced and with the
   default plan.
"""
import ctypes as ct
import dataclasses
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tinydeploy import api, inplace, inplace_kernels, planner, qmath  # noqa: E402
from tinydeploy.targets import load_target  # noqa: E402

INCLUDE = ROOT / "runtime_c" / "include"
SRC = ROOT / "runtime_c" / "src" / "s8"
WARN = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wshadow", "-Werror"]


# --------------------------------------------------------------------------
# Random convolution configurations
# --------------------------------------------------------------------------
def random_conv(rng: random.Random, depthwise: bool) -> dict:
    k_h, k_w = rng.randint(1, 3), rng.randint(1, 3)
    dil_h, dil_w = rng.choice([1, 1, 2]), rng.choice([1, 1, 2])
    s_h, s_w = rng.randint(1, 2), rng.randint(1, 2)
    in_h, in_w = rng.randint(1, 7), rng.randint(1, 7)
    in_c = rng.randint(1, 6)
    if depthwise:
        groups, out_c = in_c, in_c * rng.choice([1, 1, 2])
    else:
        groups = rng.choice([1, 1, 1, in_c])
        out_c = groups * rng.randint(1, 3) if groups > 1 else rng.randint(1, 9)
    pad_t, pad_l = rng.randint(0, k_h // 2 * dil_h), rng.randint(0, k_w // 2 * dil_w)
    eff_h, eff_w = (k_h - 1) * dil_h + 1, (k_w - 1) * dil_w + 1
    out_h = max(1, (in_h + 2 * pad_t - eff_h) // s_h + 1)
    out_w = max(1, (in_w + 2 * pad_l - eff_w) // s_w + 1)
    return dict(in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
                k_h=k_h, k_w=k_w, stride_h=s_h, stride_w=s_w, dil_h=dil_h, dil_w=dil_w,
                pad_top=pad_t, pad_left=pad_l, groups=groups)


def unit_read_sets(q: dict, depthwise: bool) -> list:
    """The exact input byte offsets each output byte (NHWC order) reads."""
    sets = []
    in_c, out_c = q["in_c"], q["out_c"]
    for oy in range(q["out_h"]):
        for ox in range(q["out_w"]):
            pixels = []
            for ky in range(q["k_h"]):
                iy = oy * q["stride_h"] - q["pad_top"] + ky * q["dil_h"]
                for kx in range(q["k_w"]):
                    ix = ox * q["stride_w"] - q["pad_left"] + kx * q["dil_w"]
                    if 0 <= iy < q["in_h"] and 0 <= ix < q["in_w"]:
                        pixels.append(iy * q["in_w"] + ix)
            for oc in range(out_c):
                if depthwise:
                    chans = [oc // (out_c // in_c)]
                else:
                    cg, ocg = in_c // q["groups"], out_c // q["groups"]
                    chans = range(oc // ocg * cg, (oc // ocg + 1) * cg)
                sets.append([p * in_c + c for p in pixels for c in chans])
    return sets


def first_violation(sets: list, n_in: int, out_start: int, backward: bool):
    """Simulate the kernel order with the output at out_start relative to the input:
    the first (unit, byte) that reads an input byte already overwritten, or None."""
    clobbered = set()
    order = range(len(sets) - 1, -1, -1) if backward else range(len(sets))
    for u in order:
        for r in sets[u]:
            if r in clobbered:
                return u, r
        at = out_start + u
        if 0 <= at < n_in:
            clobbered.add(at)
    return None


@pytest.mark.parametrize("depthwise", [False, True])
def test_deltas_are_exactly_the_smallest_safe_shifts(depthwise):
    rng = random.Random(5 + depthwise)
    for _ in range(60):
        q = random_conv(rng, depthwise)
        f, b = inplace.deltas(q, depthwise)
        sets = unit_read_sets(q, depthwise)
        n_in = q["in_h"] * q["in_w"] * q["in_c"]
        n_out = len(sets)
        assert 0 <= f <= n_out and 0 <= b <= n_in, q
        assert first_violation(sets, n_in, -f, backward=False) is None, (q, f)
        assert first_violation(sets, n_in, b, backward=True) is None, (q, b)
        if f > 0:  # one byte less and some input is read after it was overwritten
            assert first_violation(sets, n_in, -(f - 1), backward=False) is not None, (q, f)
        if b > 0:
            assert first_violation(sets, n_in, b - 1, backward=True) is not None, (q, b)


def test_known_deltas():
    # 3x3 stride-1 depthwise over 25x5x64 (kws): one row and one pixel of lag
    q = dict(in_h=25, in_w=5, in_c=64, out_h=25, out_w=5, out_c=64, k_h=3, k_w=3, stride_h=1,
             stride_w=1, dil_h=1, dil_w=1, pad_top=1, pad_left=1, groups=64)
    assert inplace.deltas(q, True) == (6 * 64, 6 * 64)
    # 1x1 conv with Cout == Cin: less than one pixel of lag
    q = dict(q, k_h=1, k_w=1, pad_top=0, pad_left=0, groups=1)
    f, b = inplace.deltas(q, False)
    assert f == 63 and b == 63
    # 1x1 conv with Cout = 2 * Cin: the output must start a whole input's worth lower
    q = dict(q, in_c=32)
    f, _ = inplace.deltas(q, False)
    assert f == 25 * 5 * 32 + 31


# --------------------------------------------------------------------------
# The C kernels on the host
# --------------------------------------------------------------------------
I16, I32, P_I32, P_I8 = ct.c_int16, ct.c_int32, ct.POINTER(ct.c_int32), ct.POINTER(ct.c_int8)


class ConvParams(ct.Structure):
    _fields_ = [(n, I16) for n in "in_h in_w in_c out_h out_w out_c k_h k_w stride_h stride_w "
                                  "dil_h dil_w pad_top pad_left groups per_channel".split()] + \
        [(n, I32) for n in "input_offset output_offset act_min act_max".split()] + \
        [("multiplier", P_I32), ("shift", P_I8)]


ADD_FIELDS = inplace_kernels.ADD_FIELDS


class AddParams(ct.Structure):
    _fields_ = [(n, I32 * 6) for n in ("out_shape", "a_strides", "b_strides")] + \
        [(n, I32) for n in ("input1_offset", "input2_offset", "output_offset", "left_shift",
                            "input1_multiplier", "input1_shift", "input2_multiplier",
                            "input2_shift", "output_multiplier", "output_shift", "act_min", "act_max")]


class ConvAddParams(ct.Structure):
    _fields_ = [("conv", ct.POINTER(ConvParams))] + [(n, I32) for n in ADD_FIELDS] + \
        [("conv_is_input1", I32)]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler")
    out = tmp_path_factory.mktemp("inplace_lib") / "libinplace.so"
    srcs = [SRC / "inplace_s8.c", SRC / "conv_s8.c", SRC / "binary_s8.c"]
    subprocess.run([cc, *WARN, "-shared", "-fPIC", f"-I{INCLUDE}", *map(str, srcs), "-o", str(out)],
                   check=True, capture_output=True, text=True)
    lib = ct.CDLL(str(out))
    for fn in ("td_conv2d_s8", "td_depthwise_conv2d_s8"):
        getattr(lib, fn).argtypes = [ct.POINTER(ConvParams), P_I8, P_I8, P_I32, P_I8]
    for fn in ("td_conv2d_s8_overlap", "td_depthwise_conv2d_s8_overlap"):
        getattr(lib, fn).argtypes = [ct.POINTER(ConvParams), P_I8, P_I8, P_I32, P_I8, I32]
    lib.td_conv2d_add_s8.argtypes = [ct.POINTER(ConvAddParams), P_I8, P_I8, P_I32, P_I8, P_I8, I32]
    lib.td_add_s8.argtypes = [ct.POINTER(AddParams), P_I8, P_I8, P_I8]
    return lib


def _conv_struct(q: dict, nrng: np.random.Generator, keep: list) -> ConvParams:
    out_c = q["out_c"]
    w_scales = nrng.uniform(0.002, 0.02, out_c)
    p = qmath.conv_params(nrng.uniform(0.01, 0.1), int(nrng.integers(-128, 128)), w_scales,
                          nrng.uniform(0.02, 0.2), int(nrng.integers(-128, 128)), "relu"
                          if nrng.random() < 0.5 else None)
    mult = np.ascontiguousarray(p["multiplier"], np.int32)
    shift = np.ascontiguousarray(p["shift"], np.int8)
    assert np.array_equal(shift, p["shift"])
    keep += [mult, shift]
    s = ConvParams(**{k: v for k, v in q.items()}, per_channel=1,
                   input_offset=p["input_offset"], output_offset=p["output_offset"],
                   act_min=p["act_min"], act_max=p["act_max"])
    s.multiplier = mult.ctypes.data_as(P_I32)
    s.shift = shift.ctypes.data_as(P_I8)
    return s


def _ptr(a: np.ndarray, offset: int = 0):
    return ct.cast(a.ctypes.data + offset, P_I8)


def _weights(q: dict, depthwise: bool, nrng) -> np.ndarray:
    shape = (q["k_h"], q["k_w"], q["out_c"]) if depthwise else \
        (q["out_c"], q["k_h"], q["k_w"], q["in_c"] // q["groups"])
    return nrng.integers(-127, 128, size=shape, dtype=np.int8)


def _overlapped(n_in: int, n_out: int, shift: int, guard: int = 32):
    """An arena with the input at `base` and the output at base + shift."""
    lo = min(0, shift)
    hi = max(n_in, shift + n_out)
    size = hi - lo + 2 * guard
    base = guard - lo
    return np.full(size, 0x5A, np.int8), base, base + shift


@pytest.mark.parametrize("depthwise", [False, True])
def test_overlap_kernels_equal_the_portable_ones_at_the_tightest_overlap(lib, depthwise):
    rng, nrng = random.Random(11 + depthwise), np.random.default_rng(3 + depthwise)
    ref_fn = lib.td_depthwise_conv2d_s8 if depthwise else lib.td_conv2d_s8
    fn = lib.td_depthwise_conv2d_s8_overlap if depthwise else lib.td_conv2d_s8_overlap
    for _ in range(80):
        q = random_conv(rng, depthwise)
        keep: list = []
        p = _conv_struct(q, nrng, keep)
        n_in = q["in_h"] * q["in_w"] * q["in_c"]
        n_out = q["out_h"] * q["out_w"] * q["out_c"]
        x = nrng.integers(-128, 128, size=n_in, dtype=np.int8)
        w = _weights(q, depthwise, nrng)
        bias = nrng.integers(-5000, 5000, size=q["out_c"], dtype=np.int32)
        want = np.zeros(n_out, np.int8)
        ref_fn(ct.byref(p), _ptr(x), _ptr(w), bias.ctypes.data_as(P_I32), _ptr(want))
        f, b = inplace.deltas(q, depthwise)
        for backward, shift in ((0, -f), (1, b), (0, -n_out - 3), (1, n_in + 5)):
            arena, at_in, at_out = _overlapped(n_in, n_out, shift)
            arena[at_in:at_in + n_in] = x
            before = arena.copy()
            fn(ct.byref(p), _ptr(arena, at_in), _ptr(w), bias.ctypes.data_as(P_I32),
               _ptr(arena, at_out), backward)
            assert np.array_equal(arena[at_out:at_out + n_out], want), (q, backward, shift)
            outside = np.ones(arena.size, bool)
            outside[at_out:at_out + n_out] = False
            assert np.array_equal(arena[outside & (np.arange(arena.size) < min(at_in, at_out))],
                                  before[outside & (np.arange(arena.size) < min(at_in, at_out))])
            end = max(at_in + n_in, at_out + n_out)
            assert np.array_equal(arena[end:], before[end:])


def test_fused_conv_add_equals_conv_then_add(lib):
    rng, nrng = random.Random(21), np.random.default_rng(21)
    for trial in range(60):
        q = random_conv(rng, False)
        keep: list = []
        p = _conv_struct(q, nrng, keep)
        n_in = q["in_h"] * q["in_w"] * q["in_c"]
        n_out = q["out_h"] * q["out_w"] * q["out_c"]
        x = nrng.integers(-128, 128, size=n_in, dtype=np.int8)
        r = nrng.integers(-128, 128, size=n_out, dtype=np.int8)
        w = _weights(q, False, nrng)
        bias = nrng.integers(-5000, 5000, size=q["out_c"], dtype=np.int32)
        conv_out = np.zeros(n_out, np.int8)
        lib.td_conv2d_s8(ct.byref(p), _ptr(x), _ptr(w), bias.ctypes.data_as(P_I32), _ptr(conv_out))
        aq = qmath.add_params(nrng.uniform(0.01, 0.1), int(nrng.integers(-128, 128)),
                              nrng.uniform(0.01, 0.1), int(nrng.integers(-128, 128)),
                              nrng.uniform(0.02, 0.2), int(nrng.integers(-128, 128)),
                              "relu" if trial % 2 else None)
        conv_first = trial % 3 != 0
        shape = (I32 * 6)(*([1] * 5 + [n_out]))
        strides = (I32 * 6)(*([n_out] * 5 + [1]))
        ap = AddParams(shape, strides, strides, **{k: int(aq[k]) for k in ADD_FIELDS})
        want = np.zeros(n_out, np.int8)
        a, bb = (conv_out, r) if conv_first else (r, conv_out)
        lib.td_add_s8(ct.byref(ap), _ptr(a), _ptr(bb), _ptr(want))
        cap = ConvAddParams(ct.pointer(p), **{k: int(aq[k]) for k in ADD_FIELDS},
                            conv_is_input1=int(conv_first))
        f, b = inplace.deltas(q, False)
        # (a) the output over the residual, the input elsewhere
        buf = np.concatenate([x, r])
        lib.td_conv2d_add_s8(ct.byref(cap), _ptr(buf), _ptr(w), bias.ctypes.data_as(P_I32),
                             _ptr(buf, n_in), _ptr(buf, n_in), trial % 2)
        assert np.array_equal(buf[n_in:], want), q
        # (b) the output overlapping the conv's input at the tightest shift
        for backward, shift in ((0, -f), (1, b)):
            arena, at_in, at_out = _overlapped(n_in, n_out, shift)
            arena[at_in:at_in + n_in] = x
            res = r.copy()
            lib.td_conv2d_add_s8(ct.byref(cap), _ptr(arena, at_in), _ptr(w), bias.ctypes.data_as(P_I32),
                                 _ptr(res), _ptr(arena, at_out), backward)
            assert np.array_equal(arena[at_out:at_out + n_out], want), (q, backward)


# --------------------------------------------------------------------------
# A model with every in-place mode, on the emulated MCUs
# --------------------------------------------------------------------------
def inplace_model(path: Path) -> np.ndarray:
    """A small float CNN (NCHW ONNX) whose int8 build uses every in-place mode; returns
    calibration data."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []

    def w(name, shape, scale=0.3):
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    def conv(x, y, cin, cout, k, s=1, group=1, relu=True):
        nodes.append(helper.make_node("Conv", [x, w(y + "_w", (cout, cin // group, k, k)), w(y + "_b", (cout,), 0.1)],
                                      [y + "_pre" if relu else y], kernel_shape=[k, k], strides=[s, s],
                                      pads=[k // 2] * 4, group=group))
        if relu:
            nodes.append(helper.make_node("Relu", [y + "_pre"], [y]))

    conv("x", "c1", 3, 8, 3, 2)               # stride-2 conv over the (transposed) input
    conv("c1", "d1", 8, 8, 3, group=8)        # depthwise 3x3
    conv("d1", "p1", 8, 16, 1)                # 1x1, Cout > Cin
    conv("p1", "t", 16, 8, 1, relu=False)     # 1x1, Cout < Cin
    conv("t", "u", 8, 8, 3)
    conv("u", "v", 8, 8, 3, relu=False)
    nodes.append(helper.make_node("Add", ["t", "v"], ["a_pre"]))     # conv+add, t read again below:
    nodes.append(helper.make_node("Relu", ["a_pre"], ["a"]))         # so the add writes over u
    nodes.append(helper.make_node("Sigmoid", ["a"], ["sg"]))
    nodes.append(helper.make_node("Mul", ["sg", "t"], ["m"]))         # element-wise binary (sg * a would be
    # a SiLU, which the int8 pipeline fuses into one table: ops/elementwise_fn.py)
    nodes.append(helper.make_node("LeakyRelu", ["m"], ["lr"], alpha=0.1))  # element-wise unary
    nodes.append(helper.make_node("Add", ["lr", "t"], ["z"]))         # add of two activations
    conv("z", "e", 8, 8, 3)
    conv("e", "f", 8, 8, 3, relu=False)
    nodes.append(helper.make_node("Add", ["f", "z"], ["g_pre"]))      # conv+add over its residual
    nodes.append(helper.make_node("Relu", ["g_pre"], ["g"]))
    conv("g", "h", 8, 8, 3, relu=False)
    nodes.append(helper.make_node("Add", ["h", "g"], ["k"]))          # residual = the conv's input
    conv("k", "d2", 8, 8, 3, 2, group=8, relu=False)                 # depthwise stride 2
    nodes.append(helper.make_node("GlobalAveragePool", ["d2"], ["gp"]))
    nodes.append(helper.make_node("Flatten", ["gp"], ["fl"]))
    nodes.append(helper.make_node("Gemm", ["fl", w("fc_w", (4, 8)), w("fc_b", (4,), 0.1)], ["lg"], transB=1))
    nodes.append(helper.make_node("Softmax", ["lg"], ["y"], axis=1))
    graph = helper.make_graph(nodes, "inplace_modes",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 20, 20])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return rng.uniform(-1, 1, size=(16, 3, 20, 20)).astype(np.float32)


@pytest.fixture(scope="module")
def modes_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("inplace_model")
    calib = inplace_model(d / "modes.onnx")
    np.savez(d / "calib.npz", x=calib)
    return d / "modes.onnx", str(d / "calib.npz")


def _modes(report) -> set:
    return {l.get("inplace") for l in report["layers"] if l.get("inplace")}


@pytest.mark.parametrize("target", ["stm32f746", "rv32-zve32x"])
def test_every_inplace_mode_is_bit_exact_on_the_emulator(modes_model, target, monkeypatch):
    model, calib = modes_model
    # the portable in-place kernels (the board with the portable backend: no SIMD variants),
    # every overlap forced, both directions
    target = dataclasses.replace(load_target(target), backend="portable")
    monkeypatch.setattr(planner, "FORCE_OVERLAP", "alternate")
    result = api.compile(model, target=target, calib=calib)
    assert _modes(result.report) >= {"window (forward)", "window (backward)", "conv_add",
                                    "conv_add (forward)", "elementwise"} or \
        _modes(result.report) >= {"window (forward)", "window (backward)", "conv_add",
                                  "conv_add (backward)", "elementwise"}
    kinds = {(l["op"], l.get("inplace", "").split(" ")[0]) for l in result.report["layers"]}
    assert {("conv2d_s8", "window"), ("depthwise_conv2d_s8", "window"), ("mul_s8", "elementwise"),
            ("leaky_relu_s8", "elementwise"), ("add_s8", "elementwise"),
            ("conv2d_s8+add_s8", "conv_add")} <= kinds
    r = api.verify(model, target, calib=calib, samples=2)
    assert r.match, r.first_mismatch


@pytest.mark.parametrize("target", ["stm32f746", "rv32-zve32x"])
def test_default_plan_is_bit_exact_on_the_emulator(modes_model, target):
    """The default pipeline (target kernel variants, planner's own choice of overlaps)."""
    model, calib = modes_model
    r = api.verify(model, target, calib=calib, samples=2)
    assert r.match, r.first_mismatch
