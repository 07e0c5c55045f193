"""int8: the golden model against TFLite Micro, the generated C against the golden model."""
import numpy as np
import pytest

import tinydeploy
from tinydeploy import api, golden, ops
from conftest import EXAMPLES, MLPERF, model_path, reference


@pytest.fixture(scope="module", params=MLPERF)
def qdq(request):
    name = request.param
    return name, api.build_graph(model_path(name, "int8_qdq.onnx")), reference(name)


def test_golden_equals_tflite_micro_reference(qdq):
    name, g, ref = qdq
    y = golden.run(g, ref["int8_inputs"])
    assert np.array_equal(y, ref["tflm_int8_outputs"].reshape(len(y), -1))


def test_golden_equals_tflite_micro_interpreter_on_random_inputs(qdq):
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime",
                                  reason="the tflite-micro package is a test dependency")
    name, g, ref = qdq
    interp = runtime.Interpreter.from_file(str(model_path(name, "int8.tflite")))
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, size=(3,) + ref["int8_inputs"].shape[1:], dtype=np.int8)
    want = []
    for sample in x:
        interp.set_input(sample[None], 0)
        interp.invoke()
        want.append(interp.get_output(0).reshape(-1))
    assert np.array_equal(golden.run(g, x), np.stack(want))


def test_host_c_equals_golden(qdq):
    name, g, ref = qdq
    result = tinydeploy.run(model_path(name, "int8_qdq.onnx"), {"x": ref["int8_inputs"]}, target="host")
    y = next(iter(result.outputs.values())).reshape(len(ref["int8_inputs"]), -1)
    assert y.dtype == np.int8
    assert np.array_equal(y, golden.run(g, ref["int8_inputs"]))


def test_mlperf_macs_match_the_published_counts(qdq):
    name, g, _ = qdq
    published = {"kws": 2.66e6, "resnet8": 12.50e6, "vww": 7.49e6, "ad": 0.26e6}[name]
    assert abs(sum(ops.macs(g, op) for op in g.ops) - published) <= 0.01e6 * (1 if name != "ad" else 0.5)


def test_calibrated_digits_keeps_float_accuracy():
    model = EXAMPLES / "digits" / "digits_cnn.onnx"
    with np.load(EXAMPLES / "digits" / "test.npz") as d:
        x, labels = d["input"], d["label"]
    f = tinydeploy.run(model, {"input": x}, quantize="float32").outputs["probs"]
    q = tinydeploy.run(model, {"input": x}, calib=str(EXAMPLES / "digits" / "calib.npz"))
    acc_f = np.mean(f.reshape(len(x), -1).argmax(1) == labels)
    acc_q = np.mean(q.outputs["probs"].reshape(len(x), -1).argmax(1) == labels)
    assert acc_f > 0.95
    assert acc_q >= acc_f - 0.01
    sqnr = [l["sqnr_db"] for l in q.report["layers"] if "sqnr_db" in l]
    assert len(sqnr) >= 5 and min(sqnr) > 10


@pytest.mark.parametrize("method", ["percentile", "mse"])
def test_other_calibration_methods_keep_accuracy(method):
    model = EXAMPLES / "digits" / "digits_cnn.onnx"
    with np.load(EXAMPLES / "digits" / "test.npz") as d:
        x, labels = d["input"], d["label"]
    f = tinydeploy.run(model, {"input": x}, quantize="float32").outputs["probs"]
    q = tinydeploy.run(model, {"input": x}, calib=str(EXAMPLES / "digits" / "calib.npz"), calib_method=method)
    acc_f = np.mean(f.reshape(len(x), -1).argmax(1) == labels)
    assert np.mean(q.outputs["probs"].reshape(len(x), -1).argmax(1) == labels) >= acc_f - 0.01


def test_golden_model_from_the_package_and_cli(tmp_path):
    ref = reference("ad")
    g = api.build_graph(model_path("ad", "int8_qdq.onnx"))
    assert np.array_equal(tinydeploy.golden.run(g, ref["int8_inputs"][:2]), ref["tflm_int8_outputs"][:2])
    from conftest import cli
    np.savez(tmp_path / "in.npz", input_1=ref["int8_inputs"][:2])
    proc = cli("run", model_path("ad", "int8_qdq.onnx"), "--golden", "--raw", "--inputs", tmp_path / "in.npz",
               "-o", tmp_path / "out.npz", "-q")
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "out.npz") as out:
        assert np.array_equal(next(iter(out.values())), ref["tflm_int8_outputs"][:2])


def test_calibrated_c_equals_golden(tmp_path):
    model = EXAMPLES / "digits" / "digits_cnn.onnx"
    calib = str(EXAMPLES / "digits" / "calib.npz")
    with np.load(EXAMPLES / "digits" / "test.npz") as d:
        x = d["input"][:40]
    res = tinydeploy.run(model, {"input": x}, calib=calib, raw=False)
    g = api.build_graph(model, calib=calib)
    s, z = g.tensors[g.inputs[0]].quant.scalar()
    xq = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
    yq = golden.run(g, xq)
    so, zo = g.tensors[g.outputs[0]].quant.scalar()
    assert np.array_equal(res.outputs["probs"].reshape(len(x), -1), ((yq.astype(np.float32) - zo) * np.float32(so)))


def test_bad_calibration_data(tmp_path):
    from conftest import cli
    model = EXAMPLES / "digits" / "digits_cnn.onnx"
    np.savez(tmp_path / "wrong.npz", input=np.zeros((4, 8, 8), np.float32))
    proc = cli("compile", model, "--calib", tmp_path / "wrong.npz", "-o", tmp_path / "o")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: input 'input': expected an array of shape (samples, 1, 8, 8), got (4, 8, 8)" in proc.stderr
    np.savez(tmp_path / "int.npz", input=np.zeros((4, 1, 8, 8), np.int32))
    proc = cli("compile", model, "--calib", tmp_path / "int.npz", "-o", tmp_path / "o")
    assert proc.returncode == 2
    assert "error: calibration data for input 'input' must be float32, got int32" in proc.stderr
    np.savez(tmp_path / "empty.npz", input=np.zeros((0, 1, 8, 8), np.float32))
    proc = cli("compile", model, "--calib", tmp_path / "empty.npz", "-o", tmp_path / "o")
    assert proc.returncode == 2 and f"has no samples" in proc.stderr
    assert not (tmp_path / "o").exists()
