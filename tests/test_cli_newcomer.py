"""What a newcomer met first on the command line (issue 17, items 3-7): labels of any
shape in `run`, verify/bench without a target, bad --samples, closed pipes, and the
wording of a float verify. Each test failed before its fix."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import EXAMPLES, cli

DIGITS = EXAMPLES / "digits"
MODEL = DIGITS / "digits_cnn.onnx"


@pytest.fixture(scope="module")
def digits():
    with np.load(DIGITS / "test.npz") as d:
        return d["input"][:40], d["label"][:40]


def _run(tmp_path, **arrays):
    path = tmp_path / "in.npz"
    np.savez(path, **arrays)
    return cli("run", MODEL, "--calib", DIGITS / "calib.npz", "--inputs", path, "-o", tmp_path / "out.npz"), path


def _accuracy_line(proc) -> str:
    return next(line for line in proc.stdout.splitlines() if line.startswith("accuracy:"))


def test_run_accuracy_with_integer_and_one_hot_labels_agree(tmp_path, digits):
    x, y = digits
    plain, _ = _run(tmp_path, input=x, label=y)
    assert plain.returncode == 0, plain.stderr
    one_hot, _ = _run(tmp_path, input=x, label=np.eye(10, dtype=np.float32)[y])
    assert one_hot.returncode == 0, one_hot.stderr
    assert _accuracy_line(plain) == _accuracy_line(one_hot)
    correct = int(_accuracy_line(plain).split("(")[1].split("/")[0])
    assert correct >= 36 and "/40)" in _accuracy_line(plain)  # the CNN is ~98% accurate on digits


@pytest.mark.parametrize("labels, problem", [
    (np.arange(10), "has 10 labels for 40 samples"),
    (np.array(["cat"] * 40), "holds <U3 values"),
    (np.zeros((40, 3)), "has shape (40, 3)"),
    (np.full(40, 10), "holds label 10, which is not a class index of the model's 10 outputs (0 to 9)"),
])
def test_run_refuses_labels_that_do_not_fit(tmp_path, digits, labels, problem):
    x, _ = digits
    proc, path = _run(tmp_path, input=x, label=labels)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"error: {path}: the 'label' array ") and problem in proc.stderr
    assert "expected 40 integer class indices (shape (40,)) or 40 one-hot rows (shape (40, 10))" \
        in proc.stderr or "not a class index" in proc.stderr


@pytest.mark.parametrize("command", ["verify", "bench"])
def test_emulated_commands_need_a_target(command):
    proc = cli(command, MODEL, "--quantize", "float32")
    assert proc.returncode == 2
    assert proc.stderr == ("error: this command runs the model on an emulated MCU: choose the target with -t "
                           "(e.g. -t stm32f746; `tinydeploy targets` lists them) or --target-file\n")


@pytest.mark.parametrize("samples", ["-3", "0", "many"])
def test_verify_refuses_bad_sample_counts(samples):
    proc = cli("verify", MODEL, "-t", "stm32f746", "--samples", samples)
    assert proc.returncode == 2 and "Invalid value for '--samples'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_closed_pipe_is_not_an_error():
    proc = subprocess.Popen([sys.executable, "-m", "tinydeploy", "targets"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert err == b""


def test_float_verify_says_bit_exact_only_when_it_is():
    proc = cli("verify", MODEL, "--quantize", "float32", "-t", "stm32f746", "--samples", "3")
    assert proc.returncode == 0, proc.stderr
    exact = "max |diff| 0," in proc.stdout
    assert ("bit-exact" in proc.stdout) == exact, proc.stdout
    assert exact or "within 1e-4 (float32)" in proc.stdout


def _symbolic_model(path, dims):
    """A one-Conv model whose input has the dimension names `dims` (ints are fixed)."""
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    import onnx
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_symbolic_dimensions_keep_their_names(tmp_path):
    """Issue 17 item 10: the example named every open dimension N (x=1,3,N,N)."""
    proc = cli("compile", _symbolic_model(tmp_path / "m.onnx", ["N", 3, "H", "W"]), "--quantize", "float32",
               "-o", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr == ("error: input 'x' has a non-fixed dimension 'H' (axis 2); give every dimension with "
                           "--input-shape x=D,D,... (the model declares x=1,3,H,W)\n")


def test_input_shape_the_layers_do_not_accept_names_the_node(tmp_path):
    """Issue 17 item 10: an --input-shape that a layer cannot take gave ONNX's raw shape-inference
    message; a shape that only changes spatial size now compiles (stale exporter shapes dropped)."""
    proc = cli("compile", MODEL, "--quantize", "float32", "--input-shape", "input=1,1,12,12", "-o", tmp_path / "a")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == ("error: --input-shape input=1,1,12,12: node 'fc1' (Gemm) does not accept it "
                           "(Dimension mismatch in unification between 64 and 144); the model declares "
                           "input=1,1,8,8: give a shape its layers accept (e.g. the declared one), or "
                           "re-export the model for this size\n")
    model = _symbolic_model(tmp_path / "m.onnx", ["N", 3, "H", "W"])
    proc = cli("compile", model, "--quantize", "float32", "--input-shape", "x=1,3,5,7", "-o", tmp_path / "b")
    assert proc.returncode == 0, proc.stderr
