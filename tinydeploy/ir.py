"""The intermediate representation: a graph of ops over named tensors.

Every pass, the golden model and the code generator speak only this IR.
Before the layout pass, shapes and attributes follow the ONNX model's own
(logical) layout; after it, every activation is NHWC and every shape is the
physical one the kernels see.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import numpy as np


@dataclass
class QuantParams:
    """real = scale * (q - zero_point); per-tensor (axis None) or per-channel."""

    scale: np.ndarray  # float32, shape () or (C,)
    zero_point: np.ndarray  # int32, same shape as scale
    axis: Optional[int] = None

    def __post_init__(self):
        self.scale = np.asarray(self.scale, dtype=np.float32)
        self.zero_point = np.asarray(self.zero_point, dtype=np.int32)

    @property
    def per_tensor(self) -> bool:
        return self.scale.size == 1

    def scalar(self) -> tuple[float, int]:
        return float(self.scale.reshape(-1)[0]), int(self.zero_point.reshape(-1)[0])

    def same_as(self, other: Optional["QuantParams"]) -> bool:
        return (other is not None and self.scale.shape == other.scale.shape
                and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))


@dataclass
class Tensor:
    name: str
    shape: tuple
    # "float32", "int8", "int32"; "int4": int8 data in [-8, 7] shipped packed two per byte
    # (a layer's int4 weights: the kernels and the golden model compute with the int8 values)
    dtype: str = "float32"
    data: Optional[np.ndarray] = None  # constants only
    quant: Optional[QuantParams] = None
    # The integer data a DequantizeLinear of a constant started from (QDQ
    # models): the int8 path uses it instead of requantizing `data`.
    qdata: Optional[np.ndarray] = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        if self.dtype == "int4":
            return (self.size + 1) // 2
        return self.size * np.dtype(self.dtype).itemsize


class Int8Params(Mapping):
    """The integer parameters of one int8 layer, as quantization (`OpDef.to_int8`) hands
    them to the golden model, the overflow checks, the in-place analysis and the kernel
    emitters: immutable once made, read by field name. The names are the members of the
    layer's C parameter struct (td_pool_s8_params, ...), so the portable emitter writes
    them as its designated initializer; per-channel arrays become constant arrays."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]):
        object.__setattr__(self, "_fields", dict(fields))

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __setattr__(self, name, value):
        raise AttributeError("Int8Params are immutable: make a new one")

    def __reduce__(self):  # pickling (shards, Ray) despite the __setattr__ guard
        return (Int8Params, (self._fields,))

    def __repr__(self) -> str:
        return f"Int8Params({self._fields!r})"


@dataclass
class Op:
    kind: str
    name: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)
    # int8 layers: the kernel's integer parameters (set by quantize.to_int8)
    int8_params: Optional[Int8Params] = None
    # calibration's maxima of |value| inside the op ({"cell": ...} for an LSTM's cell
    # state; OpDef.internal_ranges), read by the op's to_int8
    internal_absmax: dict = field(default_factory=dict)
    # int8 output vs the float model on calibration data, in dB (quantize.to_int8
    # with --calib; reported per layer in report.json)
    sqnr_db: Optional[float] = None
    # --weights mixed: the model's output SQNR (dB) that int4 weights in this layer cost
    # (quantize.choose_int4; None for int8 weights or --weights int4)
    int4_cost_db: Optional[float] = None


class Graph:
    def __init__(self, name: str = "model"):
        self.name = name
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self._counter = itertools.count()

    # -- construction -------------------------------------------------------
    def add_tensor(self, t: Tensor) -> Tensor:
        self.tensors[t.name] = t
        return t

    def unique_name(self, hint: str) -> str:
        name = hint
        while name in self.tensors:
            name = f"{hint}_{next(self._counter)}"
        return name

    def add_const(self, hint: str, data: np.ndarray, quant: Optional[QuantParams] = None) -> str:
        data = np.ascontiguousarray(data)
        name = self.unique_name(hint)
        self.add_tensor(Tensor(name, tuple(data.shape), str(data.dtype), data, quant))
        return name

    def add_activation(self, hint: str, shape, dtype: str = "float32") -> str:
        name = self.unique_name(hint)
        self.add_tensor(Tensor(name, tuple(int(d) for d in shape), dtype))
        return name

    # -- queries ------------------------------------------------------------
    def producers(self) -> dict[str, Op]:
        return {o: op for op in self.ops for o in op.outputs}

    def consumers(self) -> dict[str, list[Op]]:
        result: dict[str, list[Op]] = {}
        for op in self.ops:
            for i in op.inputs:
                if i:
                    result.setdefault(i, []).append(op)
        return result

    def int4_weights(self, op: "Op") -> bool:
        """The op's weights (its second input) are int4, packed in flash."""
        return len(op.inputs) > 1 and bool(op.inputs[1]) and op.inputs[1] in self.tensors \
            and self.tensors[op.inputs[1]].dtype == "int4"

    def const(self, name: str) -> Optional[np.ndarray]:
        t = self.tensors.get(name) if name else None
        return t.data if t is not None else None

    # -- editing ------------------------------------------------------------
    def make_op_names_unique(self) -> None:
        """Later stages refer to ops by name (a fused add, report rows): rename any op whose
        name an earlier op already has (ONNX allows duplicate node names; a pass may name an
        op after the tensor it writes, which can be another op's name)."""
        seen: set = set()
        for op in self.ops:
            name, n = op.name or op.kind, 2
            while name in seen:
                name, n = f"{op.name or op.kind}_{n}", n + 1
            op.name = name
            seen.add(name)


    def replace_uses(self, old: str, new: str) -> None:
        """Make every reader of `old` (ops and graph outputs) read `new`."""
        for op in self.ops:
            op.inputs = [new if i == old else i for i in op.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove_unused(self) -> None:
        """Drop ops whose outputs nobody reads, then tensors nobody refers to."""
        changed = True
        while changed:
            consumers = self.consumers()
            keep = [op for op in self.ops
                    if any(o in consumers or o in self.outputs for o in op.outputs)]
            changed = len(keep) != len(self.ops)
            self.ops = keep
        used = set(self.inputs) | set(self.outputs)
        for op in self.ops:
            used.update(i for i in op.inputs if i)
            used.update(op.outputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in used}
