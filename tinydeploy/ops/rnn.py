"""Recurrent layers: ONNX LSTM and GRU, one IR op per layer with the time loop inside
the kernel.

Supported (the lowering `_rnn` in frontend.py refuses the rest, naming what to change):
  * X [seq, batch, input] (layout=0) or [batch, seq, input] (layout=1, through
    transposes); constant W, R and B (B absent: zero);
  * direction forward, reverse or bidirectional;
  * the default activations only (LSTM: Sigmoid, Tanh, Tanh; GRU: Sigmoid, Tanh), no clip,
    no input_forget, no peepholes (an all-zero P is accepted); GRU linear_before_reset 0
    and 1 (PyTorch exports 1);
  * sequence_lens absent or constant and equal to the sequence length;
  * initial_h / initial_c absent (zero), constant or computed (graph inputs) in float32;
    absent or constant in int8;
  * outputs Y [seq, dirs, batch, hidden], Y_h and Y_c [dirs, batch, hidden], any subset;
    each output the model reads is one IR op (attr output = "y", "h" or "c") that runs the
    whole recurrence, except Y_h read with Y: a slice of Y's last step per direction.

IR kinds: lstm, gru (float), lstm_s8, gru_s8 (int8). Inputs [X, W, R, B, initial_h(,
initial_c)] ("" for a zero state); attrs hidden, direction, output (and
linear_before_reset for GRU). The recurrent state (h, c) and the gates live in the
arena: the kernels' scratch (OpDef.scratch, planned by the memory planner).

int8 LSTM: TFLite's integer LSTM (TFLite Micro's UNIDIRECTIONAL_SEQUENCE_LSTM with int8
activations and weights, int16 cell state, no layer norm, projection or peepholes), bit-exact
with TFLite Micro when every gate's weights share one scale (tests/test_rnn.py runs the golden
kernel against TFLite Micro's); tinydeploy quantizes weights per gate row, which only gives
each row its own requantization multiplier:
  * X int8 (calibrated), W and R int8 symmetric per gate row, the input side's bias int32
    (B's W and R halves added, the input zero point folded in);
  * each gate row's pre-activation: the int32 accumulators of the input (scale s_x * s_w)
    and of the recurrent side (scale s_h * s_r), each requantized to Q3.12 int16 with
    TFLite's MultiplyByQuantizedMultiplier and saturated, added saturating;
  * gates: TFLite's int16 sigmoid and tanh, Q3.12 -> Q0.15 (sigmoid_q15, tanh_q15: one
    table of 256 sigmoid nodes, linear interpolation);
  * the cell state: int16 at a power-of-two scale 2^-cell_frac (cell_frac = 15 - the integer
    bits its calibrated range needs, Q4.11 without calibration); c = sat(sat(f c) + sat(i g)),
    each product requantized to the cell's scale (lstm_cell_params);
  * h = o * tanh(c): tanh_q15 of the cell state brought to its input scale
    (cell_tanh_params), the product requantized to the int8 hidden state, whose quantization
    is fixed at 1/128, zero point 0 (|h| < 1; it is also the output's).
int8 GRU (TFLite has no integer GRU; tinydeploy's own, in the same style): gates as the
LSTM's (Q3.12 pre-activations, sigmoid_q15 / tanh_q15); the hidden state is int16 Q0.15 (the
recurrence keeps 15 bits), the recurrent product reads it rounded to int8 (1/128), the output
is that int8 (1/128, 0); the reset gate scales R h + its bias (linear_before_reset 1, the
GRU keeps the R half of its candidate bias on the recurrent side) or h before R (0); its
products round by a rounding divide by a power of two (ties away from zero).
Y_c is float only; int8 initial states must be constants.

Portable kernels: td_lstm_f32 / td_gru_f32 (f32/rnn.c), td_lstm_s8 / td_gru_s8
(s8/rnn_s8.c; their bodies are in td_rnn_s8_body.h). Arm cores with the DSP extension
get td_lstm_s8_dsp / td_gru_s8_dsp (arm/rnn_dsp.c: the same bodies with SMLAD dot
products, bit-exact; chosen by backends/arm.py through arm_dsp_choice), Helium cores
td_lstm_s8_mve / td_gru_s8_mve (arm/rnn_mve.c: VMLADAVA dot products; arm_mve_choice), RISC-V
vector cores
td_lstm_s8_rvv / td_gru_s8_rvv (riscv/rnn_rvv.c: vector dot products; backends/riscv.py,
rvv_choice).
"""
from __future__ import annotations

import math

import numpy as np

from .. import qmath
from ..ctext import Call
from ..errors import TinydeployError
from ..ir import Graph, Int8Params, Op
from ..kernel_variants import Choice
from ..overflow import shifted
from .base import OpDef, register
from .common import fixed_output, s8_call, scalar_q

H_QUANT = (1.0 / 128, 0)  # int8 hidden state and output: fixed quantization (|h| < 1)
OUTPUTS = {"y": "TD_RNN_Y", "h": "TD_RNN_Y_H", "c": "TD_RNN_Y_C"}
GATES = {"lstm": 4, "gru": 3}
GATE_FRAC = 12  # gate pre-activations: Q3.12


# --------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------
def _dims(g: Graph, op: Op) -> dict:
    seq, batch, n_in = g.tensors[op.inputs[0]].shape
    return dict(seq_len=seq, batch=batch, input_size=n_in, hidden_size=op.attrs["hidden"],
                num_directions=2 if op.attrs["direction"] == "bidirectional" else 1,
                reverse=int(op.attrs["direction"] == "reverse"))


def _kind(op: Op) -> str:
    return op.kind[:-3] if op.kind.endswith("_s8") else op.kind


def _macs(g: Graph, op: Op) -> int:
    d = _dims(g, op)
    gates = GATES[_kind(op)]
    per_step = gates * d["hidden_size"] * (d["input_size"] + d["hidden_size"])
    return per_step * d["seq_len"] * d["batch"] * d["num_directions"]


def _args(op: Op, args: list) -> list:
    """The op's inputs in order, None for an absent one (the interpreters drop '' inputs)."""
    it = iter(args)
    return [next(it) if name else None for name in op.inputs]


# --------------------------------------------------------------------------
# Float reference (ONNX semantics)
# --------------------------------------------------------------------------
def _sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    outputs, _ = _float_run(g, op, args)
    return outputs[op.attrs["output"]]


def _internal_ranges(g: Graph, op: Op, args: list) -> dict:
    """The LSTM's cell state |max| over the sequence (its int16 format, _cell_frac)."""
    return {"cell": _float_run(g, op, args)[1]}


def _float_run(g: Graph, op: Op, args: list) -> tuple[dict, float]:
    """({"y", "h", "c": outputs}, the cell state's |max|; 0 for a GRU)."""
    lstm = _kind(op) == "lstm"
    x, w, r, b, h0, *rest = _args(op, args)
    c0 = rest[0] if lstm else None
    d = _dims(g, op)
    seq, batch, hid, nd = d["seq_len"], d["batch"], d["hidden_size"], d["num_directions"]
    n_g = GATES[_kind(op)]
    y = np.zeros((seq, nd, batch, hid), np.float32)
    h_last = np.zeros((nd, batch, hid), np.float32)
    c_last = np.zeros((nd, batch, hid), np.float32)
    cell_max = 0.0
    for di in range(nd):
        backward = di == 1 or d["reverse"]
        wd, rd = w[di].astype(np.float32), r[di].astype(np.float32)
        wb, rb = b[di, :n_g * hid].astype(np.float32), b[di, n_g * hid:].astype(np.float32)
        h = np.zeros((batch, hid), np.float32) if h0 is None else h0[di].astype(np.float32)
        c = np.zeros((batch, hid), np.float32) if c0 is None else c0[di].astype(np.float32)
        for step in range(seq):
            t = seq - 1 - step if backward else step
            xt = x[t].astype(np.float32)
            if lstm:
                gates = xt @ wd.T + h @ rd.T + wb + rb
                i, o, f, cc = (gates[:, k * hid:(k + 1) * hid] for k in range(4))
                c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(cc)
                h = _sigmoid(o) * np.tanh(c)
                cell_max = max(cell_max, float(np.abs(c).max()))
            else:
                gx = xt @ wd.T + wb
                z = _sigmoid(gx[:, :hid] + h @ rd[:hid].T + rb[:hid])
                rr = _sigmoid(gx[:, hid:2 * hid] + h @ rd[hid:2 * hid].T + rb[hid:2 * hid])
                if op.attrs["linear_before_reset"]:
                    n = np.tanh(gx[:, 2 * hid:] + rr * (h @ rd[2 * hid:].T + rb[2 * hid:]))
                else:
                    n = np.tanh(gx[:, 2 * hid:] + (rr * h) @ rd[2 * hid:].T + rb[2 * hid:])
                h = ((1 - z) * n + z * h).astype(np.float32)
            y[t, di] = h
        h_last[di], c_last[di] = h, c
    return {"y": y, "h": h_last, "c": c_last}, cell_max


def _layout(lay, op: Op) -> None:
    """The op works in the model's own (logical) order."""
    op.inputs = [lay.want(i, lay.ident(i)) if i and i in lay.perm else i for i in op.inputs]
    lay.set_out(op, lay.ident(op.outputs[0]))


def _scratch_f32(g: Graph, op: Op) -> int:
    hid = op.attrs["hidden"]
    return 4 * (6 * hid if _kind(op) == "lstm" else 5 * hid)


def _f32_params(g: Graph, op: Op) -> dict:
    p = _dims(g, op)
    p["output"] = OUTPUTS[op.attrs["output"]]
    if _kind(op) == "gru":
        p["linear_before_reset"] = int(op.attrs["linear_before_reset"])
    return p


def _scratch_ptr(c, op: Op, ctype: str) -> str:
    offset, _ = c.plan.own_scratch[op.name]
    return f"({ctype} *)(void *)({c.name}_arena + {offset})"


def _emit_f32(c, op: Op, sym: str) -> Call:
    lstm = op.kind == "lstm"
    ins = [c.ptr(i) for i in op.inputs]
    return Call("td_lstm_f32" if lstm else "td_gru_f32", "f32/rnn.c",
                ins + [c.ptr(op.outputs[0], False), _scratch_ptr(c, op, "float")],
                "td_rnn_f32_params", _f32_params(c.g, op))


# --------------------------------------------------------------------------
# int8: parameters
# --------------------------------------------------------------------------
# TFLite's int16 logistic and tanh (reference_integer_ops::Logistic / Tanh, which TFLite
# Micro's integer LSTM applies to its gates and its cell state): one table of 256 uint16
# sigmoid nodes over [0, 10.67) in steps of 1/24, read with linear interpolation on |x|
# (sigmoid(-x) = 1 - sigmoid(x), tanh(x) = 2 sigmoid(2x) - 1). Node k is sigmoid(k/24) in
# units of 2^-16, raised by half the error linear interpolation makes midway between nodes
# (65536 (s(x) - s''(x) h^2 / 16), h = 1/24, rounded), so the interpolated curve errs as much
# above as below; the last node is 65535 (the saturated value). These are TFLite's nodes
# exactly (tests/test_rnn.py checks the kernels against TFLite Micro).
def _sigmoid_nodes() -> np.ndarray:
    h = 1.0 / 24
    s = 1.0 / (1.0 + np.exp(-np.arange(256, dtype=np.float64) * h))
    curvature = s * (1 - s) * (1 - 2 * s)
    nodes = np.round(65536.0 * (s - curvature * h * h / 16)).astype(np.int64)
    nodes[-1] = 65535
    return nodes


SIGMOID_NODES = _sigmoid_nodes()  # runtime_c/include/td_rnn_s8_body.h holds the same values


def _prescale(x, multiplier: int, shift: int):
    rounding = (1 << (shift - 1)) if shift > 0 else 0
    return (np.asarray(x, np.int64) * multiplier + rounding) >> shift


def sigmoid_q15(x, multiplier: int = 3, shift: int = 0):
    """int16 sigmoid in Q0.15 of x * multiplier / 2^shift read as x / 2^9 in table steps
    (a Q3.12 input with multiplier 3, shift 0)."""
    v = _prescale(x, multiplier, shift)
    a = np.abs(v)
    k = np.minimum(a >> 9, 254)
    r = (SIGMOID_NODES[k] << 9) + (a & 511) * (SIGMOID_NODES[k + 1] - SIGMOID_NODES[k])
    r = np.where(a >> 9 >= 255, 0x7FFF << 10, r)
    return np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1) >> 10


def tanh_q15(x, multiplier: int = 3, shift: int = 0):
    """int16 tanh in Q0.15, the input scaled as sigmoid_q15's but read at twice the rate
    (x / 2^8 in table steps)."""
    v = _prescale(x, multiplier, shift)
    a = np.abs(v)
    k = np.minimum(a >> 8, 254)
    r = (SIGMOID_NODES[k] << 8) + (a & 255) * (SIGMOID_NODES[k + 1] - SIGMOID_NODES[k])
    r = np.where(a >> 8 >= 255, 0xFFFF << 8, r)
    return np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1) >> 8


def cell_tanh_params(cell_frac: int) -> tuple[int, int]:
    """(multiplier, right shift) that brings the int16 cell state (2^-cell_frac) to
    sigmoid_q15/tanh_q15's input scale, as TFLite Micro derives them from the cell state's
    power-of-two scale."""
    left = 12 - cell_frac
    return (3 << left, 0) if left >= 0 else (3, -left)


def _sat16(v):
    return np.clip(v, qmath.INT16_MIN, qmath.INT16_MAX)


def _sat8(v):
    return np.clip(v, qmath.INT8_MIN, qmath.INT8_MAX)


def _row_scales(w: np.ndarray) -> np.ndarray:
    """Symmetric int8 scale of every gate row: [dirs, rows] float32."""
    m = np.abs(w.astype(np.float64)).max(axis=2) / 127.0
    return np.where(m > 0, m, 1.0).astype(np.float32)


def _cell_frac(op: Op) -> int:
    """Fraction bits of the int16 cell state: 15 minus the integer bits its calibrated range
    needs (4 integer bits when no calibration ran)."""
    absmax = op.internal_absmax.get("cell")
    bits = 4 if absmax is None else max(0, math.ceil(math.log2(max(absmax, 1e-6))))
    if bits > 15:
        raise TinydeployError(f"node '{op.name}' (lstm): the cell state reaches {absmax:g} in calibration; "
                              "the int16 cell state holds |c| < 32768")
    return 15 - bits


def gate_multipliers(input_scale: float, input_weight_scales, hidden_scale: float, recurrent_weight_scales):
    """Per gate row, (multiplier, shift) of the input and of the recurrent accumulator to the
    Q3.12 pre-activation: (s_x s_w) / 2^-12 and (s_h s_r) / 2^-12, as TFLite Micro's gate
    fully connected layers derive them (in double, from float32 scales)."""
    to_q312 = float(1 << GATE_FRAC)
    im, ish = qmath.quantize_multiplier_array(
        np.float64(np.float32(input_scale)) * np.asarray(input_weight_scales, np.float32).astype(np.float64)
        * to_q312, requant=True)
    rm, rsh = qmath.quantize_multiplier_array(
        np.float64(np.float32(hidden_scale)) * np.asarray(recurrent_weight_scales, np.float32).astype(np.float64)
        * to_q312, requant=True)
    return im, ish, rm, rsh


def lstm_cell_params(cell_frac: int, hidden_scale: float, unused: bool = False) -> dict:
    """The LSTM's element-wise steps as TFLite Micro quantizes them: the gates are Q0.15
    (2^-15), the cell state int16 at 2^-cell_frac, the hidden state int8 at hidden_scale
    (zero point 0). Each product is requantized by the multiplier of its scale ratio:
    forget x cell -> cell (2^-15), input x cell gate -> cell (2^(cell_frac - 30)), output x
    tanh(cell) -> hidden (2^-30 / hidden_scale). unused: the GRU's zeros."""
    if unused:
        return dict(cell_frac=0, forget_cell_multiplier=0, forget_cell_shift=0, input_cell_multiplier=0,
                    input_cell_shift=0, hidden_multiplier=0, hidden_shift=0, cell_tanh_multiplier=0,
                    cell_tanh_shift=0)
    gate = 2.0 ** -15
    fm, fs = qmath.quantize_multiplier(gate)
    im, is_ = qmath.quantize_multiplier(gate * gate / 2.0 ** -cell_frac)
    hm, hs = qmath.quantize_multiplier(gate * gate / float(np.float32(hidden_scale)))
    tm, ts = cell_tanh_params(cell_frac)
    return dict(cell_frac=cell_frac, forget_cell_multiplier=fm, forget_cell_shift=fs,
                input_cell_multiplier=im, input_cell_shift=is_, hidden_multiplier=hm, hidden_shift=hs,
                cell_tanh_multiplier=tm, cell_tanh_shift=ts)


def _to_int8(g: Graph, op: Op) -> None:
    lstm = op.kind == "lstm"
    n_g = GATES[op.kind]
    if op.attrs["output"] == "c":
        raise TinydeployError(f"node '{op.name}' ({op.kind}): the cell state output Y_c is float32 only; "
                              "read Y or Y_h, or compile with --quantize float32")
    for name in op.inputs[4:]:
        if name and not g.tensors[name].is_const:
            raise TinydeployError(f"node '{op.name}' ({op.kind}): int8 needs constant (or absent) initial "
                                  f"states; '{name}' is computed at run time (float32 supports it)")
    x, w, r, b = op.inputs[:4]
    fixed_output(g, op, H_QUANT)
    s_x, zp_x = scalar_q(g, x, op)
    d = _dims(g, op)
    hid = d["hidden_size"]
    wf, rf, bf = (g.const(n).astype(np.float64) for n in (w, r, b))
    bw, br = bf[:, :n_g * hid], bf[:, n_g * hid:]
    # input side: W's bias, and R's where it adds outside the reset gate
    bias_in, bias_rec = bw.copy(), np.zeros_like(br)
    if lstm or not op.attrs["linear_before_reset"]:
        bias_in += br
    else:
        bias_in[:, :2 * hid] += br[:, :2 * hid]
        bias_rec[:, 2 * hid:] = br[:, 2 * hid:]
    sw, sr = _row_scales(wf), _row_scales(rf)
    sh = H_QUANT[0]
    # a row whose bias would not fit int32 at s_x * s_w gets a wider weight scale
    sw = np.maximum(sw, (np.abs(bias_in) / (s_x * float(1 << 30)) * (1 + 1e-6)).astype(np.float32))
    sr = np.maximum(sr, (np.abs(bias_rec) / (sh * float(1 << 30)) * (1 + 1e-6)).astype(np.float32))
    wq = np.clip(np.round(wf / sw[..., None]), -127, 127).astype(np.int8)
    rq = np.clip(np.round(rf / sr[..., None]), -127, 127).astype(np.int8)
    b_in = np.round(bias_in / (np.float64(s_x) * sw)) - zp_x * wq.astype(np.int64).sum(axis=2)
    b_rec = np.round(bias_rec / (sh * sr.astype(np.float64)))
    im, ish, rm, rsh = gate_multipliers(s_x, sw, sh, sr)
    q = dict(d, output="TD_RNN_S8_Y" if op.attrs["output"] == "y" else "TD_RNN_S8_Y_H",
             linear_before_reset=int(op.attrs.get("linear_before_reset", 0)),
             input_multiplier=im, input_shift=ish, recurrent_multiplier=rm, recurrent_shift=rsh)
    q.update(lstm_cell_params(_cell_frac(op), sh) if lstm else lstm_cell_params(0, sh, unused=True))
    inputs = [x, g.add_const(w + "_s8", wq), g.add_const(r + "_s8", rq),
              g.add_const(op.name + "_bias_in", np.clip(b_in, -2**31, 2**31 - 1).astype(np.int32)),
              g.add_const(op.name + "_bias_rec", np.clip(b_rec, -2**31, 2**31 - 1).astype(np.int32))]
    h0 = g.const(op.inputs[4]) if op.inputs[4] else None
    if lstm:
        c0 = g.const(op.inputs[5]) if op.inputs[5] else None
        inputs.append(g.add_const(op.inputs[4] + "_s8", _sat8(np.round(h0 * 128)).astype(np.int8))
                      if h0 is not None else "")
        inputs.append(g.add_const(op.inputs[5] + "_q", _sat16(np.round(c0 * 2.0 ** q["cell_frac"]))
                                  .astype(np.int32)) if c0 is not None else "")
    else:
        inputs.append(g.add_const(op.inputs[4] + "_q15", _sat16(np.round(h0 * 32768.0)).astype(np.int32))
                      if h0 is not None else "")
    op.inputs = inputs
    op.kind = op.kind + "_s8"
    op.int8_params = Int8Params(q)


# --------------------------------------------------------------------------
# int8: golden kernels (integer only)
# --------------------------------------------------------------------------
def _gate(acc, mult, shift):
    """An int32 accumulator requantized to Q3.12 int16 (saturating)."""
    return _sat16(qmath.mbqm(acc, mult, shift))


def _golden(g: Graph, op: Op, args: list) -> np.ndarray:
    return golden_with_state(op, args)[0]


def golden_with_state(op: Op, args: list) -> tuple[np.ndarray, np.ndarray]:
    """(the int8 layer's output, its int16 state after the last step [dirs, batch, hidden]:
    an LSTM's cell state, a GRU's Q0.15 hidden state)."""
    lstm = op.kind == "lstm_s8"
    x, w, r, b_in, b_rec, h0, *rest = _args(op, args)
    c0 = rest[0] if lstm else None
    q = op.int8_params
    seq, batch, hid, nd = q["seq_len"], q["batch"], q["hidden_size"], q["num_directions"]
    n_g = GATES[op.kind[:-3]]
    rows = n_g * hid
    im = np.asarray(q["input_multiplier"], np.int64).reshape(nd, rows)
    ish = np.asarray(q["input_shift"], np.int64).reshape(nd, rows)
    rm = np.asarray(q["recurrent_multiplier"], np.int64).reshape(nd, rows)
    rsh = np.asarray(q["recurrent_shift"], np.int64).reshape(nd, rows)
    y = np.zeros((seq, nd, batch, hid), np.int64)
    last = np.zeros((nd, batch, hid), np.int64)
    state = np.zeros((nd, batch, hid), np.int64)
    x = np.asarray(x, np.int64)
    for di in range(nd):
        backward = di == 1 or q["reverse"]
        wd, rd = np.asarray(w[di], np.int64), np.asarray(r[di], np.int64)
        bi, br = np.asarray(b_in[di], np.int64), np.asarray(b_rec[di], np.int64)
        for n in range(batch):
            if lstm:
                h8 = np.zeros(hid, np.int64) if h0 is None else np.asarray(h0[di, n], np.int64)
                c16 = np.zeros(hid, np.int64) if c0 is None else np.asarray(c0[di, n], np.int64)
            else:
                h16 = np.zeros(hid, np.int64) if h0 is None else np.asarray(h0[di, n], np.int64)
                h8 = _sat8(qmath.rdbpot(h16, 8))
            for step in range(seq):
                t = seq - 1 - step if backward else step
                acc_x = wd @ x[t, n] + bi
                acc_h = rd @ h8 + br
                gx = _gate(acc_x, im[di], ish[di])
                if lstm:
                    gates = _sat16(gx + _gate(acc_h, rm[di], rsh[di]))
                    i, o, f = (sigmoid_q15(gates[k * hid:(k + 1) * hid]) for k in range(3))
                    cc = tanh_q15(gates[3 * hid:])
                    kept = _sat16(qmath.mbqm(f * c16, q["forget_cell_multiplier"], q["forget_cell_shift"]))
                    added = _sat16(qmath.mbqm(i * cc, q["input_cell_multiplier"], q["input_cell_shift"]))
                    c16 = _sat16(kept + added)
                    tc = tanh_q15(c16, q["cell_tanh_multiplier"], q["cell_tanh_shift"])
                    h8 = _sat8(qmath.mbqm(tc * o, q["hidden_multiplier"], q["hidden_shift"]))
                else:
                    zr = sigmoid_q15(_sat16(gx[:2 * hid] + _gate(acc_h[:2 * hid], rm[di, :2 * hid],
                                                                           rsh[di, :2 * hid])))
                    z, rg = zr[:hid], zr[hid:]
                    if q["linear_before_reset"]:
                        gh = _gate(acc_h[2 * hid:], rm[di, 2 * hid:], rsh[di, 2 * hid:])
                        cand = _sat16(gx[2 * hid:] + qmath.rdbpot(rg * gh, 15))
                    else:
                        rh8 = _sat8(qmath.rdbpot(rg * h8, 15))
                        acc_n = rd[2 * hid:] @ rh8 + br[2 * hid:]
                        cand = _sat16(gx[2 * hid:] + _gate(acc_n, rm[di, 2 * hid:], rsh[di, 2 * hid:]))
                    nn = tanh_q15(cand)
                    h16 = _sat16(qmath.rdbpot((32768 - z) * nn + z * h16, 15))
                    h8 = _sat8(qmath.rdbpot(h16, 8))
                y[t, di, n] = h8
            last[di, n] = h8
            state[di, n] = c16 if lstm else h16
    out = y if q["output"] == "TD_RNN_S8_Y" else last
    return out.astype(np.int8), state.astype(np.int16)


def _scratch_s8(g: Graph, op: Op) -> int:
    hid = op.attrs["hidden"]
    return 11 * hid if op.kind == "lstm_s8" else 10 * hid


def _check(g: Graph, op: Op) -> None:
    """The accumulators, shifted left by their requantization, stay in int32."""
    q = op.int8_params
    for side, wname, bname, bound, shift in (("input", 1, 3, 128, "input_shift"),
                                             ("recurrent", 2, 4, 128, "recurrent_shift")):
        wt = np.abs(np.asarray(g.const(op.inputs[wname]), np.int64))
        sums = wt.sum(axis=2).reshape(-1) * bound + np.abs(np.asarray(g.const(op.inputs[bname]), np.int64)).reshape(-1)
        shifts = np.asarray(q[shift], np.int64).reshape(-1)
        k = int(np.argmax(sums << np.maximum(shifts, 0)))
        shifted(f"the {side} accumulator of gate row {k}", int(sums[k]), int(shifts[k]))


def _emit_s8(c, op: Op, sym: str, variant: str = "", source: str = "s8/rnn_s8.c",
             header: str = "td_kernels_s8.h") -> Call:
    lstm = op.kind == "lstm_s8"
    call = s8_call(c, op, sym, ("td_lstm_s8" if lstm else "td_gru_s8") + variant, source, "td_rnn_s8_params",
                   "xwrBbhc" if lstm else "xwrBbh")
    call.args = call.args + [c.ptr(op.outputs[0], False), _scratch_ptr(c, op, "void")]
    call.headers = [header]  # (not the kernels' body header the source includes)
    return call


def rvv_choice(g: Graph, op: Op) -> Choice:
    """The RISC-V vector variant (backends/riscv.py asks for it): the portable kernels'
    bodies with vector dot products (riscv/rnn_rvv.c), bit-exact with them."""
    return Choice("rvv_rnn", lambda c, op_, sym: _emit_s8(c, op_, sym, "_rvv", "riscv/rnn_rvv.c",
                                                         "td_rv_rnn.h"),
                  detail="vector dot products (vwmul + vwredsum)")


def arm_mve_choice(g: Graph, op: Op) -> Choice:
    """The Arm Helium variant (backends/arm.py asks for it): the portable kernels' bodies with
    VMLADAVA dot products, 16 int8 pairs at a time (arm/rnn_mve.c), bit-exact with them."""
    return Choice("arm_mve_rnn", lambda c, op_, sym: _emit_s8(c, op_, sym, "_mve", "arm/rnn_mve.c",
                                                             "td_arm_rnn.h"),
                  detail="dot products 16 int8 pairs per VMLADAVA, tail predicated")


def arm_dsp_choice(g: Graph, op: Op) -> Choice:
    """The Arm DSP-extension variant (backends/arm.py asks for it): the portable kernels'
    bodies with SXTB16/SMLAD dot products (arm/rnn_dsp.c), bit-exact with them."""
    return Choice("arm_dsp_rnn", lambda c, op_, sym: _emit_s8(c, op_, sym, "_dsp", "arm/rnn_dsp.c",
                                                             "td_arm_rnn.h"),
                  detail="dot products 4 int8 pairs per 2 SMLAD")


register(
    OpDef("lstm", _float_ref, _emit_f32, layout=_layout, to_int8=_to_int8, macs=_macs, scratch=_scratch_f32,
          internal_ranges=_internal_ranges,
          quant="fixed", fixed_output=H_QUANT),
    OpDef("gru", _float_ref, _emit_f32, layout=_layout, to_int8=_to_int8, macs=_macs, scratch=_scratch_f32,
          quant="fixed", fixed_output=H_QUANT),
    OpDef("lstm_s8", _golden, _emit_s8, check=_check, macs=_macs, scratch=_scratch_s8),
    OpDef("gru_s8", _golden, _emit_s8, check=_check, macs=_macs, scratch=_scratch_s8),
)
