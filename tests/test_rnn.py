"""ONNX LSTM and GRU (tinydeploy/ops/rnn.py): float32 against onnxruntime, int8 C against
the golden model bit for bit (host, emulated Cortex-M7 and RISC-V vector cores), int8
accuracy against the float model, and the refusals' messages. Graphs are built with
onnx.helper, shaped like PyTorch's exports (seq-first X, zero or given initial states,
Squeeze/Gather of the last step, then Gemm)."""
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import api
from tinydeploy.errors import TinydeployError

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def _rng_per_test(request):
    global RNG
    RNG = np.random.default_rng([11, zlib.crc32(request.node.name.encode())])


def _init(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def _model(path, op="LSTM", seq=20, n_in=10, hidden=32, direction="forward", outputs=("Y",),
           head=False, states=None, layout=0, opset=13, scale=0.4, batch=1, **attrs):
    """One LSTM/GRU layer; outputs: which of Y, Y_h, Y_c the graph returns; head: Squeeze
    of the direction axis, Gather of the last step, Gemm to 5 classes (the classifier
    PyTorch users write); states: None, "const" or "input" (initial_h/initial_c)."""
    nd = 2 if direction == "bidirectional" else 1
    gates = 4 if op == "LSTM" else 3
    x_shape = [batch, seq, n_in] if layout else [seq, batch, n_in]
    s_shape = [batch, nd, hidden] if layout else [nd, batch, hidden]
    inits = [_init("W", RNG.normal(0, scale, (nd, gates * hidden, n_in)).astype(np.float32)),
             _init("R", RNG.normal(0, scale, (nd, gates * hidden, hidden)).astype(np.float32)),
             _init("B", RNG.normal(0, 0.2, (nd, 2 * gates * hidden)).astype(np.float32))]
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
    state_names = ["h0", "c0"][:2 if op == "LSTM" else 1]
    if states == "const":
        inits += [_init(n, RNG.uniform(-0.8, 0.8, s_shape).astype(np.float32)) for n in state_names]
    elif states == "input":
        ins += [helper.make_tensor_value_info(n, TensorProto.FLOAT, s_shape) for n in state_names]
    node_ins = ["x", "W", "R", "B", ""] + (state_names if states else [])
    names = {"Y": "Y", "Y_h": "Y_h", "Y_c": "Y_c"}
    node_outs = [names[k] if k in outputs or (k == "Y" and head) else "" for k in ("Y", "Y_h", "Y_c")]
    while node_outs and not node_outs[-1]:
        node_outs.pop()
    if layout:
        attrs["layout"] = 1
    nodes = [helper.make_node(op, node_ins, node_outs, name="rnn", hidden_size=hidden, direction=direction,
                              **attrs)]
    y_shape = [batch, seq, nd, hidden] if layout else [seq, nd, batch, hidden]
    shapes = {"Y": y_shape, "Y_h": s_shape, "Y_c": s_shape}
    outs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, shapes[k]) for k in outputs]
    if head:
        inits += [_init("axes", np.array([1], np.int64)), _init("last", np.array(seq - 1, np.int64)),
                  _init("fc_w", RNG.normal(0, 0.3, (5, nd * hidden)).astype(np.float32)),
                  _init("fc_b", RNG.normal(0, 0.1, 5).astype(np.float32))]
        nodes += [helper.make_node("Squeeze", ["Y", "axes"], ["ys"], name="squeeze"),
                  helper.make_node("Gather", ["ys", "last"], ["y_last"], axis=0, name="last_step"),
                  helper.make_node("Gemm", ["y_last", "fc_w", "fc_b"], ["logits"], transB=1, name="fc")]
        outs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])] + outs
    graph = helper.make_graph(nodes, "rnn", ins, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def _inputs(path, n, layout=0):
    model = onnx.load(path)
    xs = {}
    for vi in model.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        lo = 1.0 if vi.name == "x" else 0.5
        xs[vi.name] = RNG.uniform(-lo, lo, [n] + shape).astype(np.float32) if vi.name != "x" \
            else RNG.normal(0, lo, [n] + shape).astype(np.float32)
    return xs


def _seq_first_twin(path):
    """The layout=1 (batch-first) model as its layout=0 form between transposes
    (onnxruntime implements layout=0 only)."""
    model = onnx.load(path)
    node = model.graph.node[0]
    for a in node.attribute:
        if a.name == "layout":
            a.i = 0
    extra = []
    for k, name in enumerate(list(node.input)):
        if name in ("x", "h0", "c0"):
            node.input[k] = name + "_sf"
            extra.append(helper.make_node("Transpose", [name], [name + "_sf"], perm=[1, 0, 2]))
    after = []
    for k, name in enumerate(list(node.output)):
        if name:
            node.output[k] = name + "_sf"
            after.append(helper.make_node("Transpose", [name + "_sf"], [name],
                                          perm=[2, 0, 1, 3] if k == 0 else [1, 0, 2]))
    nodes = extra + list(model.graph.node) + after
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    twin = path.replace(".onnx", "_seq_first.onnx")
    onnx.save(model, twin)
    return twin


def _ort(path, xs):
    if any(a.name == "layout" and a.i == 1 for a in onnx.load(path).graph.node[0].attribute):
        path = _seq_first_twin(path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    n = len(next(iter(xs.values())))
    rows = [sess.run(None, {k: v[i] for k, v in xs.items()}) for i in range(n)]
    return {o.name: np.stack([r[k] for r in rows]) for k, o in enumerate(sess.get_outputs())}


def _samples(xs):
    """api.run's inputs: each sample without a leading dimension of 1 (data.sample_shape)."""
    return {k: v[:, 0] if v.shape[1] == 1 else v for k, v in xs.items()}


FLOAT_CASES = {
    "lstm_classifier": dict(op="LSTM", head=True),
    "lstm_reverse_13_h_c": dict(op="LSTM", hidden=13, seq=7, direction="reverse", outputs=("Y", "Y_h", "Y_c")),
    "lstm_bidirectional_const_states": dict(op="LSTM", hidden=13, seq=6, n_in=5, direction="bidirectional",
                                            states="const", outputs=("Y", "Y_h")),
    "lstm_input_states": dict(op="LSTM", hidden=9, seq=5, n_in=4, states="input", outputs=("Y_h", "Y_c")),
    "lstm_batch_first": dict(op="LSTM", hidden=12, seq=6, n_in=3, layout=1, opset=14, outputs=("Y", "Y_h")),
    "gru_batch_first_states": dict(op="GRU", hidden=5, seq=4, n_in=3, layout=1, opset=14, states="input",
                                   direction="bidirectional", outputs=("Y", "Y_h")),
    "gru_bidirectional_lbr1": dict(op="GRU", hidden=13, seq=8, n_in=6, direction="bidirectional",
                                   linear_before_reset=1, outputs=("Y", "Y_h")),
    "gru_lbr0_classifier": dict(op="GRU", hidden=16, seq=10, n_in=10, head=True),
    "lstm_batch_3_one_step": dict(op="LSTM", hidden=1, seq=1, n_in=2, batch=3, states="input",
                                  direction="bidirectional", outputs=("Y", "Y_h", "Y_c")),
    "gru_batch_2_lbr0": dict(op="GRU", hidden=6, seq=4, n_in=3, batch=2, states="const",
                             direction="bidirectional", outputs=("Y", "Y_h")),
    "gru_reverse_input_state": dict(op="GRU", hidden=7, seq=5, n_in=3, direction="reverse", states="input",
                                    linear_before_reset=1, outputs=("Y_h",)),
}


@pytest.mark.parametrize("case", sorted(FLOAT_CASES))
def test_float_matches_onnxruntime(tmp_path, case):
    path = _model(str(tmp_path / "m.onnx"), **FLOAT_CASES[case])
    xs = _inputs(path, 3)
    want = _ort(path, xs)
    got = api.run(path, _samples(xs), target="host", quantize="float32").outputs
    for name, ref in want.items():
        np.testing.assert_allclose(got[name].reshape(ref.shape), ref, atol=1e-5, rtol=1e-4, err_msg=name)


# --------------------------------------------------------------------------
# int8
# --------------------------------------------------------------------------
def _stacked(path):
    """x [9, 1, 6] -> LSTM (reverse, hidden 13, constant initial states) -> GRU
    (bidirectional, linear_before_reset=1, hidden 7) -> GRU (linear_before_reset=0, hidden 5,
    constant initial state); outputs: the last GRU's Y and the LSTM's Y_h."""
    seq = 9
    ints = lambda name, v: _init(name, np.array(v, np.int64))  # noqa: E731
    w = lambda name, *shape: _init(name, RNG.normal(0, 0.4, shape).astype(np.float32))  # noqa: E731
    inits = [w("W1", 1, 52, 6), w("R1", 1, 52, 13), w("B1", 1, 104),
             _init("h1", RNG.uniform(-0.5, 0.5, (1, 1, 13)).astype(np.float32)),
             _init("c1", RNG.uniform(-1, 1, (1, 1, 13)).astype(np.float32)),
             w("W2", 2, 21, 13), w("R2", 2, 21, 7), w("B2", 2, 42),
             w("W3", 1, 15, 14), w("R3", 1, 15, 5), w("B3", 1, 30),
             _init("h3", RNG.uniform(-0.5, 0.5, (1, 1, 5)).astype(np.float32)),
             ints("ax1", [1]), ints("shape", [seq, 1, 14])]
    nodes = [helper.make_node("LSTM", ["x", "W1", "R1", "B1", "", "h1", "c1"], ["y1", "y1_h"], name="lstm",
                              hidden_size=13, direction="reverse"),
             helper.make_node("Squeeze", ["y1", "ax1"], ["s1"], name="squeeze1"),
             helper.make_node("GRU", ["s1", "W2", "R2", "B2"], ["y2"], name="gru_bi", hidden_size=7,
                              direction="bidirectional", linear_before_reset=1),
             helper.make_node("Reshape", ["y2", "shape"], ["s2"], name="merge_directions"),
             helper.make_node("GRU", ["s2", "W3", "R3", "B3", "", "h3"], ["y3"], name="gru", hidden_size=5)]
    graph = helper.make_graph(nodes, "stacked", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [seq, 1, 6])],
                              [helper.make_tensor_value_info("y3", TensorProto.FLOAT, [seq, 1, 1, 5]),
                               helper.make_tensor_value_info("y1_h", TensorProto.FLOAT, [1, 1, 13])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def _int8_vs_golden(path, target, n=4, n_calib=24, xs=None):
    calib = _inputs(path, n_calib)
    xs = _inputs(path, n) if xs is None else xs
    c = api.run(path, _samples(xs), target=target, calib=_samples(calib))
    golden = api.run(path, _samples(xs), target=target, calib=_samples(calib), golden=True)
    for name in c.outputs:
        np.testing.assert_array_equal(c.outputs[name], golden.outputs[name], err_msg=name)
    return c


INT8_CASES = {
    "lstm_classifier": dict(op="LSTM", head=True),
    "lstm_bidirectional_13_h": dict(op="LSTM", hidden=13, seq=6, n_in=5, direction="bidirectional",
                                    states="const", outputs=("Y_h",)),
    "gru_classifier_lbr1": dict(op="GRU", hidden=16, seq=10, n_in=10, head=True, linear_before_reset=1),
    "gru_reverse_lbr0_state": dict(op="GRU", hidden=11, seq=6, n_in=4, direction="reverse", states="const",
                                   outputs=("Y", "Y_h")),
    "lstm_batch_2_reverse": dict(op="LSTM", hidden=5, seq=3, n_in=2, batch=2, direction="reverse",
                                 states="const", outputs=("Y",)),
    "gru_batch_2_bidirectional": dict(op="GRU", hidden=3, seq=2, n_in=2, batch=2, direction="bidirectional",
                                      states="const", outputs=("Y_h",), linear_before_reset=1),
}


@pytest.mark.parametrize("case", sorted(INT8_CASES))
def test_int8_bit_exact_with_golden_on_the_host(tmp_path, case):
    _int8_vs_golden(_model(str(tmp_path / "m.onnx"), **INT8_CASES[case]), "host")


@pytest.mark.parametrize("target", ["host", "stm32f746", "cortex-m55", "rv32-zve32x", "esp32-c3"])
def test_int8_stacked_bit_exact_with_golden(tmp_path, target):
    """LSTM, bidirectional GRU (linear_before_reset=1) and GRU (=0) in one model, odd sizes
    (inputs of 6, 13 and 14, hidden 13, 7 and 5): C == golden. The Cortex-M7 runs the DSP
    variant (SMLAD dot products), the Cortex-M55 the Helium one, the RISC-V vector core its
    vector variant, the others the portable kernels (== golden)."""
    c = _int8_vs_golden(_stacked(str(tmp_path / "stacked.onnx")), target, n=3)
    assert {"y3", "y1_h"} <= set(c.outputs)
    variants = {l["name"]: l["variant"] for l in c.report["layers"] if l["op"] in ("lstm_s8", "gru_s8")}
    want = {"stm32f746": "arm_dsp_rnn", "cortex-m55": "arm_mve_rnn", "rv32-zve32x": "rvv_rnn"}.get(target,
                                                                                              "portable")
    assert sorted(variants) == ["gru", "gru_bi", "lstm"] and set(variants.values()) == {want}  # Y_h: a slice


@pytest.mark.parametrize("target", ["stm32f746", "cortex-m55", "rv32-zve32x"])
def test_int8_variants_built_with_clang(tmp_path, target):
    """The DSP, Helium and vector variants built by clang: C == golden."""
    path = _stacked(str(tmp_path / "stacked.onnx"))
    calib, xs = _inputs(path, 16), _inputs(path, 2)
    c = api.run(path, _samples(xs), target=target, calib=_samples(calib), toolchain="clang")
    golden = api.run(path, _samples(xs), target=target, calib=_samples(calib), golden=True)
    for name in c.outputs:
        np.testing.assert_array_equal(c.outputs[name], golden.outputs[name], err_msg=name)


def test_float_on_an_arm_core(tmp_path):
    """The float kernels on a Cortex-M7 (its FPU and libm) against onnxruntime."""
    path = _model(str(tmp_path / "m.onnx"), op="GRU", hidden=9, seq=5, n_in=3, direction="bidirectional",
                  linear_before_reset=1, outputs=("Y",))
    path2 = _model(str(tmp_path / "l.onnx"), op="LSTM", hidden=7, seq=4, n_in=3, states="const",
                   outputs=("Y_h", "Y_c"))
    for p in (path, path2):
        xs = _inputs(p, 2)
        want = _ort(p, xs)
        got = api.run(p, _samples(xs), target="stm32f746", quantize="float32").outputs
        for name, ref in want.items():
            np.testing.assert_allclose(got[name].reshape(ref.shape), ref, atol=1e-5, rtol=1e-4, err_msg=name)


def _sqnr_db(ref, got):
    return 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref - got.reshape(ref.shape)) ** 2))


@pytest.mark.parametrize("case", [dict(op="LSTM", hidden=32, seq=20, n_in=10, outputs=("Y",)),
                                  dict(op="GRU", hidden=24, seq=12, n_in=8, direction="bidirectional",
                                       linear_before_reset=1, outputs=("Y",)),
                                  dict(op="GRU", hidden=13, seq=12, n_in=8, outputs=("Y",))],
                         ids=["lstm", "gru_bidirectional", "gru_lbr0"])
def test_int8_accuracy_against_float(tmp_path, case):
    """The int8 layer computes the float layer's function: its output's SQNR against
    onnxruntime, on random data calibrated on data drawn the same way, is above 25 dB."""
    path = _model(str(tmp_path / "m.onnx"), scale=0.3, **case)
    calib, xs = _inputs(path, 64), _inputs(path, 16)
    got = api.run(path, _samples(xs), target="host", calib=_samples(calib), golden=True).outputs["Y"]
    sqnr = _sqnr_db(_ort(path, xs)["Y"], got)
    print(f"SQNR {sqnr:.1f} dB")
    assert sqnr > 25


def test_the_c_table_is_the_golden_models():
    from tinydeploy.ops import rnn
    from tinydeploy.resources import RUNTIME_C, data_dir
    text = (data_dir(RUNTIME_C) / "include" / "td_rnn_s8_body.h").read_text()
    body = text.split("static const uint16_t td_rnn_sigmoid_nodes[256] = {")[1].split("}")[0]
    assert [int(v) for v in body.replace("\n", " ").split(",")] == rnn.SIGMOID_NODES.tolist()


@pytest.mark.parametrize("fn,frac", [("LOGISTIC", 12), ("TANH", 12), ("TANH", 9), ("TANH", 11), ("TANH", 13),
                                     ("TANH", 15)])
def test_int16_sigmoid_and_tanh_are_tflite_micros_on_every_input(fn, frac):
    """The int8 LSTM's activations (sigmoid_q15, tanh_q15; the C kernels equal them) against
    TFLite Micro's int16 LOGISTIC and TANH on all 65,536 inputs: the gates' Q3.12 and the
    cell state's scales 2^-frac with their input scaling (cell_tanh_params)."""
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    from tflite_oracle import make_single_op_model, tflm_run
    from tinydeploy.ops import rnn
    x = np.arange(-32768, 32768, dtype=np.int16).reshape(1, -1)
    model = make_single_op_model(fn, [dict(shape=x.shape, dtype=np.int16, scale=2.0 ** -frac, zp=0)],
                                 dict(shape=x.shape, dtype=np.int16, scale=2.0 ** -15, zp=0))
    theirs = tflm_run(model, [x])
    ours = rnn.sigmoid_q15(x) if fn == "LOGISTIC" else rnn.tanh_q15(x, *rnn.cell_tanh_params(frac))
    np.testing.assert_array_equal(ours, theirs)


# ONNX orders an LSTM's gate rows i, o, f, c; TFLite keeps one tensor per gate, i, f, c, o
_TFLITE_GATES = {"i": 0, "o": 1, "f": 2, "c": 3}


def _tflm_lstm(x, wq, rq, bias, s_x, zp_x, s_w, s_r, hid, cell_frac):
    """TFLite Micro's UNIDIRECTIONAL_SEQUENCE_LSTM (time major, int8 activations and
    weights, int16 cell state at 2^-cell_frac, hidden state 1/128) on x [seq, batch, in]:
    (its output, its cell state after the last step)."""
    from tflite_oracle import make_single_op_model, schema, tflm_run
    seq, batch, n_in = x.shape
    gate_rows = {g: slice(k * hid, (k + 1) * hid) for g, k in _TFLITE_GATES.items()}

    def weight(data, scale):
        return dict(shape=data.shape, data=data, scale=scale, zp=0)

    order = "ifco"
    inputs = [dict(shape=x.shape, scale=s_x, zp=zp_x)]
    inputs += [weight(wq[gate_rows[g]], s_w[g]) for g in order]
    inputs += [weight(rq[gate_rows[g]], s_r[g]) for g in order]
    inputs += [None, None, None]  # no peepholes
    inputs += [dict(shape=(hid,), dtype=np.int32, data=bias[gate_rows[g]], scale=s_x * s_w[g], zp=0)
               for g in order]
    inputs += [None, None]  # no projection
    inputs += [dict(shape=(batch, hid), scale=1 / 128, zp=0, variable=True),
               dict(shape=(batch, hid), dtype=np.int16, scale=2.0 ** -cell_frac, zp=0, variable=True)]
    inputs += [None] * 4  # no layer norm
    options = schema.UnidirectionalSequenceLSTMOptionsT()
    options.fusedActivationFunction, options.timeMajor = schema.ActivationFunctionType.TANH, True
    model = make_single_op_model("UNIDIRECTIONAL_SEQUENCE_LSTM", inputs,
                                 dict(shape=(seq, batch, hid), scale=1 / 128, zp=0), options,
                                 schema.BuiltinOptions.UnidirectionalSequenceLSTMOptions)
    cell_state = 1 + 12 + 1  # its tensor index: after x, 12 weights and biases, the hidden state
    out, (cell,) = tflm_run(model, [x], tensors=[cell_state])
    return out, cell["tensor_data"]


@pytest.mark.parametrize("hid,n_in,seq,batch,cell_frac,zp_x", [(7, 5, 9, 1, 11, 3), (24, 10, 60, 4, 13, -7), (32, 12, 400, 8, 11, 5),
                                                             (32, 12, 60, 4, 9, 0)])
def test_int8_lstm_golden_is_tflite_micros(hid, n_in, seq, batch, cell_frac, zp_x):
    """The golden int8 LSTM (the C kernels equal it) against TFLite Micro's integer
    UNIDIRECTIONAL_SEQUENCE_LSTM: one weight scale per gate (TFLite's per-tensor weights),
    an asymmetric input, cell states in Q4.11, Q2.13 (the tanh's input shifted right) and
    Q6.9, batches of one to eight. The outputs and the final cell state, bit for bit."""
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    from tinydeploy.ir import Int8Params, Op
    from tinydeploy.ops import rnn
    rng = np.random.default_rng(hid * 100 + seq)
    s_x = float(np.float32(0.04))
    w = rng.normal(0, 0.6, (4 * hid, n_in))
    r = rng.normal(0, 0.6, (4 * hid, hid))
    b = rng.normal(0, 0.8, 4 * hid)
    s_w, s_r, wq, rq = {}, {}, np.zeros(w.shape, np.int8), np.zeros(r.shape, np.int8)
    for g, k in _TFLITE_GATES.items():
        rows = slice(k * hid, (k + 1) * hid)
        s_w[g] = float(np.float32(np.abs(w[rows]).max() / 127))
        s_r[g] = float(np.float32(np.abs(r[rows]).max() / 127))
        wq[rows] = np.clip(np.round(w[rows] / s_w[g]), -127, 127)
        rq[rows] = np.clip(np.round(r[rows] / s_r[g]), -127, 127)
    row_scale = {name: np.repeat([scales[g] for g in "iofc"], hid) for name, scales in (("w", s_w), ("r", s_r))}
    bias = np.round(b / (s_x * row_scale["w"])).astype(np.int32)
    x = rng.integers(-128, 128, (seq, batch, n_in)).astype(np.int8)

    im, ish, rm, rsh = rnn.gate_multipliers(s_x, row_scale["w"], 1 / 128, row_scale["r"])
    q = dict(seq_len=seq, batch=batch, input_size=n_in, hidden_size=hid, num_directions=1, reverse=0,
             output="TD_RNN_S8_Y", linear_before_reset=0, input_multiplier=im, input_shift=ish,
             recurrent_multiplier=rm, recurrent_shift=rsh, **rnn.lstm_cell_params(cell_frac, 1 / 128))
    op = Op("lstm_s8", "lstm", ["x", "w", "r", "b_in", "b_rec", "", ""], ["y"], int8_params=Int8Params(q))
    folded = bias - zp_x * wq.astype(np.int64).sum(axis=1)  # the input zero point in the bias
    ours, our_cell = rnn.golden_with_state(op, [x, wq[None], rq[None], folded[None].astype(np.int32),
                                                np.zeros((1, 4 * hid), np.int32)])
    theirs, their_cell = _tflm_lstm(x, wq, rq, bias, s_x, zp_x, s_w, s_r, hid, cell_frac)
    np.testing.assert_array_equal(ours.reshape(seq, batch, hid), theirs)
    np.testing.assert_array_equal(our_cell[0], their_cell)
    assert len(np.unique(theirs)) > 20 and theirs.min() < -60 and theirs.max() > 60


def test_report_counts_macs_and_plans_the_state_in_the_arena(tmp_path):
    path = _model(str(tmp_path / "m.onnx"), op="LSTM", hidden=13, seq=7, n_in=5, outputs=("Y_h",))
    result = api.compile(path, target="host", quantize="float32", out_dir=tmp_path / "out")
    layer = next(l for l in result.report["layers"] if l["op"] == "lstm")
    assert layer["macs"] == 7 * 4 * 13 * (5 + 13)
    offset, nbytes = result.plan.own_scratch["rnn_Y_h"]
    assert nbytes == 6 * 13 * 4 and offset + nbytes <= result.plan.arena_bytes
    assert any(e["tensor"] == "scratch:rnn_Y_h" for step in result.plan.timeline for e in step["live"])
    assert layer["scratch"] == dict(arena_offset=offset, bytes=nbytes)


# --------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------
def _edit(path, fn):
    model = onnx.load(path)
    fn(model)
    onnx.save(model, path)
    return path


def _refusal(path, quantize="float32", calib=None):
    with pytest.raises(TinydeployError) as err:
        if calib is None:
            api.compile(path, target="host", quantize=quantize)
        else:
            api.compile(path, target="host", calib=calib)
    return str(err.value)


def _set_attr(name, value):
    def fn(model):
        model.graph.node[0].attribute.append(helper.make_attribute(name, value))
    return fn


@pytest.mark.parametrize("attr, value, message", [
    ("clip", 3.0, "node 'rnn' (LSTM): attribute 'clip' (cell clipping) is not supported; tinydeploy "
                  "compiles LSTM without it (remove it from the model)"),
    ("input_forget", 1, "node 'rnn' (LSTM): attribute 'input_forget' (coupled input and forget gates) is not "
                        "supported; tinydeploy compiles LSTM without it (remove it from the model)"),
    ("activations", ["Sigmoid", "Relu", "Tanh"],
     "node 'rnn' (LSTM): activations ['Sigmoid', 'Relu', 'Tanh'] are not supported; tinydeploy compiles the "
     "default activations ['Sigmoid', 'Tanh', 'Tanh'] only (re-export the model with them)"),
])
def test_unsupported_attributes_are_refused(tmp_path, attr, value, message):
    path = _edit(_model(str(tmp_path / "m.onnx"), hidden=4, seq=3, n_in=2), _set_attr(attr, value))
    assert _refusal(path) == message


def test_weights_computed_at_run_time_are_refused(tmp_path):
    def weights_as_input(model):
        w = next(i for i in model.graph.initializer if i.name == "W")
        model.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, list(w.dims)))
        model.graph.initializer.remove(w)
    path = _edit(_model(str(tmp_path / "m.onnx"), hidden=4, seq=3, n_in=2), weights_as_input)
    assert _refusal(path) == ("node 'rnn' (LSTM): W must be a constant (an initializer); tinydeploy compiles "
                              "static graphs only")


def test_variable_sequence_lengths_and_peepholes_are_refused(tmp_path):
    def lens(model):
        model.graph.initializer.append(_init("lens", np.array([2], np.int32)))
        model.graph.node[0].input[4] = "lens"
    path = _edit(_model(str(tmp_path / "m.onnx"), hidden=4, seq=3, n_in=2), lens)
    assert _refusal(path) == ("node 'rnn' (LSTM): sequence_lens must be absent or a constant equal to the "
                              "sequence length (3) for every batch entry; variable-length sequences are not "
                              "supported")

    def peepholes(model):
        model.graph.initializer.append(_init("P", np.ones((1, 12), np.float32)))
        model.graph.node[0].input.extend(["", "", "P"])
    path = _edit(_model(str(tmp_path / "p.onnx"), hidden=4, seq=3, n_in=2), peepholes)
    assert _refusal(path) == ("node 'rnn' (LSTM): peephole weights (input P) are not supported; only LSTMs "
                              "without peepholes compile")


def test_int8_refuses_the_cell_output_and_run_time_initial_states(tmp_path):
    path = _model(str(tmp_path / "c.onnx"), hidden=4, seq=3, n_in=2, outputs=("Y_c",))
    assert _refusal(path, calib=_samples(_inputs(path, 4))) == (
        "node 'rnn_Y_c' (lstm): the cell state output Y_c is float32 only; read Y or Y_h, or compile with "
        "--quantize float32")
    path = _model(str(tmp_path / "s.onnx"), op="GRU", hidden=4, seq=3, n_in=2, states="input")
    assert _refusal(path, calib=_samples(_inputs(path, 4))) == (
        "node 'rnn' (gru): int8 needs constant (or absent) initial states; 'h0' is computed at run time "
        "(float32 supports it)")


# --------------------------------------------------------------------------
# PyTorch exports (batch_first, as users write them)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_torch_classifier(tmp_path, cell):
    torch = pytest.importorskip("torch")

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, cell)(10, 32, batch_first=True)
            self.fc = torch.nn.Linear(32, 5)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.fc(y[:, -1, :])

    torch.manual_seed(0)
    path = str(tmp_path / f"{cell}.onnx")
    with torch.no_grad():
        torch.onnx.export(Classifier().eval(), torch.randn(1, 20, 10), path, opset_version=13, dynamo=False,
                          input_names=["x"], output_names=["logits"])
    xs = {"x": RNG.normal(0, 1, (4, 1, 20, 10)).astype(np.float32)}
    want = _ort(path, xs)["logits"]
    got = api.run(path, _samples(xs), target="host", quantize="float32").outputs["logits"]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5, rtol=1e-4)
    c = _int8_vs_golden(path, "host", n_calib=32, xs=xs)
    assert _sqnr_db(want, c.outputs["logits"]) > 20


# --------------------------------------------------------------------------
# C hygiene of the generated libraries (warnings, cppcheck, sanitizers)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("quantize", ["float32", "int8"])
def test_generated_c_is_clean_and_sanitizer_safe(tmp_path, quantize, monkeypatch):
    import shutil
    import subprocess
    from tinydeploy import golden, hostrun
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0:halt_on_error=1")
    monkeypatch.setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    specs = [dict(op="LSTM", hidden=13, seq=5, n_in=3, direction="bidirectional", states="const", outputs=("Y",)),
             dict(op="GRU", hidden=6, seq=4, n_in=3, direction="reverse", states="const", outputs=("Y_h",),
                  linear_before_reset=int(quantize == "float32"))]
    results = []
    for k, spec in enumerate(specs):
        path = _model(str(tmp_path / f"m{k}.onnx"), **spec)
        kw = dict(quantize="float32") if quantize == "float32" else dict(calib=_samples(_inputs(path, 8)))
        results.append(api.compile(path, target="host", out_dir=tmp_path / f"lib{k}", name="net", **kw))
    for result in results:
        sources = sorted(str(p) for p in result.out_dir.glob("*.c"))
        for cc in ("gcc", "clang"):
            if shutil.which(cc) is None:
                continue
            proc = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror",
                                   "-O2", "-I", str(result.out_dir), "-c", *sources], capture_output=True,
                                  text=True, cwd=tmp_path)
            assert proc.returncode == 0 and not proc.stderr, proc.stderr[-3000:]
        if shutil.which("cppcheck") is not None:
            proc = subprocess.run(["cppcheck", "--std=c99", "--enable=warning,style,performance,portability",
                                   "--error-exitcode=1", "--inline-suppr", "-q", "-U__ARM_FEATURE_DSP",
                                   "-U__ARM_FEATURE_MVE", "-U__riscv", "-I", str(result.out_dir), *sources],
                                  capture_output=True, text=True)
            assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr[-3000:]
        out = result.io["output"]
        exe = hostrun.build(result.out_dir, result.name, result.io, tmp_path / "model",
                            extra_flags=["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                                         "-fno-omit-frame-pointer", "-g", "-O1"])
        shape = out["shape"][1:] if out["shape"] and out["shape"][0] == 1 else out["shape"]
        dtype = np.float32 if quantize == "float32" else np.int8
        x = RNG.normal(0, 1, (3,) + tuple(result.io["input"]["shape"])).astype(np.float32)
        if dtype is np.int8:
            s, z = result.io["input"]["scale"], result.io["input"]["zero_point"]
            x = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
        got = hostrun.run(exe, x, out["dtype"], shape).reshape(len(x), -1)
        want = golden.reference_outputs(result.graph, x).reshape(len(x), -1)
        if dtype is np.int8:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_int8_classifier_within_3db_of_onnxruntime_quantizer(tmp_path, op):
    """LSTM and GRU classifiers (recurrence, last step, linear head) in int8: the C's output
    SQNR against the float model is no worse than 3 dB below onnxruntime's own static int8
    quantization (QDQ, int8, min-max) calibrated on the same data."""
    from onnxruntime import quantization as oq
    path = _model(str(tmp_path / "m.onnx"), op=op, head=True, scale=0.3)
    out = onnx.load(path).graph.output[0].name
    calib, xs = _inputs(path, 64), _inputs(path, 16)
    ours = api.run(path, _samples(xs), target="host", calib=_samples(calib)).outputs[out]
    ref = _ort(path, xs)[out]

    class Reader(oq.CalibrationDataReader):
        def __init__(self):
            self.samples = iter([{"x": c} for c in calib["x"]])

        def get_next(self):
            return next(self.samples, None)

    qpath = str(tmp_path / "ort_int8.onnx")
    oq.quantize_static(path, qpath, Reader(), quant_format=oq.QuantFormat.QDQ,
                       activation_type=oq.QuantType.QInt8, weight_type=oq.QuantType.QInt8)
    theirs = _ort(qpath, xs)[out]
    assert _sqnr_db(ref, ours) >= _sqnr_db(ref, theirs) - 3.0, (_sqnr_db(ref, ours), _sqnr_db(ref, theirs))
