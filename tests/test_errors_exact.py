"""Every user-facing error path with its exact message (docs/errors.md lists them).

Each CLI case checks: exit code 2, stderr is exactly `error: MESSAGE\\n`, nothing on stdout, no
output directory left behind. Most run the CLI in-process (click's runner) for speed; a few run
the real `tinydeploy` process. Paths already covered with their exact text elsewhere
(test_cli_errors.py, test_int8_models.py, test_qdq_import.py, test_targets_emulator.py,
test_emulated_targets.py) are not repeated.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import api, frontend
from tinydeploy.cli import main
from tinydeploy.errors import TinydeployError
from conftest import EXAMPLES, cli, model_path
from test_fuzz import seed_ops_float, seed_ops_float2, seed_qdq
from test_hygiene import BOUND_BIAS, N_IN, qdq_fc_model

DIGITS = EXAMPLES / "digits" / "digits_cnn.onnx"


def run_cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def expect(tmp_path, message, *args, out_flag=True):
    """`tinydeploy ARGS -o OUT` fails with exactly `error: MESSAGE` and exit code 2."""
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(*args, *(["-o", out] if out_flag else []))
    assert (code, stderr) == (2, f"error: {message}\n")
    assert stdout == ""
    assert not out.exists()


def save(model, path):
    onnx.save(model, path)
    return path


def edited(model, fn):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    fn(m)
    return m


def set_dim(axis, value):
    return lambda m: setattr(m.graph.input[0].type.tensor_type.shape.dim[axis], "dim_value", value)


F32 = ("--quantize", "float32")


# --------------------------------------------------------------------------
# Files and options
# --------------------------------------------------------------------------
def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf \xff\xfe\x00 at all")
    expect(tmp_path, f"{bad} is not an ONNX model: it could not be parsed (DecodeError)", "compile", bad, *F32)


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    expect(tmp_path, f"{empty} is not an ONNX model: it has no graph nodes or no opset "
                     "(is it really an .onnx file?)", "compile", empty, *F32)


def test_model_path_is_a_directory(tmp_path):
    (tmp_path / "dir.onnx").mkdir()
    expect(tmp_path, f"{tmp_path / 'dir.onnx'} is a directory, not an ONNX model file",
           "compile", tmp_path / "dir.onnx", *F32)


def test_invalid_name(tmp_path):
    expect(tmp_path, "--name '1net' is not a valid C identifier", "compile", DIGITS, *F32, "--name", "1net")


@pytest.mark.parametrize("spec", ["x=1,a,3", "x", "=1,2", "x=1,0,4", "x=1,-2"])
def test_malformed_input_shape(tmp_path, spec):
    expect(tmp_path, f"--input-shape '{spec}' is not of the form NAME=D,D,... with positive integers "
           "(at most 2,147,483,647)",
           "compile", DIGITS, *F32, "--input-shape", spec)


def test_input_shape_for_an_unknown_input(tmp_path):
    expect(tmp_path, "--input-shape names 'z', which is not a model input (inputs: input)",
           "compile", DIGITS, *F32, "--input-shape", "z=1,1,8,8")


def test_input_shape_of_the_wrong_rank(tmp_path):
    expect(tmp_path, "--input-shape for 'input' has 2 dims, the model's input has 4",
           "compile", DIGITS, *F32, "--input-shape", "input=1,64")


def test_input_shape_too_large(tmp_path):
    expect(tmp_path, "input 'input' has shape [1, 1, 65536, 65536] (4,294,967,296 elements); tensors of "
                     "more than 2,147,483,647 elements are not supported",
           "compile", DIGITS, *F32, "--input-shape", "input=1,1,65536,65536")


def test_output_directory_not_written_by_tinydeploy(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "main.c").write_text("int main(void) { return 0; }\n")
    code, stdout, stderr = run_cli("compile", DIGITS, *F32, "-o", out)
    assert (code, stdout) == (2, "")
    assert stderr == (f"error: output directory {out} is not empty and was not written by tinydeploy; "
                      "choose another directory with -o\n")
    assert [p.name for p in out.iterdir()] == ["main.c"]  # untouched


def test_output_path_is_a_file(tmp_path):
    path = tmp_path / "out"
    path.write_text("x")
    with pytest.raises(TinydeployError) as err:
        api.compile(DIGITS, out_dir=path, quantize="float32")
    assert str(err.value) == f"output path {path} exists and is not a directory"


def test_unknown_target_lists_every_known_target(tmp_path):
    from tinydeploy.targets import list_targets
    expect(tmp_path, f"unknown target 'pdp11'; known targets: {', '.join(list_targets())} "
                     "(or pass the path of a target JSON file)", "compile", DIGITS, *F32, "-t", "pdp11")


def test_missing_calibration_file(tmp_path):
    expect(tmp_path, f"calibration data file not found: {tmp_path / 'nope.npz'}",
           "compile", DIGITS, "--calib", tmp_path / "nope.npz")


def test_calibration_file_that_is_not_npz(tmp_path):
    bad = tmp_path / "calib.npz"
    bad.write_text("not numpy")
    expect(tmp_path, f"{bad} is not a NumPy .npz file", "compile", DIGITS, "--calib", bad)


def test_calibration_arrays_with_other_names(tmp_path):
    np.savez(tmp_path / "c.npz", a=np.zeros((2, 1, 8, 8), np.float32), b=np.zeros((2, 1, 8, 8), np.float32))
    expect(tmp_path, "the calibration data file has arrays ['a', 'b'] but none is named 'input', the model's input",
           "compile", DIGITS, "--calib", tmp_path / "c.npz")


def test_empty_calibration_file(tmp_path):
    np.savez(tmp_path / "empty.npz", input=np.zeros((0, 1, 8, 8), np.float32))
    expect(tmp_path, f"calibration file {tmp_path / 'empty.npz'} has no samples",
           "compile", DIGITS, "--calib", tmp_path / "empty.npz")


def test_non_finite_calibration_values(tmp_path):
    n = helper.make_node
    g = helper.make_graph([n("Sqrt", ["x"], ["s"], name="root"), n("Relu", ["s"], ["y"], name="relu")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "sqrt.onnx")
    np.savez(tmp_path / "neg.npz", x=-np.ones((3, 4), np.float32))
    expect(tmp_path, "calibration: tensor 's' (the output of node 'root') takes non-finite values (NaN or "
                     "infinity) on the calibration data; fix the model (e.g. a Sqrt of negative values) or "
                     "the data", "compile", path, "--calib", tmp_path / "neg.npz")


def test_missing_inputs_file_for_run(tmp_path):
    code, stdout, stderr = run_cli("run", DIGITS, *F32, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "o.npz")
    assert (code, stdout, stderr) == (2, "", f"error: inputs file not found: {tmp_path / 'in.npz'}\n")


# --------------------------------------------------------------------------
# Models the front end refuses
# --------------------------------------------------------------------------
@pytest.fixture
def ops(tmp_path):
    """Save seed_ops_float edited by fn: the path."""
    return lambda fn, name="m.onnx": save(edited(seed_ops_float(), fn), tmp_path / name)


def test_opset_out_of_range(tmp_path):
    n = helper.make_node
    g = helper.make_graph([n("Relu", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    top = onnx.defs.onnx_opset_version()
    path = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", top + 1)]), tmp_path / "new.onnx")
    expect(tmp_path, f"the model uses opset {top + 1}; the installed onnx package ({onnx.__version__}) knows "
                     f"opsets 1 to {top} (upgrade onnx, or convert the model with onnx.version_converter)",
           "compile", path, *F32)


def test_unsupported_ops_message_ends_with_the_supported_list(tmp_path):
    n = helper.make_node
    g = helper.make_graph([n("Round", ["x"], ["y"], name="my_round")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "erf.onnx")
    expect(tmp_path, "the model uses 1 unsupported node(s):\n  - node 'my_round': Round\nsupported ops: "
                     f"{', '.join(sorted(frontend.LOWERINGS))}. Replace these ops (e.g. re-export the model) "
                     "or open an issue.", "compile", path, *F32)


def test_cycle(tmp_path, ops):
    path = ops(lambda m: m.graph.node[0].input.__setitem__(0, "y"))
    expect(tmp_path, f"{path} is not a valid ONNX model: Nodes in a graph must be topologically sorted, "
                     "however input 'y' of node: name: conv1 OpType: Conv is not output of any previous nodes.",
           "compile", path, *F32)


def test_dangling_input_name(tmp_path, ops):
    path = ops(lambda m: m.graph.node[1].input.__setitem__(0, "nowhere"))
    code, _, stderr = run_cli("compile", path, *F32, "-o", tmp_path / "out")
    assert code == 2 and stderr.startswith(f"error: {path} is not a valid ONNX model: ")
    assert "'nowhere'" in stderr and stderr.count("\n") == 1


def test_attribute_of_the_wrong_type(tmp_path, ops):
    path = ops(lambda m: m.graph.node[0].attribute.append(helper.make_attribute("strides", 1.5)))
    expect(tmp_path, f"{path} is not a valid ONNX model: Mismatched attribute type in 'conv1 : strides'. "
                     "Expected: 'INTS', actual: 'FLOAT'", "compile", path, *F32)


def test_attribute_with_a_bad_value(tmp_path, ops):
    def strides(m):
        m.graph.node[0].attribute.append(helper.make_attribute("strides", [0, 1]))
    path = ops(strides)
    code, _, stderr = run_cli("compile", path, *F32, "-o", tmp_path / "out")
    # ONNX shape inference or tinydeploy's own check: either way one clean message
    assert code == 2 and stderr.count("\n") == 1 and stderr.startswith("error: ")


def test_pool_pads_as_large_as_the_kernel(tmp_path, ops):
    def pads(m):
        pool = next(n for n in m.graph.node if n.name == "maxpool")
        pool.attribute.append(helper.make_attribute("pads", [2, 0, 0, 0]))
    expect(tmp_path, "node 'maxpool' (MaxPool): pads [2, 0, 0, 0] must be smaller than the kernel [2, 2]",
           "compile", ops(pads), *F32)


def test_zero_dimension(tmp_path, ops):
    expect(tmp_path, "input 'x' has a dimension of size 0 (axis 2), an empty tensor; give positive "
                     "dimensions with --input-shape x=D,D,...", "compile", ops(set_dim(2, 0)), *F32)


def test_negative_dimension_is_not_fixed(tmp_path, ops):
    expect(tmp_path, "input 'x' has a non-fixed dimension '-3' (axis 3); give every dimension with "
                     "--input-shape x=D,D,... (the model declares x=1,4,6,-3)", "compile", ops(set_dim(3, -3)), *F32)


def test_huge_dimension(tmp_path, ops):
    expect(tmp_path, "input 'x' has shape [1, 4, 6, 1099511627776] (26,388,279,066,624 elements); tensors of "
                     "more than 2,147,483,647 elements are not supported", "compile", ops(set_dim(3, 1 << 40)), *F32)


def test_input_without_a_shape(tmp_path, ops):
    path = ops(lambda m: m.graph.input[0].type.tensor_type.ClearField("shape"))
    expect(tmp_path, "input 'x' has no shape in the model; give it with --input-shape x=D,D,...",
           "compile", path, *F32)
    code, _, stderr = run_cli("compile", path, *F32, "--input-shape", "x=1,4,6,6", "-o", tmp_path / "ok")
    assert code == 0, stderr


def test_input_of_an_unsupported_type(tmp_path, ops):
    path = ops(lambda m: setattr(m.graph.input[0].type.tensor_type, "elem_type", TensorProto.DOUBLE))
    expect(tmp_path, "model input 'x' has element type DOUBLE; tinydeploy compiles models with a float32 "
                     "(or int8/uint8) input", "compile", path, *F32)


def test_batch_larger_than_one(tmp_path, ops):
    expect(tmp_path, "node 'conv1' (Conv): the input has a batch of 2; the generated code runs one sample "
                     "at a time (batch 1)", "compile", ops(set_dim(0, 2)), *F32)


def test_kernel_larger_than_the_input(tmp_path, ops):
    expect(tmp_path, "node 'maxpool' (MaxPool): the kernel [2, 2] is larger than the padded input [1, 6] "
                     "(pads [0, 0, 0, 0])", "compile", ops(set_dim(2, 1)), *F32)


def test_initializer_of_the_wrong_size(tmp_path, ops):
    path = ops(lambda m: m.graph.initializer[0].dims.__setitem__(0, 9))
    expect(tmp_path, f"{path} is not a valid ONNX model: TensorProto (tensor name: w1) raw_data size "
                     "(1152 bytes) is too small for the declared shape and type (1296 bytes required).",
           "compile", path, *F32)


def test_initializer_with_typed_data_of_the_wrong_length(tmp_path, ops):
    def short(m):
        t = m.graph.initializer[1]  # b1, 8 floats
        t.ClearField("raw_data")
        t.float_data.extend([1.0, 2.0, 3.0])
    path = ops(short)
    code, _, stderr = run_cli("compile", path, *F32, "-o", tmp_path / "out")
    assert code == 2 and stderr.count("\n") == 1
    assert stderr.startswith((f"error: {path} is not a valid ONNX model: ",
                              "error: initializer 'b1': its data does not match its type FLOAT and shape [8]"))


def test_initializer_of_an_unsupported_type(tmp_path, ops):
    path = ops(lambda m: m.graph.initializer[0].CopyFrom(helper.make_tensor("w1", TensorProto.STRING, [1], [b"a"])))
    expect(tmp_path, "initializer 'w1' has element type STRING, which is not supported (constants must be "
                     "float or integer tensors)", "compile", path, *F32)


def test_initializer_in_an_external_file(tmp_path, ops):
    def external(m):
        t = m.graph.initializer[0]
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", "w.bin"
    (tmp_path / "w.bin").write_bytes(bytes(1152))
    expect(tmp_path, "initializer 'w1' keeps its data in an external file; tinydeploy reads self-contained "
                     ".onnx files (save the model without external data)", "compile", ops(external), *F32)


def test_output_listed_twice(tmp_path, ops):
    path = ops(lambda m: m.graph.output.append(m.graph.output[0]))
    out = seed_ops_float().graph.output[0].name
    expect(tmp_path, f"model output '{out}' is listed twice among the model's outputs; list it once",
           "compile", path, *F32)


def test_output_is_an_input(tmp_path):
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in "xy")
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y, x])
    path = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "m.onnx")
    expect(tmp_path, "model output 'x' is a model input itself; nothing to compute (remove it from the "
                     "outputs: the caller has it already)", "compile", path, *F32)


def test_output_is_a_constant(tmp_path):
    n = helper.make_node
    g = helper.make_graph([n("Relu", ["x"], ["r"], name="relu"), n("Add", ["k1", "k2"], ["y"], name="add")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
                          [numpy_helper.from_array(np.ones(4, np.float32), "k1"),
                           numpy_helper.from_array(np.ones(4, np.float32), "k2")])
    path = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "const.onnx")
    expect(tmp_path, "model output 'y' is a constant; nothing to compute", "compile", path, *F32)


def test_nan_weight(tmp_path, ops):
    def nan(m):
        t = m.graph.initializer[2]  # k_add, added to the conv output
        a = numpy_helper.to_array(t).copy()
        a.flat[0] = np.nan
        t.CopyFrom(numpy_helper.from_array(a, t.name))
    expect(tmp_path, "a NaN constant cannot be compiled", "compile", ops(nan), *F32)


def test_clip_with_min_above_max(tmp_path, ops):
    def swap(m):
        for t in m.graph.initializer:
            if t.name == "k_lo":
                t.CopyFrom(numpy_helper.from_array(np.float32(7.0), "k_lo"))
    expect(tmp_path, "node 'clip1' (Clip): min 7 is larger than max 6", "compile", ops(swap), *F32)


# --------------------------------------------------------------------------
# int8
# --------------------------------------------------------------------------
def test_pre_quantized_model_as_float(tmp_path):
    path = save(seed_qdq(), tmp_path / "qdq.onnx")
    expect(tmp_path, "the model is pre-quantized (QuantizeLinear/DequantizeLinear on activations); compile "
                     "it with --quantize int8", "compile", path, *F32)


def _qdq_with(tmp_path, name, value):
    def fn(m):
        t = next(t for t in m.graph.initializer if t.name == name)
        t.CopyFrom(numpy_helper.from_array(value, name))
    return save(edited(seed_qdq(), fn), tmp_path / "qdq.onnx")


@pytest.mark.parametrize("scale", [0.0, -0.5, float("nan"), float("inf"), 1e-46])
def test_non_positive_or_non_finite_scale(tmp_path, scale):
    path = _qdq_with(tmp_path, "s_r", np.float32(scale))
    code, stdout, stderr = run_cli("compile", path, "-o", tmp_path / "out")
    assert code == 2 and stdout == ""
    assert stderr.startswith("error: node 'rq_quant' (QuantizeLinear): the scale must be positive and finite "
                             "(as float32), got [")


def test_asymmetric_weights(tmp_path):
    path = _qdq_with(tmp_path, "z_w", np.array([0, 1, 0, 0], np.int8))
    expect(tmp_path, "node 'conv': asymmetric weights (zero point != 0) are not supported; quantize weights "
                     "symmetrically", "compile", path)


def test_per_channel_activation_quantization(tmp_path):
    path = _qdq_with(tmp_path, "s_m", np.full(3, 0.1, np.float32))
    code, _, stderr = run_cli("compile", path, "-o", tmp_path / "out")
    assert code == 2 and stderr.count("\n") == 1 and stderr.startswith("error: ")


def test_no_int8_kernel(tmp_path):
    def divide_by_itself(m):  # Div of two activations (Max has an int8 kernel), computed from
        # different tensors (sb / dv, both functions of sb, would be one int8 table)
        node = next(n for n in m.graph.node if n.name == "max")
        node.op_type, node.input[1] = "Div", "t"
    path = save(edited(seed_ops_float2(), divide_by_itself), tmp_path / "ops2.onnx")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(0).random((2, 1, 3, 4, 4)).astype(np.float32)[:, 0])
    expect(tmp_path, "node 'max': there is no int8 kernel for element-wise 'div' (supported: add, mul, max, min, "
                     "and sub or div by a constant); compile with --quantize float32", "compile", path,
           "--calib", tmp_path / "c.npz")


def test_int32_overflow_is_refused_naming_the_layer(tmp_path):
    w = np.full((2, N_IN), -127, np.int8)
    path = save(qdq_fc_model(w, np.array([BOUND_BIAS + 1, 5]), name="dense_7"), tmp_path / "fc.onnx")
    expect(tmp_path, "1 layer(s) could overflow int32 arithmetic for some inputs:\n"
                     "  layer 'dense_7' (fully_connected_s8): the int32 accumulator of output channel 0 "
                     f"(|bias| {BOUND_BIAS + 1:,}, sum |w| {127 * N_IN:,}) can reach 2,147,483,648 (int32 holds "
                     "2,147,483,647)\nsuch a layer would give wrong results; reduce its weights, bias or reduction "
                     "length, or fix its quantization scales (or compile with --quantize float32)",
           "compile", path)


def _qdq_softmax(path, depth, in_scale):
    n = helper.make_node
    nodes = [n("QuantizeLinear", ["x", "s", "z"], ["xq"], name="x_q"), n("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             n("Softmax", ["xf"], ["sm"], name="wide_softmax"),
             n("QuantizeLinear", ["sm", "so", "zo"], ["yq"], name="y_q"), n("DequantizeLinear", ["yq", "so", "zo"], ["y"])]
    c = numpy_helper.from_array
    inits = [c(np.float32(in_scale), "s"), c(np.int8(0), "z"), c(np.float32(1 / 256), "so"), c(np.int8(-128), "zo")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, depth])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, depth])], inits)
    return save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_softmax_with_a_huge_depth_is_refused(tmp_path):
    path = _qdq_softmax(tmp_path / "sm.onnx", 5000, 0.1)
    expect(tmp_path, "1 layer(s) could overflow int32 arithmetic for some inputs:\n"
                     "  layer 'wide_softmax' (softmax_s8): the Q12.19 sum of 5,000 exponentials can reach "
                     "2,621,440,000 (int32 holds 2,147,483,647)\nsuch a layer would give wrong results; reduce "
                     "its weights, bias or reduction length, or fix its quantization scales (or compile with "
                     "--quantize float32)", "compile", path)


def test_quantization_int8_cannot_represent(tmp_path):
    path = _qdq_softmax(tmp_path / "sm.onnx", 10, 1e-9)
    expect(tmp_path, "node 'wide_softmax' (softmax): its quantization cannot be represented in int8 (softmax: "
                     "beta * input_scale too small for TFLite's int8 softmax)", "compile", path)


# --------------------------------------------------------------------------
# Exit codes of the CLI itself
# --------------------------------------------------------------------------
def test_internal_error_is_exit_3_without_traceback(monkeypatch, tmp_path):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(api, "compile", boom)
    code, stdout, stderr = run_cli("compile", DIGITS, *F32, "-o", tmp_path / "out")
    assert (code, stdout) == (3, "")
    assert stderr == ("internal error: RuntimeError: boom\nThis is a bug in tinydeploy; please report it "
                      "with the model that caused it.\n")


def test_interrupt_is_exit_130(monkeypatch, tmp_path):
    def stop(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(api, "compile", stop)
    code, stdout, stderr = run_cli("compile", DIGITS, *F32, "-o", tmp_path / "out")
    assert (code, stdout, stderr) == (130, "", "interrupted\n")


def test_usage_errors_are_exit_2(tmp_path):
    code, _, stderr = run_cli("compile", DIGITS)  # missing -o
    assert code == 2 and "Missing option '-o' / '--out'" in stderr
    code, _, stderr = run_cli("compile", DIGITS, "-o", tmp_path / "o", "--quantize", "int4")
    assert code == 2 and "Invalid value for '--quantize'" in stderr


def test_real_process_prints_exactly_one_line(tmp_path):
    """The installed entry point (not the in-process runner): same message, exit code, no traceback."""
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07")  # a ModelProto with only ir_version = 7
    proc = cli("compile", bad, "-o", tmp_path / "out", "--quantize", "float32")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"error: {bad} is not an ONNX model: it has no graph nodes or no opset " \
                          "(is it really an .onnx file?)\n"


def test_name_that_is_not_utf8(tmp_path):
    """protobuf accepts any bytes in a string field; a name that is not text is refused up front."""
    blob = seed_ops_float().SerializeToString()
    assert blob.count(b"maxpool") == 1
    path = tmp_path / "bytes.onnx"
    path.write_bytes(blob.replace(b"maxpool", b"maxp\x80ol"))
    expect(tmp_path, f"{path} is not a valid ONNX model: the name b'maxp\\x80ol' is not UTF-8 text",
           "compile", path, *F32)
