"""Arm kernel variants (DSP extension, Helium) against the golden model, on the emulators.

Every optimized kernel must be bit-exact with the portable kernel; the golden
model equals the portable C kernels (tests/test_kernels_s8.py), so each
variant is checked against the golden model on QEMU: cortex-m4
(nucleo-l4r5zi) and cortex-m7 (stm32f746) for the DSP kernels, cortex-m55
for Helium.  One firmware per model runs several random input samples in
"dump" mode and every layer's output is compared, so one chain of layers
checks many shapes at once.

Models are small QDQ ONNX chains built here with onnx.helper from a seeded
generator: random int8 weights and int32 biases, random scales, extreme zero
points and multipliers (some > 1), channels that are not multiples of 4 or
16, 1x1 images, strides 1 and 2, padding on every side.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import api, golden, inplace, on_target, planner
from tinydeploy.backends import arm as kernels_arm
from conftest import random_requant_channels

DSP_TARGETS = ["nucleo-l4r5zi", "stm32f746"]
MVE_TARGETS = ["cortex-m55"]


# --------------------------------------------------------------------------
# QDQ model builder
# --------------------------------------------------------------------------
class Chain:
    """A chain of quantized layers on an NCHW float graph with QDQ pairs."""

    def __init__(self, shape, rng: np.random.Generator, name: str = "arm"):
        self.rng = rng
        self.nodes, self.inits = [], []
        self.n = 0
        self.shape = list(shape)  # NCHW (or [1, F])
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
        self.cur = self._qdq("x", self._scale(), self._zp())
        self.cur_q = self.last_q
        self.name = name
        self.saved = {}

    # -- helpers -----------------------------------------------------------
    def _id(self, hint):
        self.n += 1
        return f"{hint}{self.n}"

    def _const(self, hint, arr):
        name = self._id(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def _scale(self, lo=0.005, hi=0.1):
        return float(np.exp(self.rng.uniform(np.log(lo), np.log(hi))))

    def _zp(self):
        r = self.rng.random()
        if r < 0.25:
            return -128
        if r < 0.4:
            return 127
        return int(self.rng.integers(-128, 128))

    def _qdq(self, x, scale, zp):
        s = self._const("s", np.float32(scale))
        z = self._const("z", np.int8(zp))
        q, d = self._id("q"), self._id("d")
        self.nodes += [helper.make_node("QuantizeLinear", [x, s, z], [q]),
                       helper.make_node("DequantizeLinear", [q, s, z], [d])]
        self.last_q = (scale, zp)
        return d

    def _weights(self, shape, axis0):
        """int8 weights (symmetric, per output channel) behind a DequantizeLinear."""
        w = self.rng.integers(-127, 128, size=shape).astype(np.int8)
        if self.rng.random() < 0.3:  # sparse / dead output channels happen
            w[self.rng.integers(0, shape[axis0])] = 0
        scales = np.exp(self.rng.uniform(np.log(1e-3), np.log(3e-2), size=shape[axis0])).astype(np.float32)
        wq, s = self._const("w", w), self._const("ws", scales)
        z = self._const("wz", np.zeros(shape[axis0], np.int8))
        d = self._id("wd")
        self.nodes.append(helper.make_node("DequantizeLinear", [wq, s, z], [d], axis=axis0))
        return d, scales

    def _bias(self, n, in_scale, w_scales):
        b = self.rng.integers(-3000, 3000, size=n).astype(np.int32)
        if self.rng.random() < 0.2:
            b[self.rng.integers(0, n)] = int(self.rng.integers(-2**20, 2**20))
        bs = (np.float32(in_scale) * w_scales).astype(np.float32)
        bq, s = self._const("b", b), self._const("bs", bs)
        z = self._const("bz", np.zeros(n, np.int32))
        d = self._id("bd")
        self.nodes.append(helper.make_node("DequantizeLinear", [bq, s, z], [d], axis=0))
        return d

    def _out_scale(self, in_scale, w_scales, k, big=False):
        """An output scale giving multipliers from tiny to > 1 (left shifts)."""
        typical = float(in_scale * np.median(w_scales) * np.sqrt(k) * 30)
        if big:
            return typical * float(self.rng.uniform(0.002, 0.02))
        return typical * float(np.exp(self.rng.uniform(np.log(0.2), np.log(30))))

    def _finish(self, y, in_scale, w_scales, k, act, big=False):
        if act == "relu":
            r = self._id("relu")
            self.nodes.append(helper.make_node("Relu", [y], [r]))
            y = r
        elif act == "relu6":
            r = self._id("clip")
            lo, hi = self._const("lo", np.float32(0)), self._const("hi", np.float32(6))
            self.nodes.append(helper.make_node("Clip", [y, lo, hi], [r]))
            y = r
        scale = self._out_scale(in_scale, w_scales, k, big)
        zp = -128 if act and self.rng.random() < 0.6 else self._zp()
        self.cur = self._qdq(y, scale, zp)
        self.cur_q = (scale, zp)

    # -- layers ------------------------------------------------------------
    def conv(self, out_c, k=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), group=1, act=None,
             big=False):
        n, c, h, w = self.shape
        kh, kw = k
        cin_g = c // group
        wd, ws = self._weights((out_c, cin_g, kh, kw), 0)
        b = self._bias(out_c, self.cur_q[0], ws)
        y = self._id("conv")
        self.nodes.append(helper.make_node("Conv", [self.cur, wd, b], [y], kernel_shape=[kh, kw],
                                           strides=list(stride), pads=[pads[0], pads[1], pads[2], pads[3]],
                                           group=group))
        oh = (h + pads[0] + pads[2] - kh) // stride[0] + 1
        ow = (w + pads[1] + pads[3] - kw) // stride[1] + 1
        self.shape = [n, out_c, oh, ow]
        self._finish(y, self.cur_q[0], ws, cin_g * kh * kw, act, big)
        return self

    def depthwise(self, k=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), act=None):
        return self.conv(self.shape[1], k, stride, pads, group=self.shape[1], act=act)

    def fc(self, out_f, act=None):
        if len(self.shape) != 2:
            f = self._id("flat")
            self.nodes.append(helper.make_node("Flatten", [self.cur], [f], axis=1))
            self.cur = f
            self.shape = [1, int(np.prod(self.shape[1:]))]
        n_in = self.shape[1]
        wd, ws = self._weights((out_f, n_in), 0)
        b = self._bias(out_f, self.cur_q[0], ws)
        y = self._id("fc")
        self.nodes.append(helper.make_node("Gemm", [self.cur, wd, b], [y], transB=1))
        self.shape = [1, out_f]
        self._finish(y, self.cur_q[0], ws, n_in, act)
        return self

    def save(self, key):
        self.saved[key] = (self.cur, self.cur_q, list(self.shape))
        return self

    def add(self, key, act=None, narrow=False, swap=False):
        """cur + the saved tensor (swap: the saved tensor as the Add's first input); narrow:
        an output scale below the inputs' (saturation)."""
        other, oq, oshape = self.saved[key]
        assert oshape == self.shape
        y = self._id("add")
        self.nodes.append(helper.make_node("Add", [other, self.cur] if swap else [self.cur, other], [y]))
        if act == "relu":
            r = self._id("relu")
            self.nodes.append(helper.make_node("Relu", [y], [r]))
            y = r
        scale = max(self.cur_q[0], oq[0]) * float(self.rng.uniform(0.1, 0.3) if narrow else
                                                  self.rng.uniform(0.8, 2.5))
        self.cur = self._qdq(y, scale, self._zp())
        self.cur_q = self.last_q
        return self

    def avgpool(self, k, stride, pads=(0, 0, 0, 0)):
        n, c, h, w = self.shape
        y = self._id("pool")
        self.nodes.append(helper.make_node("AveragePool", [self.cur], [y], kernel_shape=list(k),
                                           strides=list(stride), pads=list(pads)))
        self.shape = [n, c, (h + pads[0] + pads[2] - k[0]) // stride[0] + 1,
                      (w + pads[1] + pads[3] - k[1]) // stride[1] + 1]
        self.cur = self._qdq(y, self.cur_q[0], self.cur_q[1])
        return self

    def global_avgpool(self):
        n, c, h, w = self.shape
        y = self._id("gap")
        self.nodes.append(helper.make_node("GlobalAveragePool", [self.cur], [y]))
        self.shape = [n, c, 1, 1]
        self.cur = self._qdq(y, self._scale(), self._zp())
        self.cur_q = self.last_q
        return self

    def maxpool(self, k=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0), clip=None):
        """MaxPool (then Clip(0, clip) if given); the output keeps the input's quantization."""
        n, c, h, w = self.shape
        y = self._id("mp")
        self.nodes.append(helper.make_node("MaxPool", [self.cur], [y], kernel_shape=list(k),
                                           strides=list(stride), pads=list(pads)))
        if clip is not None:
            r = self._id("clip")
            lo, hi = self._const("lo", np.float32(0)), self._const("hi", np.float32(clip))
            self.nodes.append(helper.make_node("Clip", [y, lo, hi], [r]))
            y = r
        self.shape = [n, c, (h + pads[0] + pads[2] - k[0]) // stride[0] + 1,
                      (w + pads[1] + pads[3] - k[1]) // stride[1] + 1]
        self.cur = self._qdq(y, *self.cur_q)
        self.cur_q = self.last_q
        return self

    def model(self) -> onnx.ModelProto:
        out = helper.make_tensor_value_info(self.cur, TensorProto.FLOAT, None)
        graph = helper.make_graph(self.nodes, self.name, [self.input], [out], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        return m


# --------------------------------------------------------------------------
# Running a chain on the emulator, every layer compared
# --------------------------------------------------------------------------
def check_on_target(model: onnx.ModelProto, target: str, samples: int = 3, seed: int = 0,
                    want_report: bool = False, **opts):
    """Compile for `target`, run `samples` random inputs on its emulator with
    every layer's output dumped; assert each equals the golden model.
    Returns {layer name: variant} (and the report's layers if want_report)."""
    with tempfile.TemporaryDirectory(prefix="td-arm-test-") as tmp:
        work = Path(tmp)
        path = work / "m.onnx"
        onnx.save(model, str(path))
        opts.setdefault("kernel_scratch", "any")
        toolchain = opts.pop("toolchain", "gcc")
        result = api.compile(path, target=target, out_dir=work / "lib", **opts)
        rng = np.random.default_rng(seed)
        shape = result.io["input"]["shape"]
        xq = rng.integers(-128, 128, size=(samples,) + tuple(shape[1:]), dtype=np.int8)
        _, res = on_target.build_and_run(result, xq, work, mode="dump", toolchain=toolchain)
        plan = result.plan
        layers = [op for op in result.graph.ops
                  if op.kind != "reshape" and op.name not in plan.fused_into]
        for s in range(samples):
            values = golden.run_sample(result.graph, xq[s], keep_all=True)
            for i, op in enumerate(layers):
                want = values[inplace.layer_output(op, plan.mode(op.name))].reshape(-1)
                got = res.dump(s, i, "int8")
                if not np.array_equal(got, want):
                    bad = np.flatnonzero(got != want)
                    choice = plan.choice(op.name)
                    raise AssertionError(
                        f"{target}: layer {i} {op.kind} ({choice.name if choice else 'portable'}) "
                        f"sample {s}: {bad.size} of {want.size} differ, first at {bad[:5]}: "
                        f"got {got[bad[:5]]} want {want[bad[:5]]}")
        variants = {op.name: (plan.choice(op.name).name if plan.choice(op.name) else "portable")
                    for op in layers}
        return (variants, result.report["layers"]) if want_report else variants


# --------------------------------------------------------------------------
# Host: the requantization algebra of kernels_arm.requant_plan
# --------------------------------------------------------------------------
def _portable_requant(acc, mult, shift, zp, lo, hi):
    from tinydeploy import qmath
    return np.clip(qmath.mbqm(acc, mult, shift) + zp, lo, hi)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("uniform", [True, False])
def test_requant_plan_equals_tflite_rounding(seed, uniform):
    """For random channels (tiny to > 1 multipliers, every zero point, ReLU or
    not, dead channels) the fast form equals MultiplyByQuantizedMultiplier
    on accumulators spread over the whole proven range, including its ends."""
    ch = random_requant_channels(np.random.default_rng(seed))
    n, bias, wsum, wabs, off = ch["n"], ch["bias"], ch["wsum"], ch["wabs"], ch["off"]
    mult, shift, zp, lo, hi = ch["mult"], ch["shift"], ch["zp"], ch["lo"], ch["hi"]
    rng = np.random.default_rng(10_000 + seed)
    plan = kernels_arm.requant_plan(bias, wsum, wabs, off, mult, shift, zp, lo, hi,
                                    uniform=uniform)
    if plan is None:
        pytest.skip("the ranges do not allow the fast form (the portable kernel runs)")
    for c in range(n):
        bound = abs(int(bias[c])) + 255 * int(wabs[c])
        accs = np.unique(np.concatenate([
            rng.integers(-bound, bound + 1, size=3000), np.arange(-300, 301),
            [-bound, bound, -bound + 1, bound - 1]])).astype(np.int64)
        if wabs[c] == 0:
            accs = np.array([int(bias[c]) + off * int(wsum[c])], np.int64)
        want = _portable_requant(accs, mult[c], shift[c], zp, lo, hi)
        acc2 = (accs << int(plan.scale_bits[c])) if wabs[c] and mult[c] else np.zeros_like(accs)
        got = kernels_arm.fast_requant(acc2, plan.records[c].astype(np.int64), plan)
        assert np.array_equal(got, want), (c, plan)


def _int8_weight_plan_exact(ch: dict, rng) -> object:
    """requant_plan(int8_weights=True) for the channels `ch` and its compact records
    (_compact_records), checked: the kernel accumulates int8 products on the unscaled
    bias and shifts the sum left by one layer-wide acc_shift (wrapping in 32 bits, as the
    C does); that equals TFLite's rounding for every accumulator in the proven range.
    The compact plan (else the plan), or None (refused)."""
    n, bias, wsum, wabs, off = ch["n"], ch["bias"], ch["wsum"], ch["wabs"], ch["off"]
    mult, shift, zp, lo = ch["mult"], ch["shift"], ch["zp"], ch["lo"]
    plan = kernels_arm.requant_plan(bias, wsum, wabs, off, mult, shift, zp, lo, 127,
                                    int8_weights=True)
    if plan is None:
        return None
    assert plan.acc_shift >= 1
    small = kernels_arm._compact_records(plan)
    for p in [plan] + ([small] if small is not None else []):
        _check_int8_weight_plan(ch, p, rng)
    return small or plan


def _check_int8_weight_plan(ch: dict, plan, rng) -> None:
    n, bias, wsum, wabs, off = ch["n"], ch["bias"], ch["wsum"], ch["wabs"], ch["off"]
    mult, shift, zp, lo = ch["mult"], ch["shift"], ch["zp"], ch["lo"]
    for c in range(n):
        bound = abs(int(bias[c])) + 255 * int(wabs[c])
        accs = np.unique(np.concatenate([rng.integers(-bound, bound + 1, size=3000),
                                         [-bound, bound]])).astype(np.int64)
        if wabs[c] == 0:
            accs = np.array([int(bias[c]) + off * int(wsum[c])], np.int64)
        want = _portable_requant(accs, mult[c], shift[c], zp, lo, 127)
        start = int(plan.bias2[c]) >> plan.acc_shift  # the stream's unscaled bias
        raw = accs - (int(bias[c]) + off * int(wsum[c])) + start  # the kernel's sum
        if not (wabs[c] and mult[c]):
            raw = np.full_like(accs, start)  # live_weights: a constant channel's weights are 0
        acc2 = ((raw << plan.acc_shift) + 2**31) % 2**32 - 2**31
        got = kernels_arm.fast_requant(acc2, plan.records[c].astype(np.int64), plan)
        assert np.array_equal(got, want), (c, plan)


@pytest.mark.parametrize("seed", range(40))
def test_requant_plan_on_int8_weights(seed):
    """The int8-weight form (--optimize balanced), and its compact per-channel records
    {m, e - 1} (--optimize size), equal TFLite's rounding, or the plan is refused."""
    ch = random_requant_channels(np.random.default_rng(1000 + seed), min_real=1e-6,
                                 max_real=2.0 if seed % 2 else 0.9)
    plan = _int8_weight_plan_exact(ch, np.random.default_rng(11_000 + seed))
    if plan is None:
        assert len({int(max(s, 0)) for s in ch["shift"]}) > 1, "refused although every shift is <= 0"


def test_compact_records_without_folded_zero_point():
    """Multipliers so small (shifts down to -30) that zp 2^e leaves int32: the zero point
    is added after the shift (fold 0), and the compact records' C is 2^(e-1) alone."""
    plans = [_int8_weight_plan_exact(
        random_requant_channels(np.random.default_rng(2000 + seed), min_real=1e-9, max_real=1e-7),
        np.random.default_rng(12_000 + seed)) for seed in range(30)]
    kinds = {(p.compact, p.fold) for p in plans if p is not None}
    assert (True, 0) in kinds and (True, 1) in kinds, kinds


def test_thumb_add_immediates():
    assert kernels_arm.thumb_add_imm(4095) and kernels_arm.thumb_add_imm(-2048)
    assert kernels_arm.thumb_add_imm(0x1000) and kernels_arm.thumb_add_imm(0xFF0000)
    assert not kernels_arm.thumb_add_imm(4097)


# --------------------------------------------------------------------------
# Emulator: every variant against the golden model
# --------------------------------------------------------------------------
def _chains():
    """(name, Chain) pairs covering the shapes the acceptance asks for."""
    out = []
    # convolutions: odd channel counts, every padding side, strides 1 and 2,
    # big multipliers (left shifts), ReLU / ReLU6 / none, extreme zero points
    rng = np.random.default_rng(11)
    c = Chain([1, 5, 9, 7], rng, "conv")
    c.conv(7, (3, 3), (1, 1), (1, 0, 2, 1), act="relu")
    c.conv(13, (1, 1), (1, 1), (0, 0, 0, 0))
    c.conv(6, (3, 2), (2, 2), (0, 1, 1, 0), act="relu6")
    c.conv(9, (1, 1), (2, 1), (0, 0, 0, 0), big=True)
    c.conv(19, (2, 3), (1, 2), (1, 1, 0, 2))
    c.fc(5)
    out.append(("conv", c))
    # depthwise: strides 1/2, padding on every side, channels 3, 20, 16
    rng = np.random.default_rng(12)
    d = Chain([1, 20, 11, 13], rng, "dw")
    d.depthwise((3, 3), (1, 1), (1, 1, 1, 1), act="relu")
    d.depthwise((3, 3), (2, 2), (0, 1, 1, 0))
    d.depthwise((3, 3), (1, 2), (1, 0, 0, 1), act="relu6")
    d.conv(16, (1, 1), (1, 1), (0, 0, 0, 0))
    d.depthwise((3, 3), (2, 1), (1, 1, 1, 1))
    out.append(("dw", d))
    # output rows of 5 (the five-output block) at column strides 2 and 1; 6 channels
    # (ring slots close enough for immediate offsets) and 40 (too far apart)
    rng = np.random.default_rng(16)
    f = Chain([1, 6, 7, 10], rng, "dw5")
    f.depthwise((3, 3), (1, 2), (1, 1, 1, 0), act="relu")
    f.depthwise((3, 3), (1, 1), (1, 1, 1, 1))
    f.conv(40, (1, 1), (1, 1), (0, 0, 0, 0))
    f.depthwise((3, 3), (1, 1), (1, 1, 1, 1), act="relu6")
    out.append(("dw5", f))
    # depthwise 5x5: strides 1/2, padding on every side, odd widths (a last single
    # output), 12 and 7 channels, windows larger than the image, a 1x1 input
    rng = np.random.default_rng(17)
    v = Chain([1, 12, 9, 11], rng, "dw5x5")
    v.depthwise((5, 5), (1, 1), (2, 2, 2, 2), act="relu")
    v.depthwise((5, 5), (2, 2), (1, 2, 2, 1))
    v.conv(7, (1, 1), (1, 1), (0, 0, 0, 0))
    v.depthwise((5, 5), (1, 2), (2, 0, 1, 2), act="relu6")
    v.depthwise((5, 5), (1, 1), (2, 2, 2, 2))
    v.depthwise((5, 5), (3, 2), (2, 2, 2, 2))
    v.depthwise((5, 5), (1, 1), (2, 2, 2, 2))
    out.append(("dw5x5", v))
    # 1x1 images, 3-channel first layer, residual add, global average pool
    rng = np.random.default_rng(13)
    r = Chain([1, 3, 10, 10], rng, "res")
    r.conv(16, (3, 3), (1, 1), (1, 1, 1, 1), act="relu").save("a")
    r.conv(16, (3, 3), (1, 1), (1, 1, 1, 1)).add("a", act="relu")
    r.conv(24, (3, 3), (2, 2), (0, 0, 1, 1), act="relu")
    r.global_avgpool().fc(12).fc(16)
    out.append(("res", r))
    rng = np.random.default_rng(14)
    t = Chain([1, 17, 1, 1], rng, "tiny")
    t.conv(33, (1, 1), (1, 1), (0, 0, 0, 0), act="relu").conv(8, (1, 1), (1, 1), (0, 0, 0, 0))
    t.depthwise((3, 3), (1, 1), (1, 1, 1, 1)).fc(64).fc(7)
    out.append(("tiny", t))
    # max pooling: channels 7 and 12, kernels 2x2 / 3x3 / 3x1, strides 1 and 2,
    # padding on every side, a window reaching 1x1, a Clip fused into one
    rng = np.random.default_rng(15)
    p = Chain([1, 7, 9, 10], rng, "pool")
    p.maxpool((3, 3), (2, 2), (1, 1, 1, 1)).maxpool((2, 2), (1, 1), (0, 1, 1, 0), clip=1.0)
    p.conv(12, (1, 1), (1, 1), (0, 0, 0, 0), act="relu6").maxpool((3, 1), (2, 1), (1, 0, 1, 0))
    p.maxpool((3, 3), (1, 2), (2, 1, 0, 2), clip=0.05).maxpool((3, 3), (3, 3), (1, 1, 1, 1))
    out.append(("pool", p))
    return out


def _random_chain(seed: int) -> Chain:
    rng = np.random.default_rng(seed)
    ch = Chain([1, int(rng.integers(1, 21)), int(rng.integers(1, 13)), int(rng.integers(1, 13))],
               rng, f"rand{seed}")
    for _ in range(int(rng.integers(2, 6))):
        n, c, h, w = ch.shape
        act = rng.choice([None, "relu", "relu6"])
        kind = rng.choice(["conv", "pw", "dw", "dw"])
        if kind == "conv":
            kh, kw = int(rng.integers(1, min(h + 2, 6))), int(rng.integers(1, min(w + 2, 6)))
            pads = (min(int(rng.integers(0, 3)), kh - 1), min(int(rng.integers(0, 3)), kw - 1),
                    min(int(rng.integers(0, 3)), kh - 1), min(int(rng.integers(0, 3)), kw - 1))
            if h + pads[0] + pads[2] < kh or w + pads[1] + pads[3] < kw:
                continue
            ch.conv(int(rng.integers(1, 21)), (kh, kw), (int(rng.integers(1, 3)), int(rng.integers(1, 3))),
                    pads, act=act, big=rng.random() < 0.2)
        elif kind == "pw":
            ch.conv(int(rng.integers(1, 40)), (1, 1), (1, 1), (0, 0, 0, 0), act=act,
                    big=rng.random() < 0.2)
        else:
            k = 5 if rng.random() < 0.3 else 3
            pads = tuple(int(rng.integers(0, k // 2 + 1)) for _ in range(4))
            if h + pads[0] + pads[2] < k or w + pads[1] + pads[3] < k:
                continue
            ch.depthwise((k, k), (int(rng.integers(1, 3)), int(rng.integers(1, 3))), pads, act=act)
    if rng.random() < 0.5:
        ch.fc(int(rng.integers(1, 30)))
    return ch


EXPECTED = {"nucleo-l4r5zi": "arm_dsp", "stm32f746": "arm_dsp", "cortex-m55": "arm_"}


# --optimize: speed runs the int16-weight kernels, size their int8-weight twins ("_w8")
MODES = [(t, "speed") for t in DSP_TARGETS] + [(t, "size") for t in DSP_TARGETS] + \
    [(t, "balanced") for t in MVE_TARGETS]


@pytest.mark.parametrize("target,optimize", MODES)
def test_variants_bit_exact_on_emulator(target, optimize):
    """Hand-made chains: each optimized layer equals the golden model, and the
    layers meant to be optimized are (on int8 weights with --optimize size)."""
    for name, chain in _chains():
        variants, layers = check_on_target(chain.model(), target, samples=2, want_report=True,
                                           optimize=optimize)
        assert all(l["variant"] == "arm_dsp_max_pool" for l in layers if l["op"] == "max_pool_s8")
        if name == "dw5x5":
            # the 5x5 depthwise's compact twin is the portable kernel (less flash)
            dws = [l["variant"] for l in layers if l["op"] == "depthwise_conv2d_s8"]
            want = "portable" if optimize == "size" else "arm_dsp_dw5x5_w8"
            assert dws == [want] * 6, dws
            continue
        fast = [v for v in variants.values() if v.startswith(EXPECTED[target])]
        convs = [k for k in variants if not k.endswith("relayout")]
        assert len(fast) >= len(convs) - 3, (name, variants)
        if target in MVE_TARGETS:
            assert any("mve" in v for v in variants.values()), (name, variants)
        gemm = [l["variant"] for l in layers if l["variant"].startswith(("arm_dsp_conv", "arm_dsp_fc"))]
        w8 = [v for v in gemm if v.endswith("_w8")]
        # size: int8 weights wherever the layer's shifts allow one accumulator scale
        assert (len(w8) >= len(gemm) - 1) if optimize == "size" else not w8, (name, gemm)


# Convolutions that take every path of the int8-weight layers' shared window copy
# (td_arm_im2col_rt), each on the (diverse) model input: (input C, H, W), out channels,
# kernel, stride, pads (top, left, bottom, right).
WINDOW_COPY_CASES = {
    # one channel, padding on every side: window rows assembled with their padding
    "c1_10x4_s2": ((1, 20, 23), 3, (10, 4), (2, 2), (4, 1, 5, 1)),
    # a leftover element per window row; three pixels of a row at once
    "c3_3x3": ((3, 9, 13), 5, (3, 3), (1, 1), (1, 1, 1, 1)),
    # pointwise with two leftover channels; the last block has two pixels
    "c6_1x1": ((6, 7, 8), 5, (1, 1), (1, 1), (0, 0, 0, 0)),
    # stride 2 along x only, two leftover elements per row
    "c6_1x3_s12": ((6, 5, 11), 7, (1, 3), (1, 2), (0, 1, 0, 2)),
    # 49 bytes a window row with padding in it: element by element
    "c7_7x7": ((7, 8, 9), 4, (7, 7), (1, 1), (3, 3, 3, 3)),
    # whole taps of 4-channel groups next to the padding
    "c8_3x3_s2": ((8, 9, 10), 9, (3, 3), (2, 2), (1, 1, 1, 1)),
    # 27 bytes a row, padding on one side only
    "c9_3x3": ((9, 6, 7), 10, (3, 3), (1, 1), (1, 0, 2, 1)),
}


@pytest.mark.parametrize("target", DSP_TARGETS)
@pytest.mark.parametrize("case", sorted(WINDOW_COPY_CASES))
def test_int8_weight_window_copy_bit_exact_on_emulator(target, case):
    """--optimize size: a convolution on int8 weights (and the shared run-time window
    copy) equals the golden model on each path of the copy."""
    (c, h, w), oc, k, stride, pads = WINDOW_COPY_CASES[case]
    ch = Chain([1, c, h, w], np.random.default_rng(len(case)), "win")
    ch.conv(oc, k, stride, pads)
    variants, layers = check_on_target(ch.model(), target, samples=2, want_report=True,
                                       optimize="size")
    assert [l["variant"] for l in layers if l["op"] == "conv2d_s8"][0].endswith("_w8"), variants


def _tile_chain() -> Chain:
    """Convolutions on int8 weights in tiles (td_arm_conv_w8t): pointwise with an odd
    channel count over 99 pixels (tiles of 16 blocks and a last of one), a 3x3 with
    padding on every side over 56 pixels (a short block of two), one with a residual add
    fused into it, and one over fewer blocks than a tile."""
    ch = Chain([1, 12, 9, 11], np.random.default_rng(41), "tile")
    ch.conv(7, (1, 1), (1, 1), (0, 0, 0, 0), act="relu")
    ch.conv(10, (3, 3), (1, 1), (1, 0, 0, 1))  # 8 x 10 outputs
    ch.save("r").conv(10, (1, 1), (1, 1), (0, 0, 0, 0)).add("r", act="relu")
    ch.conv(6, (3, 3), (2, 2), (1, 1, 1, 1))
    return ch


@pytest.mark.parametrize("target", DSP_TARGETS)
@pytest.mark.parametrize("toolchain", ["gcc", "clang"])
def test_int8_weight_gemm_tiles_bit_exact_on_emulator(target, toolchain, monkeypatch):
    """--optimize balanced: convolutions on int8 weights widened once per tile of pixels
    (where the arena has room) equal the golden model: odd channel counts, a last tile
    of one block, a short block, padding, a fused residual add.  (No flash for int16
    weights: every layer keeps its int8 weights.)"""
    monkeypatch.setattr(api, "BALANCED_HEADROOM", 0)
    monkeypatch.setattr(api, "BALANCED_MIN_SPEND", 0)
    variants, layers = check_on_target(_tile_chain().model(), target, samples=2,
                                       want_report=True, optimize="balanced",
                                       toolchain=toolchain)
    convs = [l for l in layers if l["op"] == "conv2d_s8"]
    tiled = [l["variant_detail"] for l in convs if "widened once per" in (l.get("variant_detail") or "")]
    assert len(tiled) >= 3, [(l["variant"], l.get("variant_detail")) for l in convs]


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_int8_weight_gemm_tiles_in_place_bit_exact_on_emulator(direction, monkeypatch):
    """Tiles written over their own input (every overlap forced one way): a tile's
    windows are all copied before its outputs are written, tiles in the overlap's order."""
    monkeypatch.setattr(api, "BALANCED_HEADROOM", 0)
    monkeypatch.setattr(api, "BALANCED_MIN_SPEND", 0)
    monkeypatch.setattr(planner, "FORCE_OVERLAP", direction)
    variants, layers = check_on_target(_tile_chain().model(), "nucleo-l4r5zi", samples=2,
                                       want_report=True, optimize="balanced")
    overlapped = [l for l in layers if l["op"] == "conv2d_s8"
                  and "widened once per" in (l.get("variant_detail") or "")
                  and l.get("inplace") == f"window ({direction})"]
    assert overlapped, [(l["variant"], l.get("variant_detail"), l.get("inplace")) for l in layers]


def _add_chains():
    """Adds of two same-shape tensors that no convolution takes in (a depthwise layer's
    output plus its input, a tensor plus itself): ReLU, an output scale below the inputs',
    odd channel counts, one element."""
    out = []
    for seed, shape in ((31, [1, 7, 5, 3]), (32, [1, 17, 1, 1]), (33, [1, 1, 1, 1])):
        ch = Chain(shape, np.random.default_rng(seed), f"add{seed}")
        ch.save("x").depthwise((3, 3), (1, 1), (1, 1, 1, 1)).add("x", act="relu")
        ch.save("y").depthwise((3, 3), (1, 1), (1, 1, 1, 1)).add("y", narrow=True)
        ch.save("z").add("z")
        out.append(ch)
    return out


@pytest.mark.parametrize("target", DSP_TARGETS + MVE_TARGETS)
def test_add_bit_exact_on_emulator(target):
    """td_arm_add_s8 (tables + SMMLA) on the DSP cores and the M55: every add equals the
    golden model."""
    for chain in _add_chains():
        variants, layers = check_on_target(chain.model(), target, samples=3, want_report=True)
        adds = [l["variant"] for l in layers if l["op"] == "add_s8"]
        assert adds == ["arm_dsp_add"] * 3, (chain.name, variants)


def _dw_chain(seed: int) -> Chain:
    """Depthwise layers computed over their own input: channels 8, 24 and 12,
    strides 1 and 2, padding on every side, odd widths."""
    rng = np.random.default_rng(seed)
    d = Chain([1, 3, 9, 11], rng, "dwg")
    d.conv(24, (1, 1), (1, 1), (0, 0, 0, 0))  # the depthwise input is the largest tensor
    d.depthwise((3, 3), (1, 1), (1, 1, 1, 1), act="relu")
    d.depthwise((3, 3), (2, 2), (1, 0, 0, 1))
    d.depthwise((3, 3), (1, 2), (0, 1, 1, 0), act="relu6")
    d.conv(12, (1, 1), (1, 1), (0, 0, 0, 0))
    d.depthwise((3, 3), (2, 1), (1, 1, 1, 1))
    d.conv(8, (1, 1), (1, 1), (0, 0, 0, 0)).depthwise((3, 3), (1, 1), (1, 1, 1, 1))
    return d


@pytest.mark.parametrize("target,optimize", [("nucleo-l4r5zi", "speed"), ("nucleo-l4r5zi", "size")] +
                         [(t, "balanced") for t in MVE_TARGETS])
@pytest.mark.parametrize("scratch", ["fit", "any"])
def test_depthwise_ring_groups_bit_exact_on_emulator(target, optimize, scratch):
    """The depthwise kernels written exactly over their input (planner alias),
    with the ring split into channel groups ("fit": the smallest ring) or
    whole ("any"), equal the golden model (on int16 and int8 weights)."""
    variants, layers = check_on_target(_dw_chain(21).model(), target, samples=2,
                                       want_report=True, kernel_scratch=scratch, optimize=optimize)
    dws = [l for l in layers if l["op"] == "depthwise_conv2d_s8"]
    suffix = "dw3x3_w8" if optimize == "size" else "dw3x3"
    assert len(dws) == 5 and all(l["variant"].endswith(suffix) for l in dws), variants
    assert all(l.get("inplace") == "window (alias)" for l in dws), [l.get("inplace") for l in dws]
    groups = [int(l["variant_detail"].split()[2]) for l in dws]
    channels = [l["out_shape"][-1] for l in dws]
    if scratch == "fit":  # no arena growth: the first layer's ring must be split
        assert groups[0] < channels[0], groups
    else:
        assert groups == channels, groups


def test_dw_alias_safety_predicate():
    """kernels_arm.dw_alias_safe against a simulation of the row-ordered
    kernels: rows loaded in increasing order into a ring of k rows (3x3 and 5x5),
    each output row written (over the flattened input, same pixel stride) once
    its rows are loaded.  Safe means no row is loaded from memory after any of
    its pixels was overwritten."""
    rng = np.random.default_rng(5)
    seen = {(k, ok): 0 for k in (3, 5) for ok in (True, False)}
    for _ in range(4000):
        k = int(rng.choice([3, 5]))
        ih, iw = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        sv, sh = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        pt, pb, pl, pr = (int(v) for v in rng.integers(0, k, size=4))
        oh, ow = (ih + pt + pb - k) // sv + 1, (iw + pl + pr - k) // sh + 1
        if oh < 1 or ow < 1:
            continue
        q = dict(in_h=ih, in_w=iw, out_h=oh, out_w=ow, stride_h=sv, pad_top=pt, in_c=4, out_c=4,
                 k_h=k)
        clobbered = np.zeros(ih * iw, bool)
        nxt, ok = -pt, True
        for oy in range(oh):
            iy0 = oy * sv - pt
            nxt = max(nxt, iy0)
            while nxt <= iy0 + k - 1:
                if 0 <= nxt < ih and clobbered[nxt * iw:(nxt + 1) * iw].any():
                    ok = False
                nxt += 1
            clobbered[oy * ow:min((oy + 1) * ow, ih * iw)] = True
        assert kernels_arm.dw_alias_safe(q) == ok, q
        seen[k, ok] += 1
    assert min(seen.values()) > 100, seen


@pytest.mark.parametrize("target", DSP_TARGETS)
def test_depthwise_rows_in_decreasing_order_bit_exact(target, monkeypatch):
    """The ring kernels' decreasing row order (in place "backward"; rarely planned for a
    depthwise layer, whose alias mode comes first): forced on every layer of separate
    buffers, the 3x3 and 5x5 depthwise chains equal the golden model."""
    monkeypatch.setattr(kernels_arm, "_direction", lambda ctx, op: -1)
    chains = dict(_chains())
    for name, optimize in (("dw", "size"), ("dw", "speed"), ("dw5x5", "speed")):
        variants, layers = check_on_target(chains[name].model(), target, samples=2, want_report=True,
                                           inplace=False, optimize=optimize)
        assert sum("_dw" in l["variant"] for l in layers) >= 4, (name, variants)


@pytest.mark.parametrize("target", DSP_TARGETS)
def test_compact_records_unfolded_zero_point_bit_exact_on_emulator(target, tmp_path):
    """--optimize size with multipliers near 2^-26 and output zero point 120: zp 2^e leaves
    int32, so the zero point is added after the shift (fold 0) in the compact records'
    requantization of the GEMM, the depthwise and the fully connected kernels; each equals
    the golden model."""
    import re
    ch = Chain([1, 6, 7, 7], np.random.default_rng(77), "fold0")
    ch.conv(8, act="relu")
    ch._zp = lambda: 120
    ch._out_scale = lambda in_scale, w_scales, k, big=False: float(in_scale * np.median(w_scales)) * 2.0**26
    ch.conv(8).depthwise().fc(5)
    model = ch.model()
    variants = check_on_target(model, target, samples=3, optimize="size")
    assert sum(v.endswith("_w8") for v in variants.values()) >= 3, variants
    onnx.save(model, str(tmp_path / "m.onnx"))
    api.compile(tmp_path / "m.onnx", target=target, out_dir=tmp_path / "lib", optimize="size")
    text = (tmp_path / "lib" / "net.c").read_text()
    # compact records (-2), the GEMM's packed ones (-3)
    unfolded = re.findall(r"uniform_shift = -[23],\s*(?:\.|L\d+_)fold = 0", text)
    assert len(unfolded) >= 3, "the layers do not take the fold 0 compact path"


@pytest.mark.parametrize("target,toolchain", [("nucleo-l4r5zi", "gcc"), ("stm32f746", "clang")])
def test_packed_records_bit_exact_on_emulator(target, toolchain):
    """--optimize size packs each GEMM and 3x3 depthwise channel's shift into its bias word
    (records {m}; the depthwise layers: 5 channels, a 5-output row, stride 1 and 2):
    odd channel counts (a last block of one channel), 5x5 = 3 * 8 + 1 pixels (a last
    block of one pixel), 3x3 and 1x1 windows, biases up to 2^20 either sign, ReLU6
    clamps, a fused residual add; every layer equals the golden model, with gcc's pinned
    registers and clang's portable loop alike.  The layers take their shape as run-time
    data (td_arm_conv_shape: k4 12 and 2; the fused add's requantization from a
    td_arm_epi_rq; the depthwise layers' td_arm_dw_shape, ring offsets read from memory),
    and two of them of one kind run one function."""
    import re
    ch = Chain([1, 5, 5, 5], np.random.default_rng(57), "packed")
    ch.conv(7, act="relu6").save("a").conv(9, k=(1, 1), pads=(0, 0, 0, 0), act="relu")
    ch.conv(7, k=(1, 1), pads=(0, 0, 0, 0)).add("a", act="relu").conv(11).conv(3, act="relu6")
    ch.conv(5, act="relu6").depthwise(act="relu").depthwise(stride=(2, 2))
    model = ch.model()
    _, layers = check_on_target(model, target, samples=3, want_report=True, optimize="size",
                                toolchain=toolchain)
    packed = [l for l in layers if "shifts packed into the biases" in l.get("variant_detail", "")]
    assert len(packed) == 8, [(l["variant"], l.get("variant_detail")) for l in layers]
    assert sum(l["variant"] == "arm_dsp_dw3x3_w8" for l in packed) == 2, packed
    runtime = [l for l in packed if "run-time shape" in l["variant_detail"]]
    assert len(runtime) == 8 and sum("_add" in l["variant"] for l in runtime) == 1
    # the depthwise layers (strides 1 and 2) share no function: their specialized forms
    dws = [l for l in runtime if l["variant"] == "arm_dsp_dw3x3_w8"]
    assert len(dws) == 2 and not any(l["variant_detail"].endswith("(shared)") for l in dws), dws
    convs = [l for l in runtime if l not in dws]
    assert len({l["function"] for l in convs}) < 6, [l["function"] for l in convs]


@pytest.mark.parametrize("target", ["nucleo-l4r5zi", "stm32f746"])
def test_run_time_k_loop_every_entry_bit_exact_on_emulator(target):
    """The run-time-shape GEMM (--optimize size) enters its loop of four K steps a round by
    a table branch at the step that leaves whole rounds: window lengths with k4 = 1, 3, 5, 2,
    9 and 16 take every entry ((k4 - 1) % 4 = 0, 2, 0, 1, 0, 3; none, one and several
    rounds), in blocks of three pixels and a short block of two, with even and odd channel
    counts; every layer equals the golden model."""
    ch = Chain([1, 4, 2, 4], np.random.default_rng(91), "rtk")
    one = dict(k=(1, 1), pads=(0, 0, 0, 0))
    ch.conv(12, act="relu", **one).conv(20, **one).conv(8, act="relu", **one).conv(9, **one)
    ch.conv(4, **one).conv(7, act="relu6").conv(6)
    _, layers = check_on_target(ch.model(), target, samples=3, want_report=True, optimize="size")
    runtime = [l for l in layers if "run-time shape" in l.get("variant_detail", "")]
    assert len(runtime) == 7, [(l["variant"], l.get("variant_detail")) for l in layers]


@pytest.mark.parametrize("target,toolchain", [("nucleo-l4r5zi", "gcc"), ("stm32f746", "gcc"),
                                              ("stm32f746", "clang")])
def test_depthwise_run_time_shape_shared_bit_exact_on_emulator(target, toolchain):
    """--optimize size: 3x3 depthwise layers of other shapes but one stride along x (and
    requantization flags) share one function that reads the shape at run time
    (td_arm_dw_layer_rt: loop bounds, ring group and width, and the ring offsets from
    memory).  Rows of 17, 15, 13, 11, 6, 4 and 2 outputs (blocks of 8, the blocks of 8,
    6, 5 and 4 storing fewer, the one- and two-output tails), strides 1 and 2, padding or
    none, 6 to 20 channels, rings of fewer channels than the layer (several groups):
    every layer equals the golden model."""
    ch = Chain([1, 6, 12, 17], np.random.default_rng(63), "dwrt")
    valid = dict(pads=(0, 0, 0, 0))
    one = dict(k=(1, 1), pads=(0, 0, 0, 0))
    ch.depthwise(act="relu").conv(12, **one).depthwise(**valid).depthwise(act="relu6", **valid)
    ch.conv(20, **one).depthwise(**valid).depthwise(stride=(2, 2)).conv(10, **one)
    ch.depthwise(**valid).depthwise().depthwise(stride=(2, 2))
    _, layers = check_on_target(ch.model(), target, samples=2, want_report=True, optimize="size",
                                toolchain=toolchain, kernel_scratch="fit")
    dws = [l for l in layers if l["op"] == "depthwise_conv2d_s8"]
    shared = [l for l in dws if l["variant_detail"].endswith("run-time shape if shared (shared)")]
    assert len(dws) == 8 and len(shared) == 8, [(l["variant"], l.get("variant_detail")) for l in dws]
    assert len({l["function"] for l in shared}) <= 3, [l["function"] for l in shared]
    rings = [int(l["variant_detail"].split()[2]) for l in dws]
    assert any(r < l["out_shape"][-1] for r, l in zip(rings, dws)), rings


def test_run_time_shape_only_where_the_struct_holds_it():
    """--optimize size: a convolution along a 33,000-sample row (wider than the run-time
    shape struct's int16_t fields hold) keeps its specialized code on packed records; the
    one after it, 16,500 wide after a stride of 2, takes the run-time shape."""
    import tempfile
    ch = Chain([1, 4, 1, 33000], np.random.default_rng(12), "wide")
    ch.conv(8, k=(1, 3), pads=(0, 1, 0, 1), stride=(1, 2), act="relu")
    ch.conv(8, k=(1, 3), pads=(0, 1, 0, 1))
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(ch.model(), str(Path(tmp) / "m.onnx"))
        r = api.compile(Path(tmp) / "m.onnx", target="stm32f746", optimize="size").report
    details = [l["variant_detail"] for l in r["layers"] if l["op"] == "conv2d_s8"]
    assert len(details) == 2 and "shifts packed into the biases" in details[0], details
    assert "run-time shape" not in details[0] and "run-time shape" in details[1], details


@pytest.mark.parametrize("debug_flags,optimize", [(["-O0"], "speed"),
                                                  (["-Og", "-fno-omit-frame-pointer",
                                                    "-DTD_ARM_DW_ASM=0"], "balanced")])
def test_gcc_debug_build_of_vww_is_bit_exact(tmp_path, debug_flags, optimize):
    """vww (int16- or int8-weight depthwise layers after a GEMM layer) built by GCC as a
    debug build: GCC 12 kept r7 as the frame pointer in the first depthwise layer, after
    the GEMM layer that pins r7, and refused the block's fourteen-register assembly
    ("impossible constraints" at -O0; at -Og with frame pointers it never finished).  At
    -O0, and with TD_ARM_DW_ASM=0 (docs/integration.md), the block is the C of the clang
    build, and the library is bit-exact on the emulator."""
    import json
    from conftest import model_path
    from tinydeploy.targets import TARGETS_DIR
    desc = json.loads((TARGETS_DIR / "stm32f746.json").read_text())
    flags = [f for f in desc["cflags"] if f != "-O2"]
    desc.update(name="f746-debug", cflags=flags + debug_flags)
    desc["linker_script"] = str(TARGETS_DIR / desc["linker_script"])
    desc["startup"] = [str(TARGETS_DIR / f) for f in desc["startup"]]
    board = tmp_path / "f746-debug.json"
    board.write_text(json.dumps(desc))
    assert "-O2" not in desc["cflags"]
    v = api.verify(model_path("vww", "int8_qdq.onnx"), "stm32f746", samples=1, target_file=board,
                   optimize=optimize)
    assert v.match, v.first_mismatch


def test_packed_records_refuse_what_the_bias_word_cannot_hold():
    """A bias of 2^26 or more (unscaled) leaves no room for the shift: no packed plan,
    the layer keeps its compact records; one just below packs."""
    ch = random_requant_channels(np.random.default_rng(5), min_real=1e-3, max_real=0.5)
    ch["shift"] = np.minimum(ch["shift"], -1)
    ch["mult"] = np.maximum(ch["mult"], 2**30 + 1)
    for bias, packs in ((2**26 - 2**14, True), (2**26, False), (-2**26, True), (-2**26 - 1, False)):
        b = np.array(ch["bias"], np.int64)
        b[0] = bias
        n = ch["n"]  # weight sums 0: the folded bias is the bias
        plan = kernels_arm.requant_plan(b, np.zeros(n, np.int64), np.ones(n, np.int64), ch["off"],
                                        ch["mult"], ch["shift"], ch["zp"], -128, 127,
                                        int8_weights=True)
        small = kernels_arm._compact_records(plan)
        assert small is not None and small.bias2[0] >> small.acc_shift == bias
        assert (kernels_arm._packed_records(small) is not None) == packs, bias


@pytest.mark.parametrize("target", DSP_TARGETS)
def test_fused_add_tables_built_in_ram_bit_exact_on_emulator(target, tmp_path):
    """--optimize size builds a fused residual add's two rescale tables in the layer's
    scratch (td_arm_add_tables) instead of storing them: the residual blocks (1x1 and 3x3
    convolutions with the add fused, the convolution's value as either input of the Add,
    odd channels) equal the golden model; that build stores no table, 1,928 bytes less a
    layer than the compact records alone (its shape and add requantization run-time data).  Where the arena may not grow by the tables'
    2 KB (the default --kernel-scratch: 512 bytes here), the layers keep them in flash."""
    import re
    ch = Chain([1, 5, 7, 7], np.random.default_rng(41), "ramtab")
    ch.conv(6, act="relu").save("a").conv(6, k=(1, 1), pads=(0, 0, 0, 0), act="relu")
    ch.conv(6, k=(1, 1), pads=(0, 0, 0, 0)).add("a", act="relu").save("b")
    ch.conv(6, act="relu").conv(6).add("b", swap=True)
    model = ch.model()
    _, layers = check_on_target(model, target, samples=3, want_report=True, optimize="size")
    fused = [l for l in layers if "_add" in l["variant"]]
    assert len(fused) == 2, [l["variant"] for l in layers]
    assert all(l["variant"].endswith("_add_w8") and "add tables built in RAM" in l["variant_detail"]
               for l in fused), fused
    onnx.save(model, str(tmp_path / "m.onnx"))
    builds = {}
    for scratch in ("any", "default"):
        opts = dict(kernel_scratch="any") if scratch == "any" else {}
        builds[scratch] = api.compile(tmp_path / "m.onnx", target=target, out_dir=tmp_path / scratch,
                                      optimize="size", **opts)
    text = (tmp_path / "any" / "net.c").read_text()
    assert len(re.findall(r"td_arm_add_tables\(t, rescale\)", text)) == 2
    assert "_tconv" not in (tmp_path / "any" / "net_weights.c").read_text()
    assert "td_arm_add_tables" not in (tmp_path / "default" / "net.c").read_text()
    for ram, flash in zip(builds["any"].report["layers"], builds["default"].report["layers"]):
        if "_add" in ram["variant"]:
            assert flash["variant"] == ram["variant"]
            assert "add tables built in RAM" not in flash["variant_detail"], flash
            # the tables, for their two rescale rows, a td_arm_conv_shape and a td_arm_epi_rq
            assert flash["weight_bytes"] - ram["weight_bytes"] == 2048 - 40 - 32 - 20, (flash, ram)
            assert ram["scratch"]["bytes"] == flash["scratch"]["bytes"] + 2048


@pytest.mark.parametrize("target", DSP_TARGETS)
def test_add_tables_built_in_ram_bit_exact_on_emulator(target, tmp_path):
    """An Add of two tensors the convolution cannot take (x + conv(x): the residual is the
    conv's own input), odd channels: --optimize size builds its two rescale tables in the
    layer's scratch (td_arm_add_s8_in_ram) and equals the golden model; balanced keeps
    them in flash, 2,008 bytes more."""
    ch = Chain([1, 5, 7, 7], np.random.default_rng(43), "addram")
    ch.conv(5, act="relu").save("a").conv(5).add("a", act="relu").save("b").conv(5).add("b", swap=True)
    model = ch.model()
    _, layers = check_on_target(model, target, samples=3, want_report=True, optimize="size")
    adds = [l for l in layers if l["op"] == "add_s8"]
    assert len(adds) == 2 and all(l["variant"] == "arm_dsp_add" for l in adds), layers
    assert all("built in RAM" in l["variant_detail"] for l in adds), adds
    onnx.save(model, str(tmp_path / "m.onnx"))
    size = api.compile(tmp_path / "m.onnx", target=target, out_dir=tmp_path / "s", optimize="size",
                       kernel_scratch="any").report["layers"]
    balanced = api.compile(tmp_path / "m.onnx", target=target, optimize="balanced",
                           kernel_scratch="any").report["layers"]
    assert (tmp_path / "s" / "net.c").read_text().count("td_arm_add_s8_in_ram(") == 2
    for s, b in zip(size, balanced):
        if s["op"] == "add_s8":
            assert "built in RAM" not in b["variant_detail"], b
            assert b["weight_bytes"] - s["weight_bytes"] == 2048 - 40, (b, s)


@pytest.mark.parametrize("target,optimize", MODES)
def test_random_chains_bit_exact_on_emulator(target, optimize):
    """Seeded random chains (shapes, strides, paddings, zero points, scales)."""
    base = {"nucleo-l4r5zi": 100, "stm32f746": 200, "cortex-m55": 300}[target]
    base += 50 if optimize == "size" else 0
    for seed in range(base, base + 3):
        check_on_target(_random_chain(seed).model(), target, samples=2, seed=seed, optimize=optimize)


@pytest.mark.parametrize("target", DSP_TARGETS + MVE_TARGETS)
@pytest.mark.parametrize("name", ["kws", "resnet8", "vww", "ad"])
def test_mlperf_models_bit_exact_on_emulator(name, target):
    from conftest import model_path
    r = api.verify(model_path(name, "int8_qdq.onnx"), target, samples=2)
    assert r.match, r.first_mismatch


def test_choice_recorded_in_report():
    from conftest import model_path
    result = api.compile(model_path("kws", "int8_qdq.onnx"), target="nucleo-l4r5zi",
                         kernel_scratch="any", optimize="speed")
    variants = {l["variant"] for l in result.report["layers"]}
    assert {"arm_dsp_conv", "arm_dsp_conv_1x1", "arm_dsp_dw3x3", "arm_dsp_fc"} <= variants
    assert result.report["optimize"] == "speed"
    small = api.compile(model_path("kws", "int8_qdq.onnx"), target="nucleo-l4r5zi",
                        kernel_scratch="any", optimize="size")
    variants = {l["variant"] for l in small.report["layers"]}
    assert {"arm_dsp_conv_w8", "arm_dsp_conv_1x1_w8", "arm_dsp_dw3x3_w8", "arm_dsp_fc_w8"} <= variants
    # int8 weights: half the bytes of the pre-widened int16 ones; the records may grow by a
    # word per channel (a per-channel shift where int16 weights carried the scale), or
    # shrink by one (packed records: the shift in the bias word)
    saved = sum(a["weight_bytes"] - b["weight_bytes"]
                for a, b in zip(result.report["layers"], small.report["layers"])
                if a["op"] in ("conv2d_s8", "fully_connected_s8"))
    gemm_weights = sum(t.nbytes for t in small.graph.tensors.values()
                       if t.is_const and t.dtype == "int8" and t.data.ndim in (2, 4)
                       and t.shape[0] != 1)
    channels = sum(l["out_shape"][-1] for l in small.report["layers"]
                   if l["variant"].endswith("_w8") and l["op"] != "depthwise_conv2d_s8")
    packed = sum(l["out_shape"][-1] for l in small.report["layers"]
                 if "shifts packed into the biases" in l.get("variant_detail", ""))
    assert packed > 0
    assert gemm_weights - 4 * channels <= saved <= gemm_weights + 4 * packed, (saved, gemm_weights)


def test_no_variant_off_arm():
    from conftest import model_path
    for target in ("host", "rp2040"):
        result = api.compile(model_path("kws", "int8_qdq.onnx"), target=target)
        assert all(not l["variant"].startswith("arm_") for l in result.report["layers"])


@pytest.mark.parametrize("name", ["kws", "resnet8"])
def test_float_models_on_fpu_emulator(name):
    """The float32 FPU kernels (VFMA GEMM blocks, depthwise) agree with the
    float reference on the Cortex-M7 emulator."""
    from conftest import model_path
    r = api.verify(model_path(name, "float.onnx"), "stm32f746", samples=2, quantize="float32",
                      kernel_scratch="any")
    assert r.match, (r.max_abs_diff, r.first_mismatch)


@pytest.mark.parametrize("target", ["nucleo-l4r5zi", "cortex-m55"])
def test_generated_library_builds_at_every_optimization_level(target, tmp_path):
    """Users build the library with their own flags (-O0 debug builds too):
    the layer functions force -O2 on themselves, so every level compiles
    cleanly."""
    import subprocess
    from conftest import model_path
    from tinydeploy import targets
    tgt = targets.load_target(target)
    out = tmp_path / "lib"
    api.compile(model_path("resnet8", "int8_qdq.onnx"), target=target, out_dir=out,
                kernel_scratch="any")
    arch = [f for f in tgt.cflags if f.startswith(("-mcpu", "-mthumb", "-mfpu", "-mfloat-abi"))]
    for level in ("-O0", "-Os -fno-omit-frame-pointer"):
        for src in sorted(p for p in out.glob("*.c") if not p.name.endswith("_weights.c")):
            cmd = [tgt.cc, *arch, *level.split(), "-std=c99", "-Wall", "-Wextra", "-Wpedantic",
                   "-Wconversion", "-Werror", f"-I{out}",
                   "-c", str(src), "-o", str(tmp_path / "x.o")]
            r = subprocess.run(cmd, capture_output=True, text=True)
            assert r.returncode == 0, (level, src.name, r.stderr[-2000:])


def test_small_model_keeps_its_fast_kernels_within_the_scratch_budget():
    """The digits CNN's arena is 640 bytes: 1/16 of it (40 bytes) would drop
    its second convolution to the portable kernel (5.5x slower); the 512-byte
    floor and the joint plan keep every DSP variant at 752 bytes."""
    from conftest import REPO
    ex = REPO / "examples" / "digits"
    result = api.compile(ex / "digits_cnn.onnx", target="stm32f746", calib=ex / "calib.npz")
    layers = result.report["layers"]
    assert [l["variant"] for l in layers if l["op"] == "conv2d_s8"] == ["arm_dsp_conv", "arm_dsp_conv"]
    assert not result.report["memory"]["variants_dropped_for_ram"]
    assert result.report["arena_bytes"] <= 640 + 512


ARM_FLAGS = {"cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
             "cortex-m7": ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
             "cortex-m55": ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"]}


def test_runtime_headers_are_self_contained(tmp_path):
    """Every runtime header compiles on its own (it includes what it
    depends on), for the host and for each Arm core, with gcc and clang,
    under the hygiene flags (-Wpedantic -Wconversion too)."""
    import shutil
    import subprocess
    from conftest import REPO
    include = REPO / "runtime_c" / "include"
    unit = tmp_path / "unit.c"
    strict = ["-Wpedantic", "-Wconversion"]
    from tinydeploy import targets, toolchain
    m4 = toolchain.cflags(targets.load_target("nucleo-l4r5zi"), "clang")
    newlib = [f for i, f in enumerate(m4) if f == "-isystem" or (i and m4[i - 1] == "-isystem")]
    configs = [("gcc", strict)] + \
        [("arm-none-eabi-gcc", f + strict) for f in ARM_FLAGS.values()] + \
        [("clang", ["--target=arm-none-eabi", *f, *newlib, *strict]) for f in ARM_FLAGS.values()]
    for header in sorted(include.glob("*.h")):
        unit.write_text(f'#include "{header.name}"\nint td_unit_not_empty;\n')
        for cc, flags in configs:
            if shutil.which(cc) is None:
                continue
            r = subprocess.run([cc, *flags, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror",
                                f"-I{include}", "-c", str(unit), "-o", str(tmp_path / "unit.o")],
                               capture_output=True, text=True)
            assert r.returncode == 0, (header.name, flags, r.stderr[-2000:])


@pytest.mark.parametrize("target,quantize", [("nucleo-l4r5zi", "int8"), ("cortex-m55", "int8"),
                                             ("stm32f746", "float32"), ("host", "float32")])
def test_output_folder_holds_what_its_files_include(target, quantize, tmp_path):
    """The output folder is closed (every #include "..." and td-requires
    target is there) and minimal (every runtime header is reached from a .c
    file, every kernel source is in CMakeLists.txt)."""
    import re
    from conftest import REPO
    ex = REPO / "examples" / "digits"
    out = tmp_path / "lib"
    opts = dict(calib=ex / "calib.npz") if quantize == "int8" else dict(quantize="float32")
    api.compile(ex / "digits_cnn.onnx", target=target, out_dir=out, **opts)
    files = {p.name: p.read_text() for p in out.iterdir() if p.suffix in (".c", ".h")}
    reached, todo = set(), [n for n in files if n.endswith(".c")]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        text = files[name]
        for inc in re.findall(r'#\s*include\s*"([^"]+)"', text):
            assert inc in files, f"{name} includes {inc}, which is missing"
            todo.append(inc)
        for req in re.findall(r"td-requires:\s*([\w./-]+\.c)", text):
            assert "td_" + req.replace("/", "_") in files, f"{name} requires {req}, which is missing"
    assert reached == set(files), f"copied but never included: {set(files) - reached}"
    cmake = (out / "CMakeLists.txt").read_text()
    assert all(n in cmake for n in files if n.endswith(".c"))
    if quantize == "float32":
        assert "td_kernels_s8.h" not in files
    if target == "nucleo-l4r5zi":
        assert "td_arm_mve.h" not in files and "td_arm_fpu.h" not in files
