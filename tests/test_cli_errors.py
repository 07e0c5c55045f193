"""Bad input: one clear message on stderr, exit code 2, no traceback, no half-written output."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import cli, model_path


def _assert_clean_error(proc, message):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    assert message in proc.stderr, proc.stderr


def _save(model, path):
    onnx.save(model, path)
    return path


def test_missing_file(tmp_path):
    out = tmp_path / "out"
    proc = cli("compile", tmp_path / "nope.onnx", "-o", out, "--quantize", "float32")
    _assert_clean_error(proc, f"error: model file not found: {tmp_path / 'nope.onnx'}\n")
    assert not out.exists()


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf \xff\xfe\x00 at all")
    out = tmp_path / "out"
    proc = cli("compile", bad, "-o", out, "--quantize", "float32")
    _assert_clean_error(proc, f"error: {bad} is not an ONNX model")
    assert not out.exists()


def test_unsupported_ops_are_all_listed(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="ok_relu"),
             helper.make_node("Round", ["a"], ["b"], name="my_round"),
             helper.make_node("CumSum", ["b", "axis"], ["y"], name="my_cumsum")]
    axis = helper.make_tensor("axis", TensorProto.INT64, [], [1])
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [axis]),
                              opset_imports=[helper.make_opsetid("", 13)])
    path = _save(model, tmp_path / "unsup.onnx")
    out = tmp_path / "out"
    proc = cli("compile", path, "-o", out, "--quantize", "float32")
    _assert_clean_error(proc, "error: the model uses 2 unsupported node(s):\n"
                              "  - node 'my_round': Round\n  - node 'my_cumsum': CumSum\n")
    assert not out.exists()
    insp = cli("inspect", path)
    assert insp.returncode == 2 and "my_round: Round" in insp.stdout and "Traceback" not in insp.stderr


def test_non_fixed_input_dimension(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "width", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)])
    path = _save(model, tmp_path / "dyn.onnx")
    proc = cli("compile", path, "-o", tmp_path / "out", "--quantize", "float32")
    _assert_clean_error(proc, "error: input 'x' has a non-fixed dimension 'width' (axis 1); give every "
                              "dimension with --input-shape x=D,D,... (the model declares x=1,width,4)\n")
    ok = cli("compile", path, "-o", tmp_path / "out", "--quantize", "float32", "--input-shape", "x=1,6,4")
    assert ok.returncode == 0, ok.stderr


def test_unknown_target(tmp_path):
    proc = cli("compile", model_path("ad", "float.onnx"), "-o", tmp_path / "out",
               "--quantize", "float32", "-t", "pdp11")
    _assert_clean_error(proc, "unknown target 'pdp11'")
    for known in ("host", "stm32f746", "rp2040", "esp32-c3"):
        assert known in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("array,message", [
    (np.zeros((2, 64), np.float32), "input 'input_1': expected an array of shape (samples, 640), got (2, 64)"),
    (np.zeros((2, 640), np.float64), "input 'input_1': expected float32 data, got float64"),
])
def test_run_inputs_that_do_not_match(tmp_path, array, message):
    np.savez(tmp_path / "in.npz", input_1=array)
    proc = cli("run", model_path("ad", "float.onnx"), "--quantize", "float32",
               "--inputs", tmp_path / "in.npz", "-o", tmp_path / "out.npz")
    _assert_clean_error(proc, f"error: {message}\n")
    assert not (tmp_path / "out.npz").exists()


def test_float_model_without_calibration_data(tmp_path):
    proc = cli("compile", model_path("ad", "float.onnx"), "-o", tmp_path / "out")
    _assert_clean_error(proc, "error: the model is a float model: pass calibration data with "
                              "--calib DATA.npz to quantize it to int8, or compile it as float "
                              "with --quantize float32\n")


def test_version_and_help():
    proc = cli("--version")
    assert proc.returncode == 0 and "tinydeploy, version" in proc.stdout
    for cmd in ("compile", "run", "inspect", "targets"):
        h = cli(cmd, "--help")
        assert h.returncode == 0 and "Example" in h.stdout, cmd


def test_bad_kernel_scratch_policy(tmp_path):
    proc = cli("compile", model_path("ad", "int8_qdq.onnx"), "-o", tmp_path / "out", "--kernel-scratch", "lots")
    _assert_clean_error(proc, "error: --kernel-scratch must be a non-negative fraction, 'fit' or 'any', "
                              "not 'lots'\n")
    assert not (tmp_path / "out").exists()
