"""Graph passes: simplify and fuse the IR, and convert it to NHWC.

Each pass takes a Graph and edits it in place. `optimize` runs them in order.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .errors import TinydeployError
from .ir import Graph, Op, QuantParams

INF = float("inf")


def _single_consumer(g: Graph, name: str, consumers=None):
    """The one op reading `name` (None if several, or if it is a graph output).
    consumers: a precomputed g.consumers() the caller keeps valid (large graphs: O(n) per call)."""
    users = (g.consumers() if consumers is None else consumers).get(name, [])
    if len(users) == 1 and name not in g.outputs:
        return users[0]
    return None


def _bypass(g: Graph, op: Op) -> None:
    """Remove a one-in one-out op, letting its readers read its input."""
    src, dst = op.inputs[0], op.outputs[0]
    g.ops.remove(op)
    if dst in g.outputs and (src in g.inputs or src in g.outputs):
        g.ops.append(Op("reshape", op.name, [src], [dst], {}))  # keep both names: an alias
        return
    if dst in g.outputs:  # keep the graph output's name: rename the producer's output
        producer = g.producers()[src]
        producer.outputs = [dst if o == src else o for o in producer.outputs]
        g.tensors[dst].quant = g.tensors[dst].quant or g.tensors[src].quant
        for other in g.ops:
            other.inputs = [dst if i == src else i for i in other.inputs]
        return
    g.replace_uses(dst, src)


# --------------------------------------------------------------------------
# Simplification
# --------------------------------------------------------------------------
def remove_noop_reshapes(g: Graph) -> None:
    """Reshape ops whose input and output shapes agree are no-ops."""
    for op in list(g.ops):
        if op.kind == "reshape" and g.tensors[op.inputs[0]].shape == g.tensors[op.outputs[0]].shape \
                and op.inputs[0] not in g.inputs:
            _bypass(g, op)


def fold_batchnorm(g: Graph) -> None:
    """BatchNormalization into the preceding conv/FC; else into mul + add."""
    producers = g.producers()
    for op in list(g.ops):
        if op.kind != "batchnorm":
            continue
        mul, add = op.attrs["mul"], op.attrs["add"]
        prev = producers.get(op.inputs[0])
        if prev is not None and prev.kind in ("conv2d", "fully_connected") \
                and _single_consumer(g, op.inputs[0]) is op and prev.attrs["act"] == (-INF, INF):
            w = g.const(prev.inputs[1])
            scaled = w * mul.reshape((-1,) + (1,) * (w.ndim - 1))
            prev.inputs[1] = g.add_const(prev.inputs[1] + "_bn", scaled.astype(np.float32))
            old_bias = g.const(prev.inputs[2]) if prev.inputs[2] else np.zeros(len(mul), np.float32)
            prev.inputs[2] = g.add_const(op.name + "_bias", (old_bias * mul + add).astype(np.float32))
            prev.outputs = list(op.outputs)  # the BN's output (and its quantization) survives
            g.ops.remove(op)
            continue
        rank = len(g.tensors[op.inputs[0]].shape)
        shape = (-1,) + (1,) * (rank - 2)
        mid = g.add_activation(op.outputs[0] + "_scaled", g.tensors[op.inputs[0]].shape)
        at = g.ops.index(op)
        g.ops[at:at + 1] = [
            Op("binary", op.name + "_mul", [op.inputs[0], g.add_const(op.name + "_mul", mul.reshape(shape))],
               [mid], {"op": "mul", "act": (-INF, INF)}),
            Op("binary", op.name + "_add", [mid, g.add_const(op.name + "_add", add.reshape(shape))],
               op.outputs, {"op": "add", "act": (-INF, INF)})]


def fuse_bias_add(g: Graph) -> None:
    """conv/FC followed by Add of a per-output-channel constant -> bias."""
    producers = g.producers()
    consumers = g.consumers()  # stays valid: a fusion only drops the add and its input tensor
    for op in list(g.ops):
        if op.kind != "binary" or op.attrs["op"] != "add":
            continue
        consts = [i for i in op.inputs if g.tensors[i].is_const]
        acts = [i for i in op.inputs if not g.tensors[i].is_const]
        if len(consts) != 1 or len(acts) != 1:
            continue
        prev = producers.get(acts[0])
        if prev is None or prev.kind not in ("conv2d", "fully_connected") or \
                _single_consumer(g, acts[0], consumers) is not op or prev.attrs["act"] != (-INF, INF):
            continue
        c = g.tensors[consts[0]]
        n_out = g.tensors[prev.inputs[1]].shape[0]
        channel_axis = 1 if prev.kind == "conv2d" else len(g.tensors[acts[0]].shape) - 1
        squeezed = [d for i, d in enumerate(c.shape) if d != 1]
        if c.size not in (1, n_out) or (c.size == n_out and n_out > 1 and
                                         (len(squeezed) != 1 or _channel_axis(c.shape, len(g.tensors[acts[0]].shape)) != channel_axis)):
            continue
        if prev.inputs[2] and g.tensors[prev.inputs[2]].qdata is not None:
            continue  # a quantized bias is already there; keep the explicit add
        old = g.const(prev.inputs[2]) if prev.inputs[2] else np.zeros(n_out, np.float32)
        new = old + np.broadcast_to(c.data.reshape(-1), (n_out,))
        prev.inputs[2] = g.add_const(consts[0] + "_bias", new.astype(np.float32))
        if c.qdata is not None and not np.any(old):
            t = g.tensors[prev.inputs[2]]
            t.qdata = np.broadcast_to(c.qdata.reshape(-1), (n_out,)).copy()
            t.quant = QuantParams(np.broadcast_to(c.quant.scale.reshape(-1), (n_out,)).copy(),
                                  np.broadcast_to(c.quant.zero_point.reshape(-1), (n_out,)).copy(), 0)
        prev.outputs = list(op.outputs)
        g.ops.remove(op)


def _channel_axis(shape, out_rank: int) -> int:
    """The axis (in the output's rank) along which a broadcast constant varies."""
    padded = (1,) * (out_rank - len(shape)) + tuple(shape)
    axes = [i for i, d in enumerate(padded) if d != 1]
    return axes[0] if len(axes) == 1 else -1


def fold_pad_into_conv(g: Graph) -> None:
    """A zero Pad over H and W only, feeding a conv, becomes the conv's padding."""
    producers = g.producers()
    for op in list(g.ops):
        if op.kind != "conv2d":
            continue
        pad = producers.get(op.inputs[0])
        if pad is None or pad.kind != "pad" or pad.attrs["mode"] != "constant" \
                or pad.attrs["value"] != 0.0 or _single_consumer(g, op.inputs[0]) is not op:
            continue
        b, a = pad.attrs["before"], pad.attrs["after"]
        if any(b[:2]) or any(a[:2]):
            continue
        p = op.attrs["pads"]
        pads = [p[0] + b[2], p[1] + b[3], p[2] + a[2], p[3] + a[3]]
        kh, kw = g.tensors[op.inputs[1]].shape[-2:]
        dh, dw = op.attrs.get("dilations", (1, 1))
        span = [(kh - 1) * dh + 1, (kw - 1) * dw + 1]
        if any(v >= span[i % 2] for i, v in enumerate(pads)):
            # a pad as wide as the window gives output pixels of padding only: the
            # kernels' edge code assumes every window touches the input (fuzzer bugs 4, 6)
            continue
        op.attrs["pads"] = pads
        op.inputs[0] = pad.inputs[0]
        g.remove_unused()


def fuse_activations(g: Graph) -> None:
    """conv/FC/pool/add followed by a clip (Relu, Relu6, Clip) -> clamp bounds. The clip may
    read the layer through reshapes (a 1-D convolution is a 2-D one between two reshapes):
    clipping commutes with them, so the last reshape then writes the clip's output."""
    producers = g.producers()
    consumers = g.consumers()  # stays valid: a fusion only drops the clip and its input tensor
    for op in list(g.ops):
        if op.kind != "clip":
            continue
        views, reader, prev = [], op, producers.get(op.inputs[0])
        while (prev is not None and prev.kind == "reshape"
               and _single_consumer(g, prev.outputs[0], consumers) is reader):
            views.append(prev)
            reader, prev = prev, producers.get(prev.inputs[0])
        if prev is None or prev.kind not in ("conv2d", "fully_connected", "binary", "max_pool", "avg_pool") \
                or _single_consumer(g, prev.outputs[0], consumers) is not reader:
            continue
        if prev.kind == "binary" and prev.attrs["op"] not in ("add", "sub", "mul"):
            continue
        lo, hi = prev.attrs["act"]
        prev.attrs["act"] = (max(lo, op.attrs["lo"]), min(hi, op.attrs["hi"]))
        writer = views[0] if views else prev
        writer.outputs = list(op.outputs)
        producers[op.outputs[0]] = writer
        g.ops.remove(op)


# --------------------------------------------------------------------------
# Layout: every activation NHWC; layout Transposes become free aliases
# --------------------------------------------------------------------------
def _inverse(perm) -> tuple:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _same_memory(shape, p, q) -> bool:
    """Do two physical orders of a logical shape lay the data out identically?"""
    return [a for a in p if shape[a] != 1] == [a for a in q if shape[a] != 1]


class LayoutPass:
    """Makes every activation NHWC. Each op's rule (OpDef.layout) picks its inputs'
    physical order with `want` (inserting transposes where needed) and records its
    outputs' with `set_out`; `perm[name]` maps physical to logical axes."""

    def __init__(self, g: Graph):
        self.g = g
        self.logical = {n: t.shape for n, t in g.tensors.items()}
        self.perm = {n: tuple(range(len(self.logical[n]))) for n in g.inputs}
        self.copies: dict = {}
        self.new_ops: list[Op] = []

    def ident(self, name):
        return tuple(range(len(self.logical[name])))

    def want(self, name: str, perm) -> str:
        """`name` with physical order `perm`, inserting a transpose if needed."""
        perm = tuple(perm)
        have = self.perm[name]
        if have == perm:
            return name
        key = (name, perm)
        if key not in self.copies:
            new = self.g.add_activation(name + "_relayout", self.logical[name], self.g.tensors[name].dtype)
            self.g.tensors[new].quant = self.g.tensors[name].quant
            self.logical[new] = self.logical[name]
            self.perm[new] = perm
            if _same_memory(self.logical[name], have, perm):  # same bytes: a free alias
                self.new_ops.append(Op("reshape", new, [name], [new], {}))
            else:
                physical_perm = tuple(np.array(_inverse(have))[list(perm)].tolist())
                self.new_ops.append(Op("transpose", new, [name], [new], {"perm": list(physical_perm)}))
            self.copies[key] = new
        return self.copies[key]

    def const_physical(self, name: str, rank: int, perm) -> str:
        """A constant operand broadcast against a tensor of `rank` dims in order `perm`."""
        t = self.g.tensors[name]
        data = t.data.reshape((1,) * (rank - t.data.ndim) + t.data.shape).transpose(perm)
        new = self.g.add_const(name + "_nhwc", np.ascontiguousarray(data))
        if t.qdata is not None:
            nt = self.g.tensors[new]
            nt.qdata = np.ascontiguousarray(t.qdata.reshape(data.shape if t.qdata.size == data.size
                                                            else t.qdata.shape))
            nt.quant = t.quant
        self.logical[new] = data.shape
        return new

    def run(self) -> None:
        for op in self.g.ops:
            opdef = ops.lookup(op.kind)
            if opdef is not None and opdef.layout is not None:
                opdef.layout(self, op)
            else:
                self.elementwise(op)
            self.new_ops.append(op)
        self.g.ops = self.new_ops
        self.new_ops = []
        for i, out in enumerate(self.g.outputs):  # outputs in the model's own layout
            if self.perm[out] != self.ident(out):
                self._restore_output(out)
        self.g.ops += self.new_ops
        for name, t in self.g.tensors.items():
            if not t.is_const and name in self.perm:
                t.shape = tuple(self.logical[name][a] for a in self.perm[name])

    def _restore_output(self, out: str) -> None:
        producer = self.g.producers()[out]
        inner = self.g.add_activation(out + "_nhwc", self.logical[out], self.g.tensors[out].dtype)
        self.g.tensors[inner].quant = self.g.tensors[out].quant
        self.logical[inner], self.perm[inner] = self.logical[out], self.perm[out]
        producer.outputs = [inner if o == out else o for o in producer.outputs]
        for op in self.g.ops:
            op.inputs = [inner if i == out else i for i in op.inputs]
        have = self.perm[inner]
        if _same_memory(self.logical[out], have, self.ident(out)):  # same bytes: only the shape
            self.new_ops.append(Op("reshape", f"{out}_to_model_layout", [inner], [out], {}))
        else:
            self.new_ops.append(Op("transpose", f"{out}_to_model_layout", [inner], [out],
                                   {"perm": list(_inverse(have))}))
        self.perm[out] = self.ident(out)

    def set_out(self, op: Op, perm) -> None:
        for o in op.outputs:
            self.perm[o] = tuple(perm)

    def elementwise(self, op: Op) -> None:
        """The default rule: the output keeps its first input's physical order."""
        self.set_out(op, self.perm[op.inputs[0]])


def layout_to_nhwc(g: Graph) -> None:
    LayoutPass(g).run()
    g.remove_unused()


def check_layout(g: Graph) -> None:
    for op in g.ops:
        if "layout" in op.attrs:
            raise AssertionError(f"op {op.name} kept layout {op.attrs['layout']}")


def optimize(g: Graph, for_int8: bool = False, fuse_attention: bool = False) -> Graph:
    """The float pipeline of passes, in order. Element-wise functions of one tensor (GELU,
    SiLU, ...) become one op: any such function for int8 (one table), only those with a
    float kernel otherwise (ops/elementwise_fn.py). fuse_attention (the float32 build):
    attention chains become one row-wise op (ops/attention.py; the int8 pipeline fuses
    them after quantization instead)."""
    from .ops import attention, elementwise_fn, layer_norm
    layer_norm.fuse_decomposed(g)
    elementwise_fn.fuse(g, for_int8)
    fold_batchnorm(g)
    fuse_bias_add(g)
    fold_pad_into_conv(g)
    layout_to_nhwc(g)
    remove_noop_reshapes(g)
    fuse_activations(g)
    if fuse_attention:
        attention.fuse_float(g)
    g.remove_unused()
    return g
