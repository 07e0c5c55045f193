"""float32 end to end on the host: generated C against onnxruntime's reference outputs,
and the reference interpreter that `run --golden` uses for float32 builds."""
import json
import subprocess

import numpy as np
import pytest

import tinydeploy
from conftest import EXAMPLES, MLPERF, cli, model_path, reference

FLOAT_MODELS = [(m, "float.onnx") for m in MLPERF] + \
    [(m, "float_nchw.onnx") for m in ("resnet8", "vww", "ad")]


@pytest.mark.parametrize("name,kind", FLOAT_MODELS, ids=[f"{m}-{k}" for m, k in FLOAT_MODELS])
def test_float_model_matches_onnxruntime(name, kind):
    ref = reference(name)
    x = ref["float_inputs"]
    if kind == "float_nchw.onnx" and x.ndim == 4:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    result = tinydeploy.run(model_path(name, kind), {"x": x}, target="host", quantize="float32")
    y = next(iter(result.outputs.values()))
    want = ref["float_outputs"]
    assert y.shape == want.shape
    assert np.all(np.abs(y - want) <= 1e-4 * (1 + np.abs(want)))


def test_generated_c_is_warning_free_c99(tmp_path):
    out = tmp_path / "lib"
    tinydeploy.compile(model_path("resnet8", "float_nchw.onnx"), out_dir=out, quantize="float32")
    sources = sorted(str(p) for p in out.glob("*.c"))
    proc = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wpedantic",
                           "-c", *sources], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_output_files_and_api(tmp_path):
    out = tmp_path / "lib"
    res = tinydeploy.compile(model_path("kws", "float.onnx"), out_dir=out, name="kws", quantize="float32")
    names = {p.name for p in out.iterdir()}
    assert {"kws.h", "kws.c", "kws_weights.c", "CMakeLists.txt", "report.json"} <= names
    header = (out / "kws.h").read_text()
    assert "int kws_run(const float *input, float *output);" in header
    assert "#define KWS_INPUT_SIZE 490" in header and "#define KWS_OUTPUT_SIZE 12" in header
    assert f"#define KWS_ARENA_SIZE {res.report['arena_bytes']}" in header
    # only the kernels the model uses are shipped
    assert not any("transpose" in n or "pad" in n for n in names)
    assert res.report["macs"] == sum(l["macs"] for l in res.report["layers"])


def _conv_only_model(path):
    """Conv 3x3 + Relu, then a 1x1 Conv: no Gemm/MatMul, so no fully connected layer."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(14)
    w1 = numpy_helper.from_array(rng.standard_normal((6, 3, 3, 3)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((4, 6, 1, 1)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "conv_only",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [w1, b1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def test_conv_without_fully_connected_links_on_host(tmp_path):
    """Issue 14: f32/conv.c calls helpers of f32/fully_connected.c; the output
    folder gets that source although the model has no fully connected layer."""
    import sys
    import onnxruntime as ort
    model = _conv_only_model(tmp_path / "conv_only.onnx")
    out = tmp_path / "lib"
    proc = subprocess.run([sys.executable, "-m", "tinydeploy", "compile", str(model), "--quantize",
                           "float32", "-t", "host", "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    names = {p.name for p in out.iterdir()}
    assert {"td_f32_conv.c", "td_f32_fully_connected.c"} <= names
    cmake = (out / "CMakeLists.txt").read_text()
    assert "td_f32_fully_connected.c" in cmake
    x = np.random.default_rng(1).standard_normal((5, 3, 8, 8)).astype(np.float32)
    y = tinydeploy.run(model, {"x": x}, target="host", quantize="float32").outputs["y"]
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": s[None]})[0] for s in x])
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_golden_of_a_float32_build_is_the_float_reference(tmp_path):
    """`run --golden` on a float32 build runs the float interpreter (float_ref; the int8
    golden model has no float ops): exit 0, outputs equal to the C on the host within 1e-5."""
    digits = EXAMPLES / "digits"
    proc = cli("run", digits / "digits_cnn.onnx", "--golden", "--quantize", "float32",
               "--inputs", digits / "test.npz", "-o", tmp_path / "golden.npz", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["engine"] == "golden"
    c = tinydeploy.run(digits / "digits_cnn.onnx", digits / "test.npz", quantize="float32")
    with np.load(tmp_path / "golden.npz") as golden:
        assert sorted(golden.files) == sorted(c.outputs)
        for name, y in c.outputs.items():
            assert golden[name].dtype == np.float32 and golden[name].shape == y.shape == (450, 10)
            assert np.max(np.abs(golden[name] - y)) <= 1e-5
