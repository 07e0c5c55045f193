"""ONNX's backend node tests (issue 14 item 6; tests/onnx_node_suite.py): every float32
test whose ops tinydeploy lowers, generated from the installed onnx package, compiled
for the host as float32 and compared with the test's expected outputs.

Every case goes through the compiler and the float IR interpreter; the generated C runs
for a deterministic subset (the first case of each op, and every case that ever failed),
or for every case with TINYDEPLOY_NODE_SUITE_ALL=1 (docs/testing.md). Each case's outcome
must be the one recorded in tests/data/onnx_node_suite.json (so a passing case that
regresses fails, and so does one that starts passing until the file is regenerated with
tools/node_suite_table.py --run); no case may give wrong numbers or a traceback; README's
per-op table must be the one the JSON file gives.
"""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnx_node_suite as suite
from tinydeploy import api

ort = pytest.importorskip("onnxruntime")

EXPECTED = suite.load_expected()
ALL_C = os.environ.get("TINYDEPLOY_NODE_SUITE_ALL") == "1"

# Cases that failed in an earlier run (their C always runs): outputs of the model's
# layout given the NHWC shape when the bytes agree (one channel, inserted 1-axes).
EVER_FAILED = {
    "test_averagepool_2d_precomputed_pads", "test_averagepool_2d_precomputed_pads_count_include_pad",
    "test_averagepool_2d_precomputed_strides", "test_averagepool_2d_precomputed_same_upper",
    "test_averagepool_2d_ceil", "test_averagepool_2d_ceil_last_window_starts_on_pad",
    "test_basic_conv_with_padding", "test_basic_conv_without_padding", "test_conv_with_strides_padding",
    "test_conv_with_strides_no_padding", "test_conv_with_strides_and_asymmetric_padding",
    "test_conv_with_autopad_same", "test_convtranspose_dilations", "test_maxpool_2d_precomputed_pads",
    "test_maxpool_2d_precomputed_strides", "test_maxpool_2d_precomputed_same_upper", "test_maxpool_2d_ceil",
    "test_reshape_zero_dim", "test_reshape_zero_and_negative_dim", "test_resize_upsample_scales_linear",
    "test_resize_upsample_scales_linear_align_corners", "test_unsqueeze_axis_1", "test_unsqueeze_axis_2",
    "test_unsqueeze_two_axes", "test_unsqueeze_three_axes", "test_unsqueeze_unsorted_axes",
    "test_unsqueeze_negative_axes",
}


def _c_subset() -> set:
    first = {}
    for name, e in EXPECTED.items():
        if e["status"] in suite.PASSING:
            first.setdefault(e["op"], name)
    return set(first.values()) | EVER_FAILED


C_SUBSET = _c_subset()


@pytest.fixture(scope="module")
def cases():
    return {c.name: c for c in suite.collect()}


def test_expectations_recorded():
    assert EXPECTED, "tests/data/onnx_node_suite.json is missing: run tools/node_suite_table.py --run"
    failing = {n: e for n, e in EXPECTED.items() if e["status"] in suite.FAILING}
    assert not failing, f"cases recorded as failing (wrong numbers or a traceback are bugs): {failing}"


def test_selection_is_recorded(cases):
    """The installed onnx selects exactly the recorded cases (a new onnx version with new
    cases: regenerate the file with tools/node_suite_table.py --run)."""
    recorded = suite._onnx_version()
    if recorded != onnx.__version__:
        pytest.skip(f"the expectations are for onnx {recorded}, onnx {onnx.__version__} is installed")
    assert sorted(cases) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_node_case(name, cases, tmp_path):
    if name not in cases:
        pytest.skip(f"the installed onnx {onnx.__version__} has no case {name}")
    c_code = ALL_C or name in C_SUBSET
    got = suite.run_case(cases[name], c_code=c_code, work=tmp_path)
    want = EXPECTED[name]
    assert got["status"] not in suite.FAILING, f"{got['status']}: {got['detail']}\n{got.get('traceback', '')}"
    assert (got["status"], got["detail"]) == (want["status"], want["detail"]), \
        (f"{name}: now {got['status']} ({got['detail']}), recorded {want['status']} ({want['detail']}); "
         "if this is an improvement, run tools/node_suite_table.py --run and commit the JSON file and README")


def test_readme_table_is_current():
    assert suite.readme_table() == suite.table(EXPECTED), \
        "README's ONNX node test table is stale: run tools/node_suite_table.py"


def test_statuses_cover_every_case():
    assert {e["status"] for e in EXPECTED.values()} <= set(suite.STATUSES)
    refused = [n for n, e in EXPECTED.items() if e["status"] == suite.REFUSED]
    assert all(EXPECTED[n]["detail"] for n in refused), "every refusal records tinydeploy's message"


# --------------------------------------------------------------------------
# Regression tests for the bugs the node tests found
# --------------------------------------------------------------------------
def _ort(path, feeds):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("kind", ["conv_one_channel", "unsqueeze_middle"])
def test_output_in_model_layout_when_bytes_agree(kind, tmp_path):
    """An output whose NHWC order holds the same bytes as the model's (one channel; 1-axes
    inserted by Unsqueeze) has the model's shape, [1, 1, H, W], not [H, W, 1]."""
    rng = np.random.default_rng(6)
    if kind == "conv_one_channel":
        w = numpy_helper.from_array(rng.normal(0, 0.5, (1, 2, 3, 3)).astype(np.float32), "w")
        nodes, inits = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [w]
        x_shape, y_shape = [1, 2, 5, 6], [1, 1, 5, 6]
    else:
        axes = numpy_helper.from_array(np.array([1, 3], np.int64), "axes")
        nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Unsqueeze", ["r", "axes"], ["y"])]
        inits, x_shape, y_shape = [axes], [3, 4, 5], [3, 1, 4, 1, 5]
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    result = api.compile(path, target="host", quantize="float32")
    assert result.io["output"]["shape"] == y_shape
    x = rng.normal(0, 1, x_shape).astype(np.float32)
    want = _ort(path, {"x": x})[0]
    feed = x if x_shape[0] == 1 else x[None]  # samples along axis 0 (a leading 1 is the batch)
    for golden in (False, True):
        got = api.run(path, {"x": feed}, target="host", quantize="float32", golden=golden).outputs["y"]
        assert got.shape[1:] == tuple(y_shape[1:] if y_shape[0] == 1 else y_shape)
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("trans_a,c_shape", [(1, (4,)), (0, (3, 4)), (1, (3, 1)), (1, (3, 4))])
def test_gemm_trans_a_and_full_bias(trans_a, c_shape, tmp_path):
    """Gemm with transA=1 (A transposed first) and a bias C over rows and columns (an add
    after the fully connected layer): float32 against onnxruntime, int8 C == golden."""
    rng = np.random.default_rng([7, trans_a, len(c_shape)])
    a_shape = [6, 3] if trans_a else [3, 6]
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (6, 4)).astype(np.float32), "b"),
             numpy_helper.from_array(rng.normal(0, 0.5, c_shape).astype(np.float32), "c")]
    node = helper.make_node("Gemm", ["x", "b", "c"], ["y"], transA=trans_a, alpha=0.5, beta=1.5)
    graph = helper.make_graph([node], "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, a_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])], inits)
    path = tmp_path / "gemm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    x = rng.normal(0, 1, [2] + a_shape).astype(np.float32)
    want = np.stack([_ort(path, {"x": s})[0] for s in x])
    got = api.run(path, {"x": x}, target="host", quantize="float32").outputs["y"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    calib = {"x": rng.normal(0, 1, [16] + a_shape).astype(np.float32)}
    c = api.run(path, {"x": x}, target="host", calib=calib).outputs["y"]
    golden = api.run(path, {"x": x}, target="host", calib=calib, golden=True).outputs["y"]
    np.testing.assert_array_equal(c, golden)
    assert np.max(np.abs(c - want)) < 0.1 * np.max(np.abs(want)) + 0.05
