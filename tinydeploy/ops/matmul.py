"""MatMul of two activations (attention's q @ k^T and a @ v): ONNX / numpy matmul
semantics, A [..., M, K] @ B [..., K, N] with NumPy broadcasting of the batch dims.

A MatMul with a constant 2-D right-hand side stays a fully connected layer
(tinydeploy/ops/fc.py); every other MatMul becomes a `batch_matmul` (the frontend
reshapes 1-D operands to 2-D as ONNX defines). A constant operand (batched
weights, a constant left-hand side) is an ordinary input tensor.

The kernels read both operands through strides: each logical axis of A and B
(the batch axes, M, K and N) has its own element stride, so an operand in any
physical order is read where it is. The layout pass therefore never copies an
operand: a Transpose that swaps the last two axes (PyTorch's k.transpose(-2, -1))
is, like every model Transpose, a free alias, and the kernel reads k's rows as
B's columns (b_k_stride 1). The layout rule records each operand's physical
order (attrs "a_perm" and "b_perm": physical axis i holds logical axis perm[i]);
the output is written in its logical order [batch..., M, N].

int8 (`batch_matmul_s8`) follows TFLite's BATCH_MATMUL: int32 sums of
(a - a_zero_point) * (b - b_zero_point), requantized with the multiplier and
shift of s_a * s_b / s_out (the fully connected derivation), plus the output
zero point, clamped. Portable kernels: td_batch_matmul_f32 (f32/batch_matmul.c),
td_batch_matmul_s8 (s8/batch_matmul_s8.c).
"""
from __future__ import annotations

import numpy as np

from .. import qmath
from ..ctext import Call
from ..errors import TinydeployError
from ..ir import Graph, Int8Params, Op
from ..overflow import offset_bound, shifted
from .base import OpDef, register
from .common import act_range, contiguous_strides, int8_constant, s8_call, scalar_q

BATCH_DIMS = 4  # TD_BMM_BATCH_DIMS: batch axes of the kernels (rank 6 = 4 batch axes + M, N)


def _inverse(perm) -> tuple:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _perm(op: Op, key: str, rank: int) -> tuple:
    perm = op.attrs.get(key)
    return tuple(perm) if perm is not None else tuple(range(rank))


def logical(shape, perm) -> tuple[list, list]:
    """(logical shape, element stride of each logical axis) of a tensor stored
    contiguously in physical `shape`, whose physical axis i is logical axis perm[i]."""
    strides = contiguous_strides(shape)
    lshape, lstrides = [0] * len(shape), [0] * len(shape)
    for i, p in enumerate(perm):
        lshape[p], lstrides[p] = int(shape[i]), int(strides[i])
    return lshape, lstrides


def _batch_strides(shape, strides) -> list:
    """The strides of an operand's batch axes, right-aligned to BATCH_DIMS; 0 broadcasts."""
    nb = len(shape) - 2
    out = [0] * BATCH_DIMS
    for j in range(nb):
        out[BATCH_DIMS - nb + j] = 0 if shape[j] == 1 else strides[j]
    return out


def geometry(a_shape, a_perm, b_shape, b_perm) -> dict:
    """The kernels' shape fields (td_batch_matmul_*_params) from the operands'
    physical shapes and orders."""
    la, sa = logical(a_shape, a_perm)
    lb, sb = logical(b_shape, b_perm)
    batch = np.broadcast_shapes(tuple(la[:-2]), tuple(lb[:-2]))
    return {"batch_shape": [1] * (BATCH_DIMS - len(batch)) + [int(d) for d in batch],
            "a_batch_strides": _batch_strides(la, sa), "b_batch_strides": _batch_strides(lb, sb),
            "m": la[-2], "k": la[-1], "n": lb[-1],
            "a_m_stride": sa[-2], "a_k_stride": sa[-1], "b_k_stride": sb[-2], "b_n_stride": sb[-1]}


def _geometry_of(shape_of, op: Op) -> dict:
    a, b = op.inputs
    sa, sb = shape_of(a), shape_of(b)
    return geometry(sa, _perm(op, "a_perm", len(sa)), sb, _perm(op, "b_perm", len(sb)))


def _operands(op: Op, args: list, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Both operands in their logical order."""
    a, b = (np.asarray(x, dtype) for x in args)
    a = a.transpose(_inverse(_perm(op, "a_perm", a.ndim)))
    b = b.transpose(_inverse(_perm(op, "b_perm", b.ndim)))
    return a, b


def macs(g: Graph, op: Op) -> int:
    a = op.inputs[0]
    la, _ = logical(g.tensors[a].shape, _perm(op, "a_perm", len(g.tensors[a].shape)))
    return int(g.tensors[op.outputs[0]].size) * int(la[-1])


# -- float ------------------------------------------------------------------
def _float_ref(g: Graph, op: Op, args: list) -> np.ndarray:
    a, b = _operands(op, args, np.float32)
    return np.matmul(a, b).astype(np.float32).reshape(g.tensors[op.outputs[0]].shape)


def _layout(lay, op: Op) -> None:
    """Operands stay where they are (the kernel reads any order through strides);
    the output is written in its logical order."""
    for key, name in zip(("a_perm", "b_perm"), op.inputs):
        op.attrs[key] = list(lay.ident(name) if lay.g.tensors[name].is_const else lay.perm[name])
    lay.set_out(op, lay.ident(op.outputs[0]))


def _emit_f32(c, op: Op, sym: str) -> Call:
    a, b = op.inputs
    return Call("td_batch_matmul_f32", "f32/batch_matmul.c",
                [c.ptr(a), c.ptr(b), c.ptr(op.outputs[0], False)], "td_batch_matmul_f32_params",
                _geometry_of(c.shape, op))


# -- int8 -------------------------------------------------------------------
def _to_int8(g: Graph, op: Op) -> None:
    op.inputs = [int8_constant(g, n) if g.tensors[n].is_const and g.tensors[n].dtype != "int8" else n
                 for n in op.inputs]
    a, b = op.inputs
    qa, qb, qo = (scalar_q(g, n, op) for n in (a, b, op.outputs[0]))
    p = qmath.fc_params(qa[0], qa[1], qb[0], qo[0], qo[1], act_range=act_range(op, qo))
    q = _geometry_of(lambda n: g.tensors[n].shape, op)
    q.update(a_offset=p["input_offset"], b_offset=-int(qb[1]), output_offset=p["output_offset"],
             multiplier=int(p["multiplier"][0]), shift=int(p["shift"][0]),
             act_min=int(p["act_min"]), act_max=int(p["act_max"]))
    op.kind, op.int8_params = "batch_matmul_s8", Int8Params(q)


def golden(a: np.ndarray, b: np.ndarray, q: dict) -> np.ndarray:
    """The integer kernel on logical operands: int32 sums of offset products, requantized."""
    acc = np.matmul(a + q["a_offset"], b + q["b_offset"])
    out = qmath.mbqm(acc, q["multiplier"], q["shift"]) + q["output_offset"]
    return np.clip(out, q["act_min"], q["act_max"]).astype(np.int8)


def _golden(g: Graph, op: Op, args: list) -> np.ndarray:
    a, b = _operands(op, args, np.int64)
    return golden(a, b, op.int8_params).reshape(g.tensors[op.outputs[0]].shape)


def _check(g: Graph, op: Op) -> None:
    q = op.int8_params
    k = int(q["k"])
    bound = k * offset_bound(q["a_offset"]) * offset_bound(q["b_offset"])
    shifted(f"the int32 sum of {k:,} products of offset operands", bound, q["shift"])


def _emit_s8(c, op: Op, sym: str) -> Call:
    return s8_call(c, op, sym, "td_batch_matmul_s8", "s8/batch_matmul_s8.c", "td_batch_matmul_s8_params", "abo")


def check_shapes(where: str, a_shape, b_shape) -> None:
    """Refuse operands (rank >= 2) that do not multiply or broadcast, or need more batch axes.
    where: the node, as messages name it ("node 'X' (MatMul)", "operator 3 (BATCH_MATMUL)")."""
    if a_shape[-1] != b_shape[-2]:
        raise TinydeployError(f"{where}: inputs of shapes {list(a_shape)} and {list(b_shape)} do not multiply "
                              f"(A has {a_shape[-1]} columns, B {b_shape[-2]} rows)")
    try:
        batch = np.broadcast_shapes(tuple(a_shape[:-2]), tuple(b_shape[:-2]))
    except ValueError:
        raise TinydeployError(f"{where}: the batch dimensions of {list(a_shape)} and {list(b_shape)} "
                              "do not broadcast") from None
    if len(batch) > BATCH_DIMS:
        raise TinydeployError(f"{where}: {len(batch)} batch dimensions; at most {BATCH_DIMS} are supported "
                              f"(operands of rank up to {BATCH_DIMS + 2})")


register(
    OpDef("batch_matmul", _float_ref, _emit_f32, layout=_layout, to_int8=_to_int8, macs=macs),
    OpDef("batch_matmul_s8", _golden, _emit_s8, check=_check, macs=macs),
)
