"""Pre-quantized models from onnxruntime's quantizer: QDQ (uint8 and int8
activations) and QOperator (QLinearConv, QLinearMatMul)."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinydeploy
from tinydeploy import api, golden
from conftest import EXAMPLES, cli

ort = pytest.importorskip("onnxruntime")
quant = pytest.importorskip("onnxruntime.quantization")


def _calib_reader(x, name):
    class Reader(quant.CalibrationDataReader):
        def __init__(self):
            self.it = iter([{name: s[None]} for s in x])

        def get_next(self):
            return next(self.it, None)
    return Reader()


def _digits():
    with np.load(EXAMPLES / "digits" / "calib.npz") as c, np.load(EXAMPLES / "digits" / "test.npz") as t:
        return c["input"][:200], t["input"][:200]


def _ort_outputs(path, x, extra_outputs=()):
    m = onnx.load(path)
    for name, elem in extra_outputs:
        m.graph.output.append(helper.make_tensor_value_info(name, elem, None))
    opts = ort.SessionOptions()  # the QDQ graph's own semantics, not ORT's fused kernels
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    return [sess.run(None, {in_name: s[None]}) for s in x]


@pytest.mark.parametrize("act", ["QUInt8", "QInt8"])
def test_onnxruntime_qdq_model_matches_onnxruntime_within_3_lsb(tmp_path, act):
    calib, x = _digits()
    path = str(tmp_path / "q.onnx")
    quant.quantize_static(str(EXAMPLES / "digits" / "digits_cnn.onnx"), path, _calib_reader(calib, "input"),
                          quant_format=quant.QuantFormat.QDQ, per_channel=True,
                          activation_type=getattr(quant.QuantType, act), weight_type=quant.QuantType.QInt8)
    elem = TensorProto.UINT8 if act == "QUInt8" else TensorProto.INT8
    outs = _ort_outputs(path, x, [("logits_QuantizeLinear_Output", elem)])
    want_logits = np.stack([o[1].reshape(-1) for o in outs]).astype(np.int32)
    if act == "QUInt8":
        want_logits -= 128  # uint8 -> int8: the same real values, zero point shifted by 128
    g = api.build_graph(path)
    s, z = g.tensors[g.inputs[0]].quant.scalar()
    xq = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
    softmax = next(op for op in g.ops if op.kind == "softmax_s8")
    logits = np.stack([golden.run_sample(g, q, keep_all=True)[softmax.inputs[0]].reshape(-1) for q in xq])
    # BN folding removes one intermediate rounding, rounding differs from ORT's float QDQ
    # execution: at most 3 LSB apart, and almost always the same class.
    assert np.abs(logits.astype(np.int32) - want_logits).max() <= 3
    assert np.mean(logits.argmax(1) == want_logits.argmax(1)) >= 0.97
    res = tinydeploy.run(path, {"input": x})
    probs = np.stack([o[0].reshape(-1) for o in outs])
    assert np.mean(res.outputs["probs"].reshape(len(x), -1).argmax(1) == probs.argmax(1)) >= 0.97


def _conv_matmul_model(path):
    rng = np.random.default_rng(3)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])
    inits = [numpy_helper.from_array(rng.normal(size=(6, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=6).astype(np.float32), "b"),
             numpy_helper.from_array(np.array([1, 216], np.int64), "shape"),
             numpy_helper.from_array(rng.normal(size=(216, 5)).astype(np.float32) * 0.1, "m")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Reshape", ["r", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "m"], ["y"])]
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                                opset_imports=[helper.make_opsetid("", 13)]), path)
    return rng.uniform(-1, 1, size=(40, 3, 6, 6)).astype(np.float32)


def test_qlinearconv_and_qlinearmatmul(tmp_path):
    f = str(tmp_path / "f.onnx")
    x = _conv_matmul_model(f)
    q = str(tmp_path / "q.onnx")
    # reduce_range: onnxruntime's x86 u8 x s8 kernels saturate int16 pair sums with
    # full-range weights, so without it onnxruntime itself is off by up to ~90 LSB.
    quant.quantize_static(f, q, _calib_reader(x, "x"), quant_format=quant.QuantFormat.QOperator,
                          per_channel=False, reduce_range=True, activation_type=quant.QuantType.QUInt8,
                          weight_type=quant.QuantType.QInt8)
    ops = {n.op_type for n in onnx.load(q).graph.node}
    assert {"QLinearConv", "QLinearMatMul"} <= ops
    want = np.stack([o[0].reshape(-1) for o in _ort_outputs(q, x)])
    got = tinydeploy.run(q, {"x": x}).outputs["y"].reshape(len(x), -1)
    g = api.build_graph(q)
    scale = g.tensors[g.outputs[0]].quant.scalar()[0]
    assert np.abs(got - want).max() <= 2 * scale + 1e-6


def test_unsupported_quantization_scheme_names_the_node(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int16), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="to_int16"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="from_int16")]
    path = tmp_path / "i16.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                                opset_imports=[helper.make_opsetid("", 21)]), path)
    proc = cli("compile", path, "-o", tmp_path / "o")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ("error: node 'to_int16' (QuantizeLinear): int16 activations are not supported; "
            "tinydeploy quantizes activations to int8 (uint8 is converted)") in proc.stderr
