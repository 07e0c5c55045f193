"""Models with several inputs and outputs (issue 14 item 2): one pointer per input and
output in NAME_run, all in the arena, handled by name by run/verify/compile and npz files."""
import json
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinydeploy
from conftest import cli

ARM, RISCV = "nucleo-l4r5zi", "rv32-zve32x"


def _save(nodes, inputs, outputs, inits, path):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
                          [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


def two_input_model(path):
    """Sensor fusion: a 1x8x8 image and a 2x4x4 map, each through its own conv branch,
    added at 4x8x8... (the map upsampled by a stride-1 conv on a padded grid is avoided:
    both branches end at 4 channels x 4x4, the image branch with a stride-2 conv), then FC."""
    rng = np.random.default_rng(7)
    w = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.4  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["image", "wa", "ba"], ["ca"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv_a"),
        helper.make_node("Relu", ["ca"], ["ra"], name="relu_a"),
        helper.make_node("Conv", ["map", "wb", "bb"], ["cb"], pads=[1, 1, 1, 1], name="conv_b"),
        helper.make_node("Relu", ["cb"], ["rb"], name="relu_b"),
        helper.make_node("Add", ["ra", "rb"], ["sum"], name="fuse"),
        helper.make_node("Flatten", ["sum"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"], transB=1, name="fc"),
    ]
    inits = dict(wa=w(4, 1, 3, 3), ba=w(4), wb=w(4, 2, 3, 3), bb=w(4), wf=w(5, 64), bf=w(5))
    return _save(nodes, [("image", [1, 1, 8, 8]), ("map", [1, 2, 4, 4])], [("logits", [1, 5])], inits, path)


def detector_model(path):
    """Shared conv backbone, two heads: class scores (softmax over 3 classes per cell)
    and box regression (4 values per cell), outputs of different shapes."""
    rng = np.random.default_rng(8)
    w = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.4  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="backbone1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], name="backbone2"),
        helper.make_node("Relu", ["c2"], ["feat"], name="relu2"),
        helper.make_node("Conv", ["feat", "wc", "bc"], ["cls"], name="cls_head"),
        helper.make_node("Softmax", ["cls"], ["scores"], axis=1, name="cls_softmax"),
        helper.make_node("Conv", ["feat", "wr", "br"], ["boxes"], name="box_head"),
    ]
    inits = dict(w1=w(6, 3, 3, 3), b1=w(6), w2=w(8, 6, 3, 3), b2=w(8), wc=w(3, 8, 1, 1), bc=w(3),
                 wr=w(4, 8, 1, 1), br=w(4))
    return _save(nodes, [("x", [1, 3, 8, 8])], [("scores", [1, 3, 4, 4]), ("boxes", [1, 4, 4, 4])], inits, path)


def output_also_read_model(path):
    """An output ('hidden') that a later layer also reads; two inputs, the second one
    read by two layers."""
    rng = np.random.default_rng(9)
    w = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.4  # noqa: E731
    nodes = [
        helper.make_node("Gemm", ["a", "w1", "b1"], ["h1"], transB=1, name="fc1"),
        helper.make_node("Add", ["h1", "b"], ["h2"], name="add_b"),
        helper.make_node("Relu", ["h2"], ["hidden"], name="relu"),
        helper.make_node("Gemm", ["hidden", "w2", "b2"], ["h3"], transB=1, name="fc2"),
        helper.make_node("Mul", ["h3", "b"], ["out"], name="mul_b"),
    ]
    inits = dict(w1=w(12, 10), b1=w(12), w2=w(12, 12), b2=w(12))
    return _save(nodes, [("a", [1, 10]), ("b", [1, 12])], [("hidden", [1, 12]), ("out", [1, 12])], inits, path)


MODELS = {"two_inputs": two_input_model, "detector": detector_model, "output_also_read": output_also_read_model}


def _ort(path, feeds):
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    n = len(next(iter(feeds.values())))
    rows = [sess.run(None, {k: v[i:i + 1] for k, v in feeds.items()}) for i in range(n)]
    return {name: np.concatenate([r[j] for r in rows]) for j, name in enumerate(names)}


def _feeds(path, n, seed=0):
    m = onnx.load(str(path))
    rng = np.random.default_rng(seed)
    return {i.name: rng.uniform(-1, 1, [n] + [d.dim_value for d in i.type.tensor_type.shape.dim][1:])
            .astype(np.float32) for i in m.graph.input}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("multi_io")
    out = {}
    for name, build in MODELS.items():
        path = build(d / f"{name}.onnx")
        np.savez(d / f"{name}_calib.npz", **_feeds(path, 64, seed=1))
        out[name] = path
    return out
