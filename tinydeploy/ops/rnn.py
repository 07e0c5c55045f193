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
    whole recurrence (a model reading Y and Y_h of one layer computes it twice).

IR kinds: lstm, gru (float), lstm_s8, gru_s8 (int8). Inputs [X, W, R, B, initial_h(,
initial_c)] ("" for a zero state); attrs hidden, direction, output (and
linear_before_reset for GRU). The recurrent state (h, c) and the gates live in the
arena: the kernels' scratch (OpDef.scratch, planned by the memory planner).

int8 (tinydeploy's own integer LSTM/GRU, in the style of TFLite's 8x8_16 LSTM but NOT
bit-exact with TFLite's or TFLite Micro's kernels; TFLite has no integer GRU):
  * X int8 (calibrated), W and R int8 symmetric per gate row, biases int32 (the input
    side's bias holds B's W and R halves where they add; GRU keeps the R half of its
    candidate gate on the recurrent side, which the reset gate scales);
  * each gate row's pre-activation: the int32 accumulators of the input (scale
    s_x * s_w) and of the recurrent side (scale 1/128 * s_r), each requantized to Q3.12
    int16 (saturating) with TFLite's MultiplyByQuantizedMultiplier, added saturating;
  * sigmoid and tanh on Q3.12 int16 inputs give Q0.15 int16 through a 257-entry table over
    [-8, 8) with linear interpolation (the tables are computed once in float, then shared
    by the golden model and the C kernel as constants);
  * LSTM: the cell state is int16 with a power-of-two scale 2^-cell_frac (cell_frac = 15
    - integer bits, from the largest |c| seen by the float reference in calibration,
    Q4.11 without calibration); h = o * tanh(c) is int8 with the fixed quantization
    1/128, zero point 0 (|h| < 1), which is also the output's;
  * GRU: the hidden state is int16 Q0.15 (the recurrence keeps 15 bits), the recurrent
    product reads it rounded to int8 (1/128), the output is that int8 (1/128, 0);
  * rounding: rounding divide by a power of two (ties away from zero) everywhere.
  Y_c is float only; int8 initial states must be constants.

Portable kernels: td_lstm_f32 / td_gru_f32 (f32/rnn.c), td_lstm_s8 / td_gru_s8
(s8/rnn_s8.c).
"""
from __future__ import annotations

import math

import numpy as np

from .. import qmath
from ..ctext import Call
from ..errors import TinydeployError
from ..ir import Graph, Op
from .base import OpDef, register
from .common import fixed_output, scalar_q

H_QUANT = (1.0 / 128, 0)  # int8 hidden state and output: fixed quantization (|h| < 1)
OUTPUTS = {"y": "TD_RNN_Y", "h": "TD_RNN_Y_H", "c": "TD_RNN_Y_C"}
GATES = {"lstm": 4, "gru": 3}
GATE_FRAC = 12  # gate pre-activations: Q3.12
TABLE_BITS = 8  # 2^(16 - 8) table intervals of 2^8 codes each


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
    if lstm and op.kind == "lstm":  # the calibration's record of the cell state's range
        op.attrs["cell_absmax"] = max(op.attrs.get("cell_absmax", 0.0), cell_max)
    return {"y": y, "h": h_last, "c": c_last}[op.attrs["output"]]


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


register(
    OpDef("lstm", _float_ref, _emit_f32, layout=_layout, macs=_macs, scratch=_scratch_f32),
    OpDef("gru", _float_ref, _emit_f32, layout=_layout, macs=_macs, scratch=_scratch_f32),
)
