"""`tinydeploy validate` (issue 17): the deployed model against the original model in
onnxruntime. The metrics are recomputed here from `run`'s outputs and onnxruntime's own,
so the test checks the numbers, not only that they exist."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinydeploy import api
from tinydeploy.errors import TinydeployError

ort = pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits"
MODEL, CALIB, TEST = str(DIGITS / "digits_cnn.onnx"), str(DIGITS / "calib.npz"), str(DIGITS / "test.npz")
KWS = Path("/work/shared/models/mlperf_tiny/kws")
if not KWS.exists():
    KWS = ROOT.parent / "shared" / "models" / "mlperf_tiny" / "kws"


def _ort_outputs(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: s[None]})[0] for s in x])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tinydeploy", *args], capture_output=True, text=True)


def test_int8_metrics_against_onnxruntime_on_host():
    with np.load(TEST) as d:
        x, labels = d["input"][:120], d["label"][:120]
    data = {"input": x, "label": labels}
    r = api.validate(MODEL, "host", data, calib=CALIB)
    deployed = api.run(MODEL, {"input": x}, target="host", calib=CALIB).outputs["probs"].reshape(len(x), -1)
    original = _ort_outputs(MODEL, x).reshape(len(x), -1)
    assert r.matches_golden and r.max_abs_diff_golden == 0 and r.samples == 120 and r.dtype == "int8"
    (m,) = r.outputs
    err = deployed.astype(np.float64) - original
    assert m.name == "probs" and m.shape == [10]
    assert m.rmse == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-9)
    assert m.mae == pytest.approx(np.mean(np.abs(err)), rel=1e-9)
    assert m.l2_relative == pytest.approx(np.linalg.norm(err) / np.linalg.norm(original), rel=1e-6)
    cos = np.sum(deployed * original) / (np.linalg.norm(deployed) * np.linalg.norm(original))
    assert m.cosine == pytest.approx(cos, rel=1e-6)
    assert m.sqnr_db == pytest.approx(10 * np.log10(np.sum(original ** 2) / np.sum(err ** 2)), rel=1e-6)
    assert m.top1_agreement == pytest.approx(np.mean(deployed.argmax(1) == original.argmax(1)))
    assert m.accuracy == pytest.approx(np.mean(deployed.argmax(1) == labels))
    assert m.reference_accuracy == pytest.approx(np.mean(original.argmax(1) == labels))
    assert m.sqnr_db > 25 and m.top1_agreement > 0.95
    # every int8 layer has its SQNR against the float model, worst first
    kinds = {layer["op"] for layer in r.layers}
    assert {"conv2d_s8", "fully_connected_s8"} <= kinds
    sqnrs = [layer["sqnr_db"] for layer in r.layers]
    assert sqnrs == sorted(sqnrs) and 20 < sqnrs[0] < 80


def test_float32_build_is_within_float_rounding_of_onnxruntime():
    with np.load(TEST) as d:
        x = d["input"][:40]
    r = api.validate(MODEL, "host", {"input": x}, quantize="float32")
    (m,) = r.outputs
    assert r.dtype == "float32" and r.matches_golden and r.layers == []
    assert m.top1_agreement == 1.0 and m.l2_relative < 1e-5 and m.cosine > 1 - 1e-9
    assert m.accuracy is None  # no labels given


def test_cli_on_emulated_target_prints_the_metric_set(tmp_path):
    with np.load(TEST) as d:
        np.savez(tmp_path / "few.npz", input=d["input"][:20], label=d["label"][:20])
    p = _cli("validate", MODEL, "-t", "nucleo-l4r5zi", "--calib", CALIB, "--inputs",
             str(tmp_path / "few.npz"), "-q")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "digits_cnn.onnx on nucleo-l4r5zi (int8) against digits_cnn.onnx in onnxruntime, 20 samples"
    assert lines[1] == "C == golden model: bit-exact (max |diff| 0)"
    assert lines[2] == "output 'probs' (10,):"
    for word in ("top-1 agreement", "accuracy", "RMSE", "MAE", "L2 relative", "cosine", "SQNR",
                 "lowest per-layer SQNR", "instructions per inference"):
        assert word in p.stdout
    p = _cli("validate", MODEL, "-t", "host", "--calib", CALIB, "--inputs", str(tmp_path / "few.npz"),
             "--json", "-q")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["matches_golden"] is True and d["outputs"][0]["accuracy"] is not None
    assert set(d["outputs"][0]) >= {"rmse", "mae", "l2_relative", "cosine", "sqnr_db", "top1_agreement"}


@pytest.mark.skipif(not KWS.exists(), reason="the shared MLPerf Tiny models are not beside the checkout")
def test_mlperf_qdq_model_equals_onnxruntime_and_array_choice():
    """The QDQ kws model (int8 input and output in ONNX) against itself in onnxruntime: the
    int8 input is fed quantized and the output dequantized, so the outputs agree; the float
    inputs are picked from the reference file with FILE.npz:ARRAY. (Not to the bit:
    onnxruntime 1.32's QDQ execution is a few output codes off TFLite's integer arithmetic on
    kws, at most 6 on the reference inputs, while tinydeploy equals TFLite Micro,
    tests/test_int8_models.py; an output code is 1/256.)"""
    r = api.validate(str(KWS / "int8_qdq.onnx"), "host", f"{KWS / 'reference.npz'}:float_inputs")
    (m,) = r.outputs
    assert r.matches_golden and m.top1_agreement == 1.0
    assert m.mae <= 2 / 256 and (m.sqnr_db is None or m.sqnr_db > 30)
    r = api.validate(str(KWS / "int8_qdq.onnx"), "host", f"{KWS / 'reference.npz'}:float_inputs",
                     reference=str(KWS / "float.onnx"))
    assert r.reference == "float.onnx" and r.outputs[0].rmse > 0 and len(r.layers) >= 10


def test_errors(tmp_path):
    with np.load(TEST) as d:
        x = d["input"][:3]
    with pytest.raises(TinydeployError) as e:
        api.validate(MODEL, "host", {"input": x.astype(np.float64)}, calib=CALIB)
    assert str(e.value) == ("validate compares with the original float model: give float32 inputs "
                            "(input 'input' is float64)")
    (tmp_path / "m.tflite").write_bytes(b"")
    with pytest.raises(TinydeployError) as e:
        api.validate(MODEL, "host", {"input": x}, calib=CALIB, reference=str(tmp_path / "m.tflite"))
    assert str(e.value) == (f"{tmp_path / 'm.tflite'} is a .tflite file, which onnxruntime cannot run: "
                            "pass the original ONNX model with --reference MODEL.onnx")
    np.savez(tmp_path / "in.npz", a=x, b=x)
    p = _cli("validate", MODEL, "--calib", CALIB, "--inputs", f"{tmp_path / 'in.npz'}:c", "-q")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert f"inputs file {tmp_path / 'in.npz'} has no array 'c'; it has ['a', 'b']" in p.stderr
    p = _cli("run", MODEL, "--calib", CALIB, "--inputs", f"{tmp_path / 'in.npz'}:b", "-o",
             str(tmp_path / "out.npz"), "-q")
    assert p.returncode == 0, p.stderr
    p = _cli("validate", MODEL, "--calib", CALIB, "-q")
    assert p.returncode == 2 and "--inputs" in p.stderr


def test_missing_onnxruntime_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with np.load(TEST) as d:
        x = d["input"][:2]
    with pytest.raises(TinydeployError) as e:
        api.validate(MODEL, "host", {"input": x}, calib=CALIB)
    assert str(e.value) == ("validate runs the original model in onnxruntime, which is not installed: "
                            "pip install onnxruntime (or pip install 'tinydeploy[validate]')")


def test_report_has_a_validation_section(tmp_path):
    """`report --validate DATA.npz`: the same figures as `validate`, from the same compile."""
    with np.load(TEST) as d:
        np.savez(tmp_path / "few.npz", input=d["input"][:60], label=d["label"][:60])
    p = _cli("report", MODEL, "-t", "host", "--calib", CALIB, "--validate", str(tmp_path / "few.npz"),
             "-o", str(tmp_path / "r.html"), "--json", "-q")
    assert p.returncode == 0, p.stderr
    page = json.loads(p.stdout)["validation"]
    alone = api.validate(MODEL, "host", str(tmp_path / "few.npz"), calib=CALIB)
    assert page["outputs"][0]["accuracy"] == alone.outputs[0].accuracy
    assert page["outputs"][0]["sqnr_db"] == pytest.approx(alone.outputs[0].sqnr_db)
    text = (tmp_path / "r.html").read_text()
    assert 'id="validation"' in text and text.count('<tr class="output">') == 1
    assert text.count('<tr class="vlayer">') == len(alone.layers) and "bit-exact" in text
