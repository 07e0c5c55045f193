"""RISC-V kernel variants (tinydeploy/kernels_riscv.py, runtime_c/src/riscv/)
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
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tinydeploy import api, kernels_riscv, qmath, verify
from rv_models import QDQ

DATA = Path(__file__).resolve().parent / "data"
TARGETS = {  # name -> (built-in target, target file or None)
    "vlen128": ("rv32-zve32x", None),
    "vlen256": ("rv32-zve32x", DATA / "rv32-zve32x-vlen256.json"),
    "vlen128-on-512": ("rv32-zve32x", DATA / "rv32-zve32x-vlen128-on-512.json"),
    "esp32-c3": ("esp32-c3", None),
}
KERNEL_KINDS = {"conv2d_s8", "depthwise_conv2d_s8", "fully_connected_s8", "add_s8"}
CHANNELS = st.sampled_from([1, 2, 3, 5, 7, 8, 13, 16, 17, 31, 33, 47, 64, 65, 70])


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
        op = draw(st.sampled_from(["conv", "conv", "pointwise", "depthwise", "residual"]))
        hot = draw(st.integers(0, 5)) == 0
        spec = dict(op=op, relu=draw(st.booleans()), hot=hot,
                    wmax=3 if hot else draw(st.sampled_from([127, 127, 20])))
        if op == "residual":
            specs.append(spec)
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
    res = verify.verify(str(path), name, samples=2, **opts)
    assert res.match, f"{target}: first mismatching layer {res.first_mismatch}"
    report = api.compile(str(path), target=name, **opts).report
    for layer in report["layers"]:
        if layer["op"].split("+")[0] in KERNEL_KINDS:
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
