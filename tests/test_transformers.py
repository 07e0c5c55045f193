"""Tiny vision transformers and a PaddleOCR-style recognizer end to end (issue 15):
built node for node as PyTorch exports them (tests/transformer_models.py), float32
against onnxruntime, int8 C == golden model bit for bit on emulated Cortex-M7,
Cortex-M55 and RISC-V vector cores, and int8 accuracy no worse than 3 dB below
onnxruntime's own static int8 quantizer on the same calibration data."""
import zlib

import numpy as np
import onnx
import pytest

import transformer_models as tm

from tinydeploy import api

ort = pytest.importorskip("onnxruntime")

VIT_VARIANTS = {  # the three exports of issue 15's "done when"
    "opset13-erf-cls": dict(opset=13, gelu="erf", pool="cls"),
    "opset17-erf-cls": dict(opset=17, gelu="erf", pool="cls"),
    "opset13-tanh-mean": dict(opset=13, gelu="tanh", pool="mean"),
}


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)


def _session(path: str):
    opts = ort.SessionOptions()
    # onnxruntime's extended fusions fail on some of these graphs ("Attempt to replace the
    # existing tensor"); the basic level computes the same function
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _ort_outputs(path: str, name: str, x: np.ndarray) -> np.ndarray:
    sess = _session(path)
    return np.concatenate([sess.run(None, {name: s[None]})[0] for s in x])


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    ref, got = ref.astype(np.float64).ravel(), got.astype(np.float64).ravel()
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - got) ** 2), 1e-30)))


def ort_int8_sqnr(path: str, name: str, calib: np.ndarray, x: np.ndarray, tmp) -> float:
    """onnxruntime's static int8 quantizer (QDQ, int8 activations and weights, min-max
    calibration on `calib`): its output SQNR against the float model on `x`."""
    from onnxruntime import quantization as oq

    class Reader(oq.CalibrationDataReader):
        def __init__(self):
            self.samples = iter([{name: s[None]} for s in calib])

        def get_next(self):
            return next(self.samples, None)

    qpath = str(tmp / "ort_int8.onnx")
    oq.quantize_static(path, qpath, Reader(), quant_format=oq.QuantFormat.QDQ,
                       activation_type=oq.QuantType.QInt8, weight_type=oq.QuantType.QInt8)
    return sqnr_db(_ort_outputs(path, name, x), _ort_outputs(qpath, name, x))


@pytest.mark.parametrize("variant", VIT_VARIANTS)
def test_tiny_vit_float32_matches_onnxruntime(tmp_path, variant):
    path = _save(tm.tiny_vit(**VIT_VARIANTS[variant]), tmp_path / "vit.onnx")
    x = _rng(variant).normal(0, 1, (3, 3, 32, 32)).astype(np.float32)
    got = api.run(path, {"image": x}, target="host", quantize="float32").outputs["logits"]
    want = _ort_outputs(path, "image", x)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-4)


def test_text_recognizer_float32_matches_onnxruntime(tmp_path):
    path = _save(tm.text_recognizer(), tmp_path / "rec.onnx")
    x = _rng("rec").uniform(0, 1, (3, 1, 8, 32)).astype(np.float32)
    got = api.run(path, {"line": x}, target="host", quantize="float32").outputs["probs"]
    want = _ort_outputs(path, "line", x)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def vit_int8(tmp_path_factory):
    """The opset-13 ViT (decomposed LayerNorm, Erf GELU, class token) with its data."""
    tmp = tmp_path_factory.mktemp("vit")
    path = _save(tm.tiny_vit(opset=13), tmp / "vit.onnx")
    rng = _rng("vit-int8")
    calib = rng.normal(0, 1, (32, 3, 32, 32)).astype(np.float32)
    x = rng.normal(0, 1, (8, 3, 32, 32)).astype(np.float32)
    return dict(path=path, calib=calib, x=x, tmp=tmp)


def test_tiny_vit_int8_within_3db_of_onnxruntime_quantizer(vit_int8):
    v = vit_int8
    ours = api.run(v["path"], {"image": v["x"]}, target="host", calib={"image": v["calib"]}).outputs["logits"]
    ref = _ort_outputs(v["path"], "image", v["x"])
    theirs = ort_int8_sqnr(v["path"], "image", v["calib"], v["x"], v["tmp"])
    assert sqnr_db(ref, ours.reshape(ref.shape)) >= theirs - 3.0, (sqnr_db(ref, ours.reshape(ref.shape)), theirs)


@pytest.mark.parametrize("target", ["stm32f746", "cortex-m55", "rv32-zve32x"])
def test_tiny_vit_int8_bit_exact_on_emulated_cores(vit_int8, target):
    v = vit_int8
    x = {"image": v["x"][:2]}
    c = api.run(v["path"], x, target=target, calib={"image": v["calib"]})
    golden = api.run(v["path"], x, target=target, calib={"image": v["calib"]}, golden=True)
    np.testing.assert_array_equal(c.outputs["logits"], golden.outputs["logits"])


def test_tiny_vit_residual_stream_is_not_relaid_per_block(vit_int8):
    """The patch embedding hands the token sequence over transposed (its Transpose is a free
    alias); once the position embedding is added it is in its logical order, which the layer
    norms and linear layers read, and the residual adds keep it so (before: four relayouts
    per block). Data movements left: the input image's, the patch embedding's (the conv's
    NHWC output to NCHW for the flatten), the position-embedded sequence's, and each block's
    head merge (attention output (H, N, d) -> (N, H, d))."""
    v = vit_int8
    result = api.compile(v["path"], target="rv32-zve32x", calib={"image": v["calib"][:8]},
                         out_dir=v["tmp"] / "layout")
    moves = [op.name for op in result.graph.ops if op.kind == "transpose_s8"]
    assert len(moves) == 3 + 4, moves  # 4 blocks


def test_text_recognizer_int8_bit_exact_and_within_3db_of_onnxruntime_quantizer(tmp_path):
    """The PaddleOCR-style recognizer (convolutions, the map read as a sequence, one
    attention block, a per-column classifier) in int8: C == golden on an Arm and a RISC-V
    core, and its SQNR against the float model no worse than 3 dB below onnxruntime's."""
    path = _save(tm.text_recognizer(), tmp_path / "rec.onnx")
    rng = _rng("rec-int8")
    calib = rng.uniform(0, 1, (32, 1, 8, 32)).astype(np.float32)
    x = rng.uniform(0, 1, (6, 1, 8, 32)).astype(np.float32)
    ours = api.run(path, {"line": x}, target="host", calib={"line": calib}).outputs["probs"]
    ref = _ort_outputs(path, "line", x)
    theirs = ort_int8_sqnr(path, "line", calib, x, tmp_path)
    assert sqnr_db(ref, ours.reshape(ref.shape)) >= theirs - 3.0, (sqnr_db(ref, ours.reshape(ref.shape)), theirs)
    for target in ("nucleo-l4r5zi", "esp32-c3"):
        c = api.run(path, {"line": x[:2]}, target=target, calib={"line": calib})
        golden = api.run(path, {"line": x[:2]}, target=target, calib={"line": calib}, golden=True)
        np.testing.assert_array_equal(c.outputs["probs"], golden.outputs["probs"])
