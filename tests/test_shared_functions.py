"""Layers whose generated code is the same share one function (codegen.share_functions).

A small QDQ chain with two 3x3 convolutions and two depthwise convolutions of
one shape and one quantization each (different weights): on Arm DSP targets
every layer gets a specialized wrapper function; the second layer of each
pair must call the first one's (defined once in net.c), the report must say
so, the per-layer profile must still count each layer on its own, and every
layer's output must equal the golden model on the emulator.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import api, codegen, on_target
from tinydeploy.ctext import Call
from tinydeploy.codegen import Layer

from test_kernels_arm import _portable_requant, check_on_target
from conftest import random_requant_channels

C, H, W = 8, 6, 6
SCALE, ZP = 0.05, -3  # every activation's quantization: the layers of a pair match


class _QdqGraph:
    """A QDQ graph of convolutions on a [1, C, H, W] input, every activation at scale SCALE
    (its zero point per tensor), int8 weights with per-channel scales and int32 biases."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.nodes, self.inits = rng, [], []
        self.const("s", np.float32(SCALE))

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def qdq(self, x, tag, zp):
        z = self.const(f"{tag}_z", np.int8(zp))
        self.nodes.append(helper.make_node("QuantizeLinear", [x, "s", z], [f"{tag}_q"]))
        self.nodes.append(helper.make_node("DequantizeLinear", [f"{tag}_q", "s", z], [f"{tag}_d"]))
        return f"{tag}_d"

    def conv(self, x, tag, ws, k=3, group=1, zp=ZP):
        """A k x k convolution (padding k // 2) with weight scales ws, its output at zp."""
        w = self.rng.integers(-127, 128, size=(C, C // group, k, k)).astype(np.int8)
        b = self.rng.integers(-2000, 2000, size=C).astype(np.int32)
        self.const(f"{tag}_w", w), self.const(f"{tag}_ws", ws)
        self.const(f"{tag}_wz", np.zeros(C, np.int8)), self.const(f"{tag}_b", b)
        self.const(f"{tag}_bs", (np.float32(SCALE) * ws).astype(np.float32))
        self.const(f"{tag}_bz", np.zeros(C, np.int32))
        for v in ("w", "b"):
            self.nodes.append(helper.make_node("DequantizeLinear", [f"{tag}_{v}", f"{tag}_{v}s", f"{tag}_{v}z"],
                                               [f"{tag}_{v}d"], axis=0))
        self.nodes.append(helper.make_node("Conv", [x, f"{tag}_wd", f"{tag}_bd"], [f"{tag}_y"],
                                           kernel_shape=[k, k], pads=[k // 2] * 4, group=group))
        return self.qdq(f"{tag}_y", tag, zp)

    def model(self, x, name) -> onnx.ModelProto:
        inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, W])
        out = helper.make_tensor_value_info(x, TensorProto.FLOAT, None)
        m = helper.make_model(helper.make_graph(self.nodes, name, [inp], [out], self.inits),
                              opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        return m


def _pairs_model(seed: int = 7, second_scale: float = 1.0) -> onnx.ModelProto:
    """x -> conv3x3 -> conv3x3 -> dw3x3 -> dw3x3, every activation quantized alike,
    the weights of each pair drawn separately with the same per-channel scales
    (times second_scale for the second layer of each pair)."""
    gr = _QdqGraph(np.random.default_rng(seed))
    wscale = {1: np.linspace(0.004, 0.012, C).astype(np.float32),
              C: np.linspace(0.02, 0.06, C).astype(np.float32)}
    x = gr.qdq("x", "in", ZP)
    for tag, group in (("c1", 1), ("c2", 1), ("d1", C), ("d2", C)):
        ws = (wscale[group] * np.float32(second_scale if tag.endswith("2") else 1)).astype(np.float32)
        x = gr.conv(x, tag, ws, group=group)
    return gr.model(x, "pairs")


def _compile(tmp: Path, target: str, model=None, **opts):
    path = tmp / "m.onnx"
    onnx.save(model or _pairs_model(), str(path))
    return api.compile(path, target=target, out_dir=tmp / "lib", kernel_scratch="any", **opts)


@pytest.mark.parametrize("inplace", [False, True])
def test_same_shape_layers_share_one_function_on_stm32f746(inplace):
    with tempfile.TemporaryDirectory(prefix="td-share-") as tmp:
        result = _compile(Path(tmp), "stm32f746", inplace=inplace)
        every = result.report["layers"]  # NCHW input: a transpose before and after the chain
        first_conv = [l["op"] for l in every].index("conv2d_s8")
        layers = every[first_conv:first_conv + 4]
        assert [l["op"] for l in layers] == ["conv2d_s8"] * 2 + ["depthwise_conv2d_s8"] * 2
        assert all(l["variant"].startswith("arm_dsp_") for l in layers), [l["variant"] for l in layers]
        text = (result.out_dir / "net.c").read_text()
        invoke = text[text.index("int net_invoke(void)"):]
        calls = re.findall(r"^    (\w+)\(", invoke, re.M)
        calls = [c for c in calls if c != "TD_LAYER_DONE"]
        calls = calls[first_conv:first_conv + 4]
        for first, second in ((0, 1), (2, 3)):
            fn = layers[first]["function"]
            assert fn.startswith(f"L{first + first_conv}_") and fn.endswith("_arm")
            assert layers[first]["shared_with"] is None
            if inplace and layers[first].get("inplace") != layers[second].get("inplace"):
                continue  # planned differently (e.g. one walks backward): its own code, fine
            assert layers[second]["shared_with"] == first + first_conv, layers[second]
            assert layers[second]["function"] == fn == layers[second]["kernel"]
            # defined once, called by both layers, each with its own weights
            assert len(re.findall(rf"static void {fn}\(", text)) == 1
            assert calls[first] == calls[second] == fn
            assert not re.search(rf"\bL{second + first_conv}_\w+_arm\b", text)
            assert f"net_L{second + first_conv}_" in invoke  # the second layer's weights array
        # the wrappers name no buffer or array of their layer: those are arguments
        for body in re.findall(r"TD_ARM_LAYER_FN static void .*?\n}", text, re.S):
            assert "net_arena" not in body and "net_L" not in body, body
        if not inplace:
            assert layers[1]["shared_with"] == first_conv and layers[3]["shared_with"] == first_conv + 2
        # every layer equals the golden model (check_on_target compiles anew, same options)
        check_on_target(_pairs_model(), "stm32f746", samples=2, inplace=inplace)


def test_layers_with_other_shifts_share_through_an_alternative(monkeypatch):
    """The second layer of each pair has weights scaled 2x: its smallest uniform
    requantization shift is one less than the first layer's (seen with sharing
    off).  Its alternative with the first one's shift (Call.alternatives) lets it
    share the function, and the outputs stay bit-exact."""
    model = _pairs_model(second_scale=2.0)
    with tempfile.TemporaryDirectory(prefix="td-share-") as tmp:
        result = _compile(Path(tmp), "stm32f746", model, inplace=False)
        every = result.report["layers"]
        c0 = [l["op"] for l in every].index("conv2d_s8")
        assert every[c0 + 1]["shared_with"] == c0 and every[c0 + 3]["shared_with"] == c0 + 2, every
        text = (result.out_dir / "net.c").read_text()
        assert text.count("TD_ARM_LAYER_FN static void") == 2
    with monkeypatch.context() as m, tempfile.TemporaryDirectory(prefix="td-share-") as tmp:
        m.setattr(codegen, "share_functions", lambda layers: None)
        alone = _compile(Path(tmp), "stm32f746", model, inplace=False)
        text = (alone.out_dir / "net.c").read_text()
        shifts = [int(v) for v in re.findall(r"(?:L\d+_|\.)uniform_shift = (-?\d+)", text)]
        assert len(shifts) == 4 and shifts[0] == shifts[1] + 1 and shifts[2] == shifts[3] + 1, shifts
    check_on_target(model, "stm32f746", samples=2, inplace=False)


def _two_convs_model(k: int, zps=(-3, 5, 5), seed: int = 11) -> onnx.ModelProto:
    """x -> conv kxk -> conv kxk (C -> C, padding k // 2), the activations quantized with
    the zero points zps (input, between, output): the second layer's input zero point
    differs from the first's, everything else the layers see is the same."""
    gr = _QdqGraph(np.random.default_rng(seed))
    ws = np.linspace(0.004, 0.012, C).astype(np.float32)
    x = gr.qdq("x", "in", zps[0])
    for tag, zp in (("c1", zps[1]), ("c2", zps[2])):
        x = gr.conv(x, tag, ws, k=k, zp=zp)
    return gr.model(x, "two")


@pytest.mark.parametrize("k", [1, 3])
def test_input_zero_point_matters_only_where_the_window_pads(k):
    """The input zero point is the value of a window's padding cells: two 1x1 convolutions
    that differ only in it share one function (the zero point is folded into the bias),
    two padded 3x3 ones do not, and both stay bit-exact on the emulator."""
    model = _two_convs_model(k)
    with tempfile.TemporaryDirectory(prefix="td-share-") as tmp:
        result = _compile(Path(tmp), "stm32f746", model, inplace=False)
        every = result.report["layers"]
        c0 = [l["op"] for l in every].index("conv2d_s8")
        assert [l["op"] for l in every[c0:c0 + 2]] == ["conv2d_s8"] * 2
        assert every[c0 + 1]["shared_with"] == (c0 if k == 1 else None), every[c0:c0 + 2]
        text = (result.out_dir / "net.c").read_text()
        zps = [int(v) for v in re.findall(r"L\d+_in_zero_point = (-?\d+)", text)]
        assert zps == ([0] if k == 1 else [-3, 5]), zps
    check_on_target(model, "stm32f746", samples=2, inplace=False)


def test_int8_weight_layers_share_across_output_zero_points():
    """--optimize size: two 1x1 convolutions that differ only in their output zero point
    (5 and 7; a transformer's projections, an inverted residual's linear bottlenecks) run
    one function, the zero point its run-time argument (it sets the compact records'
    rounding constant), and both equal the golden model on the M7."""
    model = _two_convs_model(1, zps=(-3, 5, 7))
    with tempfile.TemporaryDirectory(prefix="td-share-") as tmp:
        result = _compile(Path(tmp), "stm32f746", model, inplace=False, optimize="size")
        every = result.report["layers"]
        c0 = [l["op"] for l in every].index("conv2d_s8")
        assert [l["variant"] for l in every[c0:c0 + 2]] == ["arm_dsp_conv_1x1_w8"] * 2
        assert every[c0 + 1]["shared_with"] == c0, every[c0:c0 + 2]
        text = (result.out_dir / "net.c").read_text()
        invoke = text[text.index("int net_invoke(void)"):]
        calls = re.findall(rf"L{c0}_\w+_arm\((.*)\);", invoke)
        assert len(calls) == 2 and [c.split(", ")[-2] for c in calls] == ["5", "7"], calls
        assert "_out_zero_point" not in text
    check_on_target(model, "stm32f746", samples=2, inplace=False, optimize="size")


@pytest.mark.parametrize("seed", range(30))
def test_alternative_shifts_equal_tflite_rounding(seed):
    """Every alternative plan (a larger uniform shift: the alternatives a layer
    offers to share an earlier layer's function) is as exact as the default one:
    the fast form equals MultiplyByQuantizedMultiplier over the proven range."""
    from tinydeploy.backends import arm
    ch = random_requant_channels(np.random.default_rng(seed), min_real=1e-6, max_real=2.0,
                                 dead_multiplier=0.0)
    n, bias, wsum, wabs, off = ch["n"], ch["bias"], ch["wsum"], ch["wabs"], ch["off"]
    mult, shift, zp, lo, hi = ch["mult"], ch["shift"], ch["zp"], ch["lo"], ch["hi"]
    rng = np.random.default_rng(20_000 + seed)
    for bits in (8, 30):  # DSP and Helium scale-bit limits
        def make(e=None):
            return arm.requant_plan(bias, wsum, wabs, off, mult, shift, zp, lo, hi,
                                    max_scale_bits=bits, uniform_shift=e)
        plan = make()
        alts = arm.alternative_plans(plan, make)
        assert all(a.e == plan.e + 1 + i for i, a in enumerate(alts))
        for p in alts:
            for c in range(n):
                bound = abs(int(bias[c])) + 255 * int(wabs[c])
                accs = np.unique(np.concatenate([rng.integers(-bound, bound + 1, size=2000),
                                                 [-bound, bound, 0, 1, -1]])).astype(np.int64)
                if wabs[c] == 0 or mult[c] == 0:
                    accs = np.array([int(bias[c]) + off * int(wsum[c])], np.int64)
                want = _portable_requant(accs, mult[c], shift[c], zp, lo, hi)
                acc2 = (accs << int(p.scale_bits[c])) if wabs[c] and mult[c] else np.zeros_like(accs)
                got = arm.fast_requant(acc2, p.records[c].astype(np.int64), p)
                assert np.array_equal(got, want), (c, p.e)


def test_shared_function_profile_counts_each_layer():
    """The per-layer profile (tinydeploy bench) counts by call site (the hook after each
    layer), so two layers that run one function each get their own, nonzero count."""
    with tempfile.TemporaryDirectory(prefix="td-share-") as tmp:
        result = _compile(Path(tmp), "nucleo-l4r5zi", inplace=False)
        first_conv = [l["op"] for l in result.report["layers"]].index("conv2d_s8")
        assert result.report["layers"][first_conv + 1]["shared_with"] == first_conv
        bench = on_target.measure(result, Path(tmp) / "work")
        every = [l["instructions"] for l in bench.layers]
        assert len(every) == len(result.report["layers"]) and all(every), every
        counts = every[first_conv:first_conv + 4]
        assert all(c > 1000 for c in counts), counts
        # the same function on the same shape: nearly the same count, not 0 and twice
        assert abs(counts[0] - counts[1]) < 0.05 * counts[0], counts
        assert sum(counts) <= bench.instructions_per_inference


def test_share_functions_renames_only_the_layers_own_names():
    """The dedup step on hand-made calls: the layer's own names (SYM_..., L<i>_...,
    (L<i>)) are placeholders; weights arrays (NAME_SYM_...) and arena pointers are
    not renamed; text naming the layer's own parameter struct is never shared."""
    def layer(i, name, statics, args, ptype=None):
        sym = f"L{i}_{name}"
        call = Call("td_kernel" if ptype else f"{sym}_fn", None, [a.format(sym=sym) for a in args], ptype=ptype,
                    params={"p": f"&{sym}_aux"} if ptype else None,
                    statics=[s.format(sym=sym, pre=f"L{i}") for s in statics])
        return Layer(i, None, call, sym, "out", 1)

    body = ["enum {{ {pre}_n = 4 }};",
            "static void {sym}_fn(const int8_t *in, const void *wv) {{ k(in, wv, {pre}_n, M({pre})); }}"]
    other = ["enum {{ {pre}_n = 5 }};", body[1]]
    layers = [layer(0, "a", body, ["in", "net_{sym}_blob"]),
              layer(1, "b", body, ["(void *)(net_arena + 16)", "net_{sym}_blob"]),
              layer(2, "c", other, ["in", "net_{sym}_blob"]),
              layer(3, "d", ["static const S {sym}_aux = {{1}};"], ["in"], ptype="P"),
              layer(4, "e", ["static const S {sym}_aux = {{1}};"], ["in"], ptype="P"),
              layer(5, "f", ["static const S {sym}_aux = {{&{sym}}};"], ["in"], ptype="P"),
              layer(6, "g", ["static const S {sym}_aux = {{&{sym}}};"], ["in"], ptype="P")]
    codegen.share_functions(layers)
    assert [l.shared_with for l in layers] == [None, 0, None, None, 3, None, None]
    b = layers[1].call
    assert b.fn == "L0_a_fn" and b.statics == []
    assert b.args == ["(void *)(net_arena + 16)", "net_L1_b_blob"]  # its own buffers and weights
    # a runtime kernel with a per-layer parameter struct: only its file-scope struct is shared
    assert layers[4].call.params == {"p": "&L3_d_aux"} and layers[4].call.fn == "td_kernel"
    assert layers[2].call.fn == "L2_c_fn" and layers[2].call.statics


def test_share_functions_takes_the_alternative_most_layers_can_take():
    """Layer 0 can be B (its own) or A, layer 1 only B, layers 2 and 3 only A: the
    largest group (A: 0, 2, 3) first, then layer 1 alone keeps its own call."""
    def layer(i, texts):
        sym = f"L{i}_x"
        calls = [Call(f"{sym}_fn", None, [], statics=[f"static void {sym}_fn(void) {{ {t}; }}"])
                 for t in texts]
        calls[0].alternatives = calls[1:]
        return Layer(i, None, calls[0], sym, "out", 1)

    layers = [layer(0, ["b()", "a()"]), layer(1, ["b()"]), layer(2, ["a()"]), layer(3, ["a()"])]
    codegen.share_functions(layers)
    assert [l.shared_with for l in layers] == [None, None, 0, 0]
    assert layers[0].call.statics == ["static void L0_x_fn(void) { a(); }"]
    assert layers[1].call.statics == ["static void L1_x_fn(void) { b(); }"]
    assert layers[3].call.fn == "L0_x_fn" and not layers[3].call.statics
    assert all(not l.call.alternatives for l in layers)


def test_rv32_zve32x_output_unchanged_by_sharing():
    """The dedup step runs for every backend: on the RISC-V vector target the chain
    still equals the golden model."""
    check_on_target(_pairs_model(), "rv32-zve32x", samples=2)
