"""Fused attention (tinydeploy/ops/attention.py): the chain q @ k^T -> scale -> softmax
-> @ v of an exported attention block becomes one row-wise op whose scratch is one row
of scores, O(N), instead of the [heads, N, N] score tensor.

Float32 against onnxruntime; int8 C == golden model bit for bit on the host and the
emulated cores; the fused int8 results equal the unfused layers' exactly; peak RAM is
lower than unfused and report.json says how the scratch grows with the tokens."""
import math
import subprocess
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import transformer_models as tm

from tinydeploy import api
from tinydeploy.ops import attention

ort = pytest.importorskip("onnxruntime")

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror"]
SCALES = ["mul", "mul_left", "div", "on_q", "none"]


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def attention_block(scale: str = "mul", n: int = 9, d: int = 16, heads: int = 2,
                    probs_output: bool = False, softmax_axis: int = -1, seed: int = 0) -> onnx.ModelProto:
    """x [1, n, d] -> one attention block as PyTorch exports it (qkv linear, reshape,
    transpose, gather, q @ k^T, the scale, softmax, @ v, output projection), with the
    scale as Mul(scores, c), Mul(c, scores), Div(scores, sqrt(hd)), Mul(q, c) before the
    MatMul, or none. probs_output: the probabilities are also a model output."""
    g = tm._Graph(np.random.default_rng(seed))
    hd = d // heads
    s = "/attn"
    qkv = g.linear("x", d, 3 * d, f"{s}/qkv")
    qkv = g.node("Reshape", [qkv, g.shape_const(f"{s}.qkv_shape", [1, n, 3, heads, hd])], s)
    qkv = g.node("Transpose", [qkv], s, perm=[2, 0, 3, 1, 4])
    q, k, v = (g.node("Gather", [qkv, g.const(f"{s}.idx{i}", i, np.int64)], s, axis=0) for i in range(3))
    if scale == "on_q":
        q = g.node("Mul", [q, g.const(f"{s}.scale", hd ** -0.5)], s)
    kt = g.node("Transpose", [k], s, perm=[0, 1, 3, 2])
    scores = g.node("MatMul", [q, kt], s)
    if scale == "mul":
        scores = g.node("Mul", [scores, g.const(f"{s}.scale", hd ** -0.5)], s)
    elif scale == "mul_left":
        scores = g.node("Mul", [g.const(f"{s}.scale", hd ** -0.5), scores], s)
    elif scale == "div":
        scores = g.node("Div", [scores, g.const(f"{s}.scale", math.sqrt(hd))], s)
    probs = g.node("Softmax", [scores], s, axis=softmax_axis)
    ctx = g.node("Transpose", [g.node("MatMul", [probs, v], s)], s, perm=[0, 2, 1, 3])
    ctx = g.node("Reshape", [ctx, g.shape_const(f"{s}.ctx_shape", [1, n, d])], s)
    y = g.linear(ctx, d, d, f"{s}/proj")
    outputs = [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, n, d])]
    if probs_output:
        outputs.append(helper.make_tensor_value_info(probs, TensorProto.FLOAT, [1, heads, n, n]))
    return g.model([helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n, d])], outputs, 13,
                   f"attention_{scale}")


def small_vit(**kw) -> onnx.ModelProto:
    """A ViT small enough for quick emulated runs: 17 tokens, width 32, 2 heads."""
    return tm.tiny_vit(**{**dict(opset=13, depth=2, dim=32, heads=2, image=16, patch=4), **kw})


def _save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)


def _ort(path: str, x: dict) -> list:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = next(iter(x))
    outs = [sess.run(None, {name: s[None]}) for s in x[name]]
    return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]


def _kinds(result) -> list:
    return [op.kind for op in result.graph.ops]


@pytest.fixture
def unfused(monkeypatch):
    """Call it to compile the following models without the fusion."""
    return lambda: monkeypatch.setattr(attention, "FUSE", False)


# --------------------------------------------------------------------------
# The fusion is formed
# --------------------------------------------------------------------------
@pytest.mark.parametrize("quantize", ["int8", "float32"])
def test_the_vit_attention_blocks_become_one_op_each(tmp_path, quantize):
    path = _save(small_vit(), tmp_path / "vit.onnx")
    calib = {"image": _rng("calib").normal(0, 1, (8, 3, 16, 16)).astype(np.float32)}
    r = api.compile(path, quantize=quantize, **({"calib": calib} if quantize == "int8" else {}))
    kind = "attention_s8" if quantize == "int8" else "attention"
    kinds = _kinds(r)
    assert kinds.count(kind) == 2
    assert not {"softmax", "softmax_s8", "batch_matmul", "batch_matmul_s8", "mul_s8"} & set(kinds)
    # q, k and v are read where they are in the qkv tensor: no slice copies are left
    assert not [op for op in r.graph.ops if "/attn/" in op.name and op.kind.startswith("slice")]
    layers = [l for l in r.report["layers"] if l["op"] == kind]
    assert [l["name"] for l in layers] == ["/blocks.0/attn/attention", "/blocks.1/attn/attention"]
    elem = 1 if quantize == "int8" else 4
    assert layers[0]["attention"]["tokens"] == 17
    # float: one row of scores; int8: one row and the sums of each key and value column
    assert layers[0]["attention"]["scratch_bytes"] == (17 * 4 if quantize == "float32" else 17 + 4 * (17 + 16))
    assert layers[0]["attention"]["unfused_scores_bytes"] == 2 * 17 * 17 * elem
    summary = r.report["attention"]
    assert summary["fused_layers"] == 2 and summary["tokens"] == 17 and "O(N)" in summary["note"]
    assert any(t["tensor"] == "scratch:/blocks.0/attn/attention"
               for e in r.report["timeline"] for t in e["live"])


@pytest.mark.parametrize("scale", SCALES)
def test_every_scale_form_is_fused(tmp_path, scale):
    path = _save(attention_block(scale), tmp_path / "a.onnx")
    assert _kinds(api.compile(path, quantize="float32")).count("attention") == 1
    calib = {"x": _rng(scale).normal(0, 1, (8, 9, 16)).astype(np.float32)}
    kinds = _kinds(api.compile(path, calib=calib))
    assert kinds.count("attention_s8") == 1 and "softmax_s8" not in kinds


@pytest.mark.parametrize("case", ["probs_output", "softmax_over_queries"])
def test_other_chains_keep_their_layers(tmp_path, case):
    """Probabilities read elsewhere, a softmax over another axis: not fused, and right."""
    kw = dict(probs_output=True) if case == "probs_output" else dict(softmax_axis=2)
    path = _save(attention_block("mul", **kw), tmp_path / "a.onnx")
    r = api.compile(path, quantize="float32")
    assert "attention" not in _kinds(r) and "softmax" in _kinds(r)
    x = {"x": _rng(case).normal(0, 1, (2, 9, 16)).astype(np.float32)}
    got = api.run(path, x, quantize="float32").outputs
    for name, want in zip(got, _ort(path, x)):
        np.testing.assert_allclose(got[name].reshape(want.shape), want, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------
# Float32
# --------------------------------------------------------------------------
@pytest.mark.parametrize("scale", SCALES)
def test_float32_matches_onnxruntime(tmp_path, scale):
    path = _save(attention_block(scale), tmp_path / "a.onnx")
    x = {"x": _rng(scale).normal(0, 1, (3, 9, 16)).astype(np.float32)}
    got = api.run(path, x, quantize="float32").outputs
    want = _ort(path, x)[0]
    np.testing.assert_allclose(next(iter(got.values())).reshape(want.shape), want, rtol=1e-4, atol=1e-5)


def test_float32_vit_matches_onnxruntime_and_the_unfused_build(tmp_path, unfused):
    path = _save(small_vit(), tmp_path / "vit.onnx")
    x = {"image": _rng("f32").normal(0, 1, (2, 3, 16, 16)).astype(np.float32)}
    fused = api.run(path, x, quantize="float32").outputs["logits"]
    want = _ort(path, x)[0]
    np.testing.assert_allclose(fused.reshape(want.shape), want, rtol=1e-4, atol=1e-4)
    unfused()
    plain = api.run(path, x, quantize="float32").outputs["logits"]
    np.testing.assert_allclose(fused, plain, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------
# int8: bit-exact, and exactly the unfused layers' results
# --------------------------------------------------------------------------
@pytest.mark.parametrize("scale", SCALES)
def test_int8_c_equals_golden_and_the_unfused_layers(tmp_path, scale, unfused):
    path = _save(attention_block(scale), tmp_path / "a.onnx")
    rng = _rng("int8" + scale)
    calib = {"x": rng.normal(0, 1, (16, 9, 16)).astype(np.float32)}
    x = {"x": rng.normal(0, 1, (4, 9, 16)).astype(np.float32)}
    c = api.run(path, x, calib=calib).outputs
    golden = api.run(path, x, calib=calib, golden=True).outputs
    unfused()
    plain_c = api.run(path, x, calib=calib).outputs
    name = next(iter(c))
    np.testing.assert_array_equal(c[name], golden[name])
    np.testing.assert_array_equal(c[name], plain_c[name])


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vit")
    rng = _rng("vit")
    return dict(path=_save(small_vit(), tmp / "vit.onnx"),
                calib={"image": rng.normal(0, 1, (8, 3, 16, 16)).astype(np.float32)},
                x={"image": rng.normal(0, 1, (2, 3, 16, 16)).astype(np.float32)})


@pytest.mark.parametrize("target", ["host", "stm32f746", "cortex-m55", "rv32-zve32x"])
def test_vit_int8_bit_exact(vit, target):
    c = api.run(vit["path"], vit["x"], target=target, calib=vit["calib"])
    golden = api.run(vit["path"], vit["x"], target=target, calib=vit["calib"], golden=True)
    assert c.report["attention"]["fused_layers"] == 2
    np.testing.assert_array_equal(c.outputs["logits"], golden.outputs["logits"])


def test_vit_int8_fused_equals_unfused(vit, unfused):
    fused = api.run(vit["path"], vit["x"], calib=vit["calib"], golden=True).outputs["logits"]
    unfused()
    plain = api.run(vit["path"], vit["x"], calib=vit["calib"], golden=True)
    assert "attention" not in plain.report
    np.testing.assert_array_equal(fused, plain.outputs["logits"])


# --------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------
def test_peak_ram_is_lower_than_unfused_and_grows_slower(tmp_path, unfused):
    """Float32 builds (no calibration: fast); the int8 figures are in docs/transformers.md."""
    peaks = {}
    for image in (16, 32):
        path = _save(tm.tiny_vit(opset=13, depth=1, image=image), tmp_path / f"vit{image}.onnx")
        peaks[image] = api.compile(path, target="stm32f746", quantize="float32").report["peak_ram_bytes"]
    unfused()
    plain = {}
    for image in (16, 32):
        path = str(tmp_path / f"vit{image}.onnx")
        plain[image] = api.compile(path, target="stm32f746", quantize="float32").report["peak_ram_bytes"]
    for image in peaks:
        assert peaks[image] < plain[image]
    # 17 -> 65 tokens: the unfused scores grow 16-fold, the fused op's activations 4-fold
    assert peaks[32] - peaks[16] < (plain[32] - plain[16]) / 2


# --------------------------------------------------------------------------
# Generated C
# --------------------------------------------------------------------------
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_generated_c_compiles_without_warnings(vit, tmp_path, cc):
    for quantize in ("int8", "float32"):
        out = tmp_path / quantize
        api.compile(vit["path"], out_dir=out, quantize=quantize,
                    **({"calib": vit["calib"]} if quantize == "int8" else {}))
        for src in sorted(out.glob("*.c")):
            subprocess.run([cc, *WARNINGS, f"-I{out}", "-c", str(src), "-o", str(tmp_path / "x.o")],
                           check=True, capture_output=True, text=True)
