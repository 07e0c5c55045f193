"""RISC-V kernel variants (tinydeploy/backends/riscv.py, runtime_c/src/riscv/)
bit-exact against the golden model ON THE EMULATOR.

The golden model equals the portable C kernels bit for bit (tests/
test_kernels_s8.py), so agreement with it is agreement with the portable
kernels.  Models are chains of int8 layers drawn by hypothesis (derandomized,
so every run is the same): channel counts that are not multiples of the
vector length, 1x1 images, padding on every side (asymmetric), strides 1 and
2, short and long kernel rows, residual adds (fused into the conv by the
in-place planner), fully connected heads, effective multipliers above 0.5
(right shift 0).  Every model runs on the vector target at VLEN 128 and 256
and on the scalar esp32-c3 target; VLEN-128 builds also run on a VLEN-512
machine (vector-length agnosticism).  On a mismatch, verify names the first
layer that differs.
"""
import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tinydeploy import api, qmath
from tinydeploy.backends import riscv as kernels_riscv

DATA = Path(__file__).resolve().parent / "data"
TARGETS = {  # name -> (built-in target, target file or None)
    "vlen128": ("rv32-zve32x", None),
    "vlen256": ("rv32-zve32x", DATA / "rv32-zve32x-vlen256.json"),
    "vlen128-on-512": ("rv32-zve32x", DATA / "rv32-zve32x-vlen128-on-512.json"),
    "esp32-c3": ("esp32-c3", None),
}
KERNEL_KINDS = {"conv2d_s8", "depthwise_conv2d_s8", "fully_connected_s8", "add_s8"}
VECTOR_ONLY_KINDS = {"avg_pool_s8", "max_pool_s8"}  # the scalar target keeps the portable pools
CHANNELS = st.sampled_from([1, 2, 3, 5, 7, 8, 13, 16, 17, 31, 33, 47, 64, 65, 70])


# --------------------------------------------------------------------------
# Small pre-quantized (QDQ) models: int8 layers with random int8 weights,
# per-channel weight scales, random activation scales and zero points
# --------------------------------------------------------------------------
class QDQ:
    """Builds an NCHW float graph whose every tensor goes through Q/DQ."""

    def __init__(self, rng: np.random.Generator, shape, zp_range=(-128, 127)):
        self.rng = rng
        self.nodes, self.inits = [], []
        self.n = 0
        self.zp_range = zp_range
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
        scale = float(rng.uniform(0.01, 0.05))
        self.x = self._qdq("x", scale, self._zp())
        self.shapes = {self.x: tuple(shape)}
        self.scales = {self.x: scale}
        self.zps = {self.x: self.last_zp}

    # -- helpers ----------------------------------------------------------
    def _name(self, hint):
        self.n += 1
        return f"{hint}{self.n}"

    def _zp(self):
        lo, hi = self.zp_range
        return int(self.rng.integers(lo, hi + 1))

    def _const(self, hint, arr):
        name = self._name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def _qdq(self, x, scale, zp):
        self.last_zp = zp
        s = self._const("s", np.array(scale, np.float32))
        z = self._const("z", np.array(zp, np.int8))
        q, d = self._name("q"), self._name("dq")
        self.nodes += [helper.make_node("QuantizeLinear", [x, s, z], [q]),
                       helper.make_node("DequantizeLinear", [q, s, z], [d])]
        return d

    def _weights(self, shape, per_channel=True, wmax=127):
        w = self.rng.integers(-wmax, wmax + 1, size=shape).astype(np.int8)
        n = shape[0]
        ws = (self.rng.uniform(0.5, 2.0, size=n) if per_channel else
              np.array(self.rng.uniform(0.5, 2.0))).astype(np.float32) * np.float32(0.004)
        wq = self._const("w", w)
        s = self._const("ws", ws)
        z = self._const("wz", np.zeros(ws.shape, np.int8))
        d = self._name("wd")
        attrs = {"axis": 0} if per_channel else {}
        self.nodes.append(helper.make_node("DequantizeLinear", [wq, s, z], [d], **attrs))
        return d, w, ws

    def _bias(self, x_scale, ws, n, per_channel=True):
        b = self.rng.integers(-3000, 3001, size=n).astype(np.int32)
        bs = (np.float32(x_scale) * ws).astype(np.float32)
        if not per_channel:
            bs = np.full(n, bs, np.float32) if bs.ndim == 0 else bs
        bq = self._const("b", b)
        s = self._const("bs", bs)
        z = self._const("bz", np.zeros(n, np.int32))
        d = self._name("bd")
        self.nodes.append(helper.make_node("DequantizeLinear", [bq, s, z], [d], axis=0))
        return d

    def _out(self, y, x_scale, ws, k_len, relu, wmax=127, hot=False):
        # output scale around the accumulator's spread, times a wide random factor;
        # hot: effective multipliers around 0.25..2 (right shifts of 0 and 1)
        if hot:
            scale = float(x_scale * float(np.mean(ws)) * self.rng.uniform(0.5, 4.0))
        else:
            sigma = math.sqrt(k_len) * (wmax / math.sqrt(3)) * float(np.mean(ws)) * 60.0 * x_scale
            scale = float(sigma / 40.0 * 2.0 ** self.rng.uniform(-2.5, 3.0))
        if relu:
            r = self._name("relu")
            self.nodes.append(helper.make_node("Relu", [y], [r]))
            y = r
        out = self._qdq(y, scale, self._zp())
        return out, scale

    # -- layers -----------------------------------------------------------
    def conv(self, x, out_c, k=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), group=1, relu=False,
             wmax=127, hot=False):
        n, c, h, w = self.shapes[x]
        kh, kw = k
        dw, wv, ws = self._weights((out_c, c // group, kh, kw), wmax=wmax)
        b = self._bias(self.scales[x], ws, out_c)
        y = self._name("conv")
        self.nodes.append(helper.make_node("Conv", [x, dw, b], [y], kernel_shape=[kh, kw],
                                           strides=list(stride), pads=list(pads), group=group))
        oh = (h + pads[0] + pads[2] - kh) // stride[0] + 1
        ow = (w + pads[1] + pads[3] - kw) // stride[1] + 1
        out, scale = self._out(y, self.scales[x], ws, kh * kw * c // group, relu, wmax, hot)
        self.shapes[out], self.scales[out] = (n, out_c, oh, ow), scale
        self.zps[out] = self.last_zp
        return out

    def depthwise(self, x, k=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), relu=False, wmax=127,
                  hot=False):
        return self.conv(x, self.shapes[x][1], k, stride, pads, group=self.shapes[x][1], relu=relu,
                         wmax=wmax, hot=hot)

    def fc(self, x, out_f, per_channel=False, relu=False, wmax=127, hot=False):
        shape = self.shapes[x]
        n_in = int(np.prod(shape[1:]))
        if len(shape) != 2:
            f = self._name("flat")
            self.nodes.append(helper.make_node("Flatten", [x], [f], axis=1))
            x2 = f
        else:
            x2 = x
        dw, wv, ws = self._weights((out_f, n_in), per_channel, wmax)
        b = self._bias(self.scales[x], ws if per_channel else np.full(out_f, ws, np.float32), out_f)
        y = self._name("fc")
        self.nodes.append(helper.make_node("Gemm", [x2, dw, b], [y], transB=1))
        out, scale = self._out(y, self.scales[x], np.atleast_1d(ws), n_in, relu, wmax, hot)
        self.shapes[out], self.scales[out] = (1, out_f), scale
        self.zps[out] = self.last_zp
        return out

    def add(self, a, b, relu=False):
        y = self._name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [y]))
        if relu:
            r = self._name("relu")
            self.nodes.append(helper.make_node("Relu", [y], [r]))
            y = r
        scale = (self.scales[a] + self.scales[b]) * float(2.0 ** self.rng.uniform(-1.0, 1.0))
        out = self._qdq(y, scale, self._zp())
        self.shapes[out], self.scales[out] = self.shapes[a], scale
        self.zps[out] = self.last_zp
        return out

    def pool(self, x, kind, k, stride, pads=(0, 0, 0, 0), count_include_pad=0):
        n, c, h, w = self.shapes[x]
        y = self._name("pool")
        attrs = dict(kernel_shape=list(k), strides=list(stride), pads=list(pads))
        if kind == "avg":
            attrs["count_include_pad"] = count_include_pad
        self.nodes.append(helper.make_node("AveragePool" if kind == "avg" else "MaxPool", [x], [y],
                                           **attrs))
        out = self._qdq(y, self.scales[x], self.zps[x])
        oh = (h + pads[0] + pads[2] - k[0]) // stride[0] + 1
        ow = (w + pads[1] + pads[3] - k[1]) // stride[1] + 1
        self.shapes[out], self.scales[out] = (n, c, oh, ow), self.scales[x]
        self.zps[out] = self.zps[x]
        return out

    def save(self, path, outputs):
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, list(self.shapes[o]))
                for o in outputs]
        graph = helper.make_graph(self.nodes, "g", [self.input], outs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        onnx.save(model, str(path))
        return path


# --------------------------------------------------------------------------
# Random layer chains
# --------------------------------------------------------------------------
def _out(size, k, s, p0, p1):
    return (size + p0 + p1 - k) // s + 1


@st.composite
def chains(draw):
    """(input NCHW shape, [layer spec]); every intermediate shape is valid."""
    first = (1, draw(st.sampled_from([1, 2, 3, 4, 8, 9])), draw(st.integers(1, 11)),
             draw(st.integers(1, 11)))
    shape, specs = first, []
    for _ in range(draw(st.integers(2, 5))):
        _, c, h, w = shape
        op = draw(st.sampled_from(["conv", "conv", "pointwise", "depthwise", "residual", "pool"]))
        hot = draw(st.integers(0, 5)) == 0
        spec = dict(op=op, relu=draw(st.booleans()), hot=hot,
                    wmax=3 if hot else draw(st.sampled_from([127, 127, 20])))
        if op == "residual":
            specs.append(spec)
            continue
        if op == "pool":
            k = (draw(st.integers(1, min(h, 3) + 1)), draw(st.integers(1, min(w, 3) + 1)))
            stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            pads = tuple(draw(st.integers(0, kk - 1)) for kk in (k[0], k[1], k[0], k[1]))
            oh, ow = _out(h, k[0], stride[0], pads[0], pads[2]), _out(w, k[1], stride[1], pads[1], pads[3])
            if oh < 1 or ow < 1 or k[0] > h + pads[0] + pads[2] or k[1] > w + pads[1] + pads[3]:
                continue
            spec.update(kind=draw(st.sampled_from(["avg", "max"])), k=k, stride=stride, pads=pads,
                        include=draw(st.integers(0, 1)))
            specs.append(spec)
            shape = (1, c, oh, ow)
            continue
        if op == "depthwise" and c == 1:
            spec["op"] = op = "conv"
        k = (1, 1) if op == "pointwise" else (draw(st.sampled_from([1, 2, 3, 5])),
                                              draw(st.sampled_from([1, 2, 3, 4])))
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        pads = tuple(draw(st.integers(0, kk - 1)) for kk in (k[0], k[1], k[0], k[1]))
        oh, ow = _out(h, k[0], stride[0], pads[0], pads[2]), _out(w, k[1], stride[1], pads[1], pads[3])
        if oh < 1 or ow < 1:
            k, stride, pads, oh, ow = (1, 1), (1, 1), (0, 0, 0, 0), h, w
        out_c = c if op == "depthwise" else draw(CHANNELS)
        spec.update(k=k, stride=stride, pads=pads, out_c=out_c)
        specs.append(spec)
        shape = (1, out_c, oh, ow)
    if draw(st.booleans()):
        specs.append(dict(op="fc", out_c=draw(CHANNELS), per_channel=draw(st.booleans()),
                          relu=draw(st.booleans())))
    return first, specs


def build(path, first, specs, seed):
    b = QDQ(np.random.default_rng(seed), first)
    x = b.x
    for s in specs:
        if s["op"] in ("conv", "pointwise"):
            x = b.conv(x, s["out_c"], s["k"], s["stride"], s["pads"], relu=s["relu"],
                       wmax=s["wmax"], hot=s["hot"])
        elif s["op"] == "depthwise":
            x = b.depthwise(x, s["k"], s["stride"], s["pads"], relu=s["relu"], wmax=s["wmax"],
                            hot=s["hot"])
        elif s["op"] == "pool":
            x = b.pool(x, s["kind"], s["k"], s["stride"], s["pads"], s["include"])
        elif s["op"] == "residual":
            y = b.conv(x, b.shapes[x][1], (3, 3), (1, 1), (1, 1, 1, 1), wmax=s["wmax"], hot=s["hot"])
            x = b.add(y, x, relu=s["relu"])
        else:
            x = b.fc(x, s["out_c"], per_channel=s["per_channel"], relu=s["relu"])
    return b.save(path, [x])


def check(path, target, **compile_options):
    """Bit-exact on the emulator, and the RISC-V variants really were used."""
    name, target_file = TARGETS[target]
    opts = dict(compile_options, **({"target_file": str(target_file)} if target_file else {}))
    res = api.verify(str(path), name, samples=2, **opts)
    assert res.match, f"{target}: first mismatching layer {res.first_mismatch}"
    report = api.compile(str(path), target=name, **opts).report
    kinds = KERNEL_KINDS | (VECTOR_ONLY_KINDS if name != "esp32-c3" else set())
    for layer in report["layers"]:
        if layer["op"].split("+")[0] in kinds:
            assert layer["variant"].startswith(("rv_", "rvv_")), (target, layer["name"], layer["variant"])
    return report


@pytest.mark.parametrize("target", list(TARGETS))
@settings(deadline=None, derandomize=True, max_examples=8, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(chain=chains())
def test_random_chains_bit_exact(target, chain, tmp_path_factory):
    first, specs = chain
    path = tmp_path_factory.mktemp("chain") / "m.onnx"
    build(path, first, specs, seed=len(specs) * 1000 + first[1] * 100 + first[2])
    check(path, target)


# --------------------------------------------------------------------------
# Fixed edge cases (one model each, every target)
# --------------------------------------------------------------------------
def _edge_model(path):
    """Padding on every side with all-border windows, a 1x1 image, channel
    counts around the vector length at VLEN 128 and 256, a depthwise stride 2
    with asymmetric padding, a residual block and an FC head."""
    b = QDQ(np.random.default_rng(11), (1, 3, 5, 6))
    x = b.conv(b.x, 33, (3, 3), (1, 1), (2, 1, 2, 2), relu=True)          # pads on every side
    x = b.depthwise(x, (3, 3), (2, 2), (1, 0, 1, 2))                      # strided, asymmetric
    x = b.pool(x, "max", (2, 3), (1, 1), (1, 1, 0, 1))                     # padded max pool
    x = b.pool(x, "avg", (3, 2), (1, 1), (1, 0, 1, 1), count_include_pad=1)
    x = b.conv(x, 65, (1, 1), (1, 1), (0, 0, 0, 0))                       # > VLMAX(e32,m8) at 256
    y = b.conv(x, 65, (3, 3), (1, 1), (1, 1, 1, 1))
    x = b.add(y, x, relu=True)                                            # conv + add fused
    x = b.conv(x, 17, (3, 3), (2, 2), (0, 0, 0, 0))                       # -> 1x1 image
    x = b.depthwise(x, (3, 3), (1, 1), (1, 1, 1, 1), hot=True, wmax=3)    # 1x1, right shift 0
    x = b.fc(x, 10, per_channel=True)
    return b.save(path, [x])


@pytest.mark.parametrize("target", list(TARGETS))
def test_edge_cases_bit_exact(target, tmp_path):
    check(_edge_model(tmp_path / "edge.onnx"), target)


def _few_channels_model(path):
    """Few output channels on wide rows: the vector conv puts its lanes over
    output pixels (td_rvv_conv_px_s8) when no output overlaps its input."""
    b = QDQ(np.random.default_rng(12), (1, 3, 9, 70))
    x = b.conv(b.x, 5, (3, 3), (2, 1), (0, 0, 1, 1), relu=True)      # right/bottom padding only
    x = b.conv(x, 4, (1, 1), (1, 1), (0, 0, 0, 0))                   # 1x1, 4 channels
    x = b.conv(x, 7, (3, 3), (1, 2), (1, 1, 1, 1), hot=True, wmax=3)  # right shift 0
    return b.save(path, [x])


@pytest.mark.parametrize("target", ["vlen128", "vlen256", "vlen128-on-512", "esp32-c3"])
@pytest.mark.parametrize("inplace", [False, True])
def test_few_channels_wide_rows(target, inplace, tmp_path):
    report = check(_few_channels_model(tmp_path / "few.onnx"), target, inplace=inplace)
    if target.startswith("vlen") and not inplace:
        assert any(l["kernel"] == "td_rvv_conv_px_s8" for l in report["layers"])


# --------------------------------------------------------------------------
# The MLPerf Tiny models (every layer's variant; the speed figures are
# checked by the benchmark tests)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["kws", "resnet8", "vww", "ad"])
def test_mlperf_vlen256(model):
    from conftest import model_path
    check(model_path(model, "int8_qdq.onnx"), "vlen256")


# --------------------------------------------------------------------------
# Hygiene of the RISC-V sources (the host hygiene tests do not see them)
# --------------------------------------------------------------------------
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror"]


@pytest.mark.parametrize("target", ["esp32-c3", "vlen128"])
def test_riscv_library_compiles_strictly_at_every_level(target, tmp_path):
    import shutil
    import subprocess
    from conftest import model_path
    from tinydeploy import targets
    name, _ = TARGETS[target]
    tgt = targets.load_target(name)
    lib = tmp_path / "lib"
    api.compile(str(model_path("kws", "int8_qdq.onnx")), target=name, out_dir=lib)
    march = [f for f in tgt.cflags if f.startswith(("-march", "-mabi", "--specs"))]
    sources = sorted(str(p) for p in lib.glob("*.c"))
    for opt in ("-O0", "-O2", "-Os"):
        proc = subprocess.run([tgt.cc, *march, *STRICT, opt, "-I", str(lib), "-c", *sources],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, f"{opt}:\n{proc.stderr[-3000:]}"
    if shutil.which("cppcheck"):
        ours = [str(lib / "net.c")] + [str(p) for p in lib.glob("td_riscv_*.c")]
        proc = subprocess.run(["cppcheck", "--std=c99", "--enable=warning,style,performance,portability",
                               "--error-exitcode=1", "--inline-suppr", "-q", "-D__riscv",
                               "-D__riscv_xlen=32", "-D__riscv_mul",  # what the core guard checks
                               "-D__GNUC__", *(["-D__riscv_vector"] if "rvv" in tgt.features else []),
                               "-I", str(lib), *ours], capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr[-3000:]


# --------------------------------------------------------------------------
# Host-side checks of the arithmetic the kernels rely on
# --------------------------------------------------------------------------
def _rv_requant(acc, row, lo=-128, hi=127):
    """numpy model of rv_requant() in rv_scalar.c (int32 wrap-around)."""
    mult, lsh, rsh, hz, nz = (np.int64(v) for v in row)
    x = qmath.wrap32(acc.astype(np.int64) << lsh)
    prod = x * mult
    y = qmath.wrap32((prod >> 32) + ((prod & 0xFFFFFFFF) >> 31))
    z = qmath.wrap32(y + hz + ((y >> 31) & nz)) >> rsh
    return np.clip(z, lo, hi)


@settings(deadline=None, max_examples=300)
@given(mult=st.integers(0, 2 ** 31 - 1), shift=st.integers(-31, 8), zp=st.integers(-128, 127),
       bound=st.integers(0, 2 ** 30), seed=st.integers(0, 2 ** 32 - 1))
def test_scalar_requantization_form_is_exact(mult, shift, zp, bound, seed):
    rows = kernels_riscv.rv_rq_rows(np.array([bound]), np.array([mult]), np.array([shift]), zp)
    if rows is None:  # not provably exact: the generator keeps the portable kernel
        return
    rng = np.random.default_rng(seed)
    acc = rng.integers(-bound, bound + 1, size=200, dtype=np.int64)
    acc = np.concatenate([acc, [-bound, bound, 0, -1, 1]])
    want = np.clip(qmath.mbqm(acc, mult, shift) + zp, -128, 127)
    assert np.array_equal(_rv_requant(acc, rows[0]), want)


def test_vector_rounding_identities():
    """SRDHM == round-half-up of a*b/2^31 (vsmul, vxrm=rnu) and RDBPOT ==
    sign * round-half-up(|x| / 2^e) (vssrl on the magnitude), exhaustively
    around the ties."""
    rng = np.random.default_rng(5)
    a = np.concatenate([rng.integers(-2 ** 31, 2 ** 31, 5000), [-2 ** 31, 2 ** 31 - 1, 0, -1, 1]])
    b = np.concatenate([rng.integers(-2 ** 31, 2 ** 31, 5000), [-2 ** 31, 1, 2 ** 30, -2 ** 30, 3]])
    ab = a.astype(object) * b.astype(object)
    vsmul = np.array([min((p + (1 << 30)) >> 31, 2 ** 31 - 1) for p in ab], np.int64)
    assert np.array_equal(vsmul, qmath.srdhm(a, b))
    for e in range(0, 32):
        x = np.concatenate([rng.integers(-2 ** 31, 2 ** 31, 2000),
                            [k * (1 << e) + (1 << e >> 1) for k in range(-5, 5)],
                            [-2 ** 31, 2 ** 31 - 1]]).astype(np.int64)
        mag = np.abs(x)
        rnu = (mag + ((1 << e) >> 1)) >> e if e else mag
        got = np.where(x < 0, -rnu, rnu)
        assert np.array_equal(got, qmath.rdbpot(x, e)), e


def test_vlen_agnostic_target_file_is_consistent():
    data = json.loads((DATA / "rv32-zve32x-vlen128-on-512.json").read_text())
    assert data["vlen"] == 128 and "vlen=512" in data["emulator"]["cpu"]


# --------------------------------------------------------------------------
# The geometry helpers: one C copy (td_kernels_riscv.h), one Python copy
# --------------------------------------------------------------------------
HELPERS_MAIN = r"""
#include <stdio.h>
#include "td_kernels_riscv.h"

static int8_t buf[1 << 16]; /* input and output lie inside */

typedef struct {
    int16_t in_w, in_c, out_w, out_c, k_h, k_w, stride_h, stride_w, pad_top, pad_left;
} geom;
TD_RV_TILE_OVERLAPS(tile_overlaps, geom, 1)

int main(void)
{
    char kind;
    while (scanf(" %c", &kind) == 1) {
        if (kind == 'I') {
            int in_w, k_w, stride, pad, out_w, lo, hi;
            if (scanf("%d %d %d %d %d", &in_w, &k_w, &stride, &pad, &out_w) != 5) {
                return 1;
            }
            td_rv_interior(in_w, k_w, stride, pad, out_w, &lo, &hi);
            printf("%d %d\n", lo, hi);
        } else {
            int g[10], in_off, out_off, oy, ox0, n, i;
            geom p;
            for (i = 0; i < 10; ++i) {
                if (scanf("%d", &g[i]) != 1) {
                    return 1;
                }
            }
            if (scanf("%d %d %d %d %d", &in_off, &out_off, &oy, &ox0, &n) != 5) {
                return 1;
            }
            p.in_w = (int16_t)g[0];
            p.in_c = (int16_t)g[1];
            p.out_w = (int16_t)g[2];
            p.out_c = (int16_t)g[3];
            p.k_h = (int16_t)g[4];
            p.k_w = (int16_t)g[5];
            p.stride_h = (int16_t)g[6];
            p.stride_w = (int16_t)g[7];
            p.pad_top = (int16_t)g[8];
            p.pad_left = (int16_t)g[9];
            printf("%d\n", tile_overlaps(&p, buf + in_off, buf + out_off, oy, ox0, n));
        }
    }
    return 0;
}
"""


def test_geometry_helpers_python_equals_c(tmp_path):
    """kernels_riscv._interior / tile_overlaps against td_rv_interior /
    TD_RV_TILE_OVERLAPS (a host program) on many geometries."""
    import shutil
    import subprocess
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler")
    include = Path(__file__).resolve().parents[1] / "runtime_c" / "include"
    (tmp_path / "main.c").write_text(HELPERS_MAIN)
    exe = tmp_path / "helpers"
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror",
                    "-I", str(include), str(tmp_path / "main.c"), "-o", str(exe)], check=True)
    rng = np.random.default_rng(13)
    lines, want = [], []
    for _ in range(3000):
        in_w, k_w, stride = int(rng.integers(1, 40)), int(rng.integers(1, 8)), int(rng.integers(1, 5))
        pad = int(rng.integers(0, k_w + 1))
        natural = max((in_w + 2 * pad - k_w) // stride + 1, 1)
        out_w = natural if rng.random() < 0.7 else int(rng.integers(1, 45))
        lines.append(f"I {in_w} {k_w} {stride} {pad} {out_w}")
        want.append("%d %d" % kernels_riscv._interior(in_w, k_w, stride, pad, out_w))
    for _ in range(3000):
        k_h, k_w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        geo = dict(in_h=int(rng.integers(k_h, 20)), in_w=int(rng.integers(k_w, 20)),
                   in_c=int(rng.integers(1, 20)), out_c=int(rng.integers(1, 20)), k_h=k_h, k_w=k_w,
                   stride_h=int(rng.integers(1, 3)), stride_w=int(rng.integers(1, 3)),
                   pad_top=int(rng.integers(0, k_h)), pad_left=int(rng.integers(0, k_w)))
        geo["out_h"] = (geo["in_h"] + 2 * geo["pad_top"] - k_h) // geo["stride_h"] + 1
        geo["out_w"] = (geo["in_w"] + 2 * geo["pad_left"] - k_w) // geo["stride_w"] + 1
        lo, hi = kernels_riscv._interior(geo["in_w"], k_w, geo["stride_w"], geo["pad_left"],
                                         geo["out_w"])
        if lo == hi:
            continue
        in_bytes = geo["in_h"] * geo["in_w"] * geo["in_c"]
        in_off = int(rng.integers(16384, 20480))
        # outputs from well below to well above the input, overlapping it often
        out_off = in_off + int(rng.integers(-in_bytes, in_bytes + 1))
        oy, ox0 = int(rng.integers(0, geo["out_h"])), int(rng.integers(lo, hi))
        n = int(rng.integers(1, hi - ox0 + 1))
        names = ("in_w", "in_c", "out_w", "out_c", "k_h", "k_w", "stride_h", "stride_w", "pad_top",
                 "pad_left")
        lines.append("O " + " ".join(str(geo[k]) for k in names) + f" {in_off} {out_off} {oy} {ox0} {n}")
        want.append(str(int(kernels_riscv.tile_overlaps(geo, in_off, out_off, oy, ox0, n))))
    got = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                         check=True).stdout.split("\n")[:-1]
    assert len(got) == len(want)
    bad = [(l, g, w) for l, g, w in zip(lines, got, want) if g != w]
    assert not bad, bad[:5]
    overlaps = [w for l, w in zip(lines, want) if l.startswith("O")]
    assert 0.1 < overlaps.count("1") / len(overlaps) < 0.9  # both answers are exercised
