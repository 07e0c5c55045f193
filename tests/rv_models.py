"""Small pre-quantized (QDQ) ONNX models for kernel tests: chains of int8 layers
with random int8 weights, per-channel weight scales, random activation scales and
zero points.  Used by tests/test_kernels_riscv.py."""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class QDQ:
    """Builds an NCHW float graph whose every tensor goes through Q/DQ."""

    def __init__(self, rng: np.random.Generator, shape, zp_range=(-128, 127)):
        self.rng = rng
        self.nodes, self.inits = [], []
        self.n = 0
        self.zp_range = zp_range
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
        scale = float(rng.uniform(0.01, 0.05))
        self.x = self._qdq("x", scale, self._zp())
        self.shapes = {self.x: tuple(shape)}
        self.scales = {self.x: scale}
        self.zps = {self.x: self.last_zp}

    # -- helpers ----------------------------------------------------------
    def _name(self, hint):
        self.n += 1
        return f"{hint}{self.n}"

    def _zp(self):
        lo, hi = self.zp_range
        return int(self.rng.integers(lo, hi + 1))

    def _const(self, hint, arr):
        name = self._name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def _qdq(self, x, scale, zp):
        self.last_zp = zp
        s = self._const("s", np.array(scale, np.float32))
        z = self._const("z", np.array(zp, np.int8))
        q, d = self._name("q"), self._name("dq")
        self.nodes += [helper.make_node("QuantizeLinear", [x, s, z], [q]),
                       helper.make_node("DequantizeLinear", [q, s, z], [d])]
        return d

    def _weights(self, shape, per_channel=True, wmax=127):
        w = self.rng.integers(-wmax, wmax + 1, size=shape).astype(np.int8)
        n = shape[0]
        ws = (self.rng.uniform(0.5, 2.0, size=n) if per_channel else
              np.array(self.rng.uniform(0.5, 2.0))).astype(np.float32) * np.float32(0.004)
        wq = self._const("w", w)
        s = self._const("ws", ws)
        z = self._const("wz", np.zeros(ws.shape, np.int8))
        d = self._name("wd")
        attrs = {"axis": 0} if per_channel else {}
        self.nodes.append(helper.make_node("DequantizeLinear", [wq, s, z], [d], **attrs))
        return d, w, ws

    def _bias(self, x_scale, ws, n, per_channel=True):
        b = self.rng.integers(-3000, 3001, size=n).astype(np.int32)
        bs = (np.float32(x_scale) * ws).astype(np.float32)
        if not per_channel:
            bs = np.full(n, bs, np.float32) if bs.ndim == 0 else bs
        bq = self._const("b", b)
        s = self._const("bs", bs)
        z = self._const("bz", np.zeros(n, np.int32))
        d = self._name("bd")
        self.nodes.append(helper.make_node("DequantizeLinear", [bq, s, z], [d], axis=0))
        return d

    def _out(self, y, x_scale, ws, k_len, relu, wmax=127, hot=False):
        # output scale around the accumulator's spread, times a wide random factor;
        # hot: effective multipliers around 0.25..2 (right shifts of 0 and 1)
        if hot:
            scale = float(x_scale * float(np.mean(ws)) * self.rng.uniform(0.5, 4.0))
        else:
            sigma = math.sqrt(k_len) * (wmax / math.sqrt(3)) * float(np.mean(ws)) * 60.0 * x_scale
            scale = float(sigma / 40.0 * 2.0 ** self.rng.uniform(-2.5, 3.0))
        if relu:
            r = self._name("relu")
            self.nodes.append(helper.make_node("Relu", [y], [r]))
            y = r
        out = self._qdq(y, scale, self._zp())
        return out, scale

    # -- layers -----------------------------------------------------------
    def conv(self, x, out_c, k=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), group=1, relu=False,
             wmax=127, hot=False):
        n, c, h, w = self.shapes[x]
        kh, kw = k
        dw, wv, ws = self._weights((out_c, c // group, kh, kw), wmax=wmax)
        b = self._bias(self.scales[x], ws, out_c)
        y = self._name("conv")
        self.nodes.append(helper.make_node("Conv", [x, dw, b], [y], kernel_shape=[kh, kw],
                                           strides=list(stride), pads=list(pads), group=group))
        oh = (h + pads[0] + pads[2] - kh) // stride[0] + 1
        ow = (w + pads[1] + pads[3] - kw) // stride[1] + 1
        out, scale = self._out(y, self.scales[x], ws, kh * kw * c // group, relu, wmax, hot)
        self.shapes[out], self.scales[out] = (n, out_c, oh, ow), scale
        self.zps[out] = self.last_zp
        return out

    def depthwise(self, x, k=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), relu=False, wmax=127,
                  hot=False):
        return self.conv(x, self.shapes[x][1], k, stride, pads, group=self.shapes[x][1], relu=relu,
                         wmax=wmax, hot=hot)

    def fc(self, x, out_f, per_channel=False, relu=False, wmax=127, hot=False):
        shape = self.shapes[x]
        n_in = int(np.prod(shape[1:]))
        if len(shape) != 2:
            f = self._name("flat")
            self.nodes.append(helper.make_node("Flatten", [x], [f], axis=1))
            x2 = f
        else:
            x2 = x
        dw, wv, ws = self._weights((out_f, n_in), per_channel, wmax)
        b = self._bias(self.scales[x], ws if per_channel else np.full(out_f, ws, np.float32), out_f)
        y = self._name("fc")
        self.nodes.append(helper.make_node("Gemm", [x2, dw, b], [y], transB=1))
        out, scale = self._out(y, self.scales[x], np.atleast_1d(ws), n_in, relu, wmax, hot)
        self.shapes[out], self.scales[out] = (1, out_f), scale
        self.zps[out] = self.last_zp
        return out

    def add(self, a, b, relu=False):
        y = self._name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [y]))
        if relu:
            r = self._name("relu")
            self.nodes.append(helper.make_node("Relu", [y], [r]))
            y = r
        scale = (self.scales[a] + self.scales[b]) * float(2.0 ** self.rng.uniform(-1.0, 1.0))
        out = self._qdq(y, scale, self._zp())
        self.shapes[out], self.scales[out] = self.shapes[a], scale
        self.zps[out] = self.last_zp
        return out

    def avg_pool(self, x, k, stride, pads=(0, 0, 0, 0)):
        n, c, h, w = self.shapes[x]
        y = self._name("pool")
        self.nodes.append(helper.make_node("AveragePool", [x], [y], kernel_shape=list(k),
                                           strides=list(stride), pads=list(pads)))
        out = self._qdq(y, self.scales[x], self.zps[x])
        oh = (h + pads[0] + pads[2] - k[0]) // stride[0] + 1
        ow = (w + pads[1] + pads[3] - k[1]) // stride[1] + 1
        self.shapes[out], self.scales[out] = (n, c, oh, ow), self.scales[x]
        self.zps[out] = self.zps[x]
        return out

    def save(self, path, outputs):
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, list(self.shapes[o]))
                for o in outputs]
        graph = helper.make_graph(self.nodes, "g", [self.input], outs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        onnx.save(model, str(path))
        return path
