"""The op registry: one OpDef per IR kind, registered by the op's own module.

Every stage asks the registry what it needs to know about an op, so that all
knowledge of one op family lives in one module of tinydeploy/ops/:

  kind         the IR kind ("conv2d" in float, "conv2d_s8" after quantization)
  evaluate     the numpy semantics: the float reference of a float kind, the
               bit-exact golden kernel of an int8 kind ((g, op, args) -> array)
  emit         the portable C call ((ctx, op, sym) -> ctext.Call); backends may
               offer faster variants of the same op (kernel_select)
  layout       float kinds: the NHWC layout rule ((passes.LayoutPass, op) -> None);
               None means "the output keeps its first input's layout" (element-wise)
  to_int8      float kinds: rewrite the op into its int8 kind, with its integer
               parameters in op.int8_params, an ir.Int8Params ((g, op) -> None)
  check        int8 kinds: raise overflow.Overflow when some int8 input could
               overflow the kernel's int32 arithmetic ((g, op) -> None)
  macs         multiply-accumulates of one op ((g, op) -> int)
  inplace      "elementwise": the kernel allows output == input (reads element i
               before writing it); "window": conv-like overlap (tinydeploy.inplace)
  scratch      bytes of arena scratch the op's own kernel needs during the op (e.g. a
               recurrent state), planned like a tensor live at the op's step
               ((g, op) -> int); None: none
  internal_ranges  float kinds with values inside the op that to_int8 must size (an
               LSTM's cell state): ((g, op, args) -> {name: |max|}) on one sample;
               calibration keeps the maxima in Op.internal_absmax
  quant        int8 output quantization: "own" (calibrated or from QDQ), "propagates"
               (data movement: output and input share it, both ways), "follows_input"
               (calibration gives the output its input's), or "fixed" (fixed_output)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import TinydeployError

INPLACE_MODES = (None, "elementwise", "window")
QUANT_RULES = ("own", "propagates", "follows_input", "fixed")


def no_macs(g, op) -> int:
    return 0


@dataclass(frozen=True)
class OpDef:
    kind: str
    evaluate: Callable
    emit: Optional[Callable] = None
    layout: Optional[Callable] = None
    to_int8: Optional[Callable] = None
    check: Optional[Callable] = None
    macs: Callable = no_macs
    inplace: Optional[str] = None
    quant: str = "own"
    fixed_output: Optional[tuple] = None  # (scale, zero_point) for quant == "fixed"
    scratch: Optional[Callable] = None  # (g, op) -> arena bytes the op's own kernel needs
    # (g, op, args) -> {name: |max|} of values inside the op (not tensors) on one sample,
    # e.g. an LSTM's cell state: calibration keeps their maxima in Op.internal_absmax
    internal_ranges: Optional[Callable] = None

    def __post_init__(self):
        if self.inplace not in INPLACE_MODES:
            raise ValueError(f"{self.kind}: inplace must be one of {INPLACE_MODES}")
        if self.quant not in QUANT_RULES:
            raise ValueError(f"{self.kind}: quant must be one of {QUANT_RULES}")
        if (self.quant == "fixed") != (self.fixed_output is not None):
            raise ValueError(f"{self.kind}: fixed_output goes with quant='fixed'")

    @property
    def is_int8(self) -> bool:
        return self.kind.endswith("_s8")


REGISTRY: dict[str, OpDef] = {}


def register(*defs: OpDef) -> None:
    for d in defs:
        if d.kind in REGISTRY:
            raise ValueError(f"op kind '{d.kind}' is registered twice")
        REGISTRY[d.kind] = d


def lookup(kind: str) -> Optional[OpDef]:
    return REGISTRY.get(kind)


def get(kind: str, node: str = "") -> OpDef:
    d = REGISTRY.get(kind)
    if d is None:
        where = f"node '{node}': " if node else ""
        raise TinydeployError(f"{where}op '{kind}' is not known to tinydeploy's op registry")
    return d


def scratch_bytes(g, op) -> int:
    """Arena bytes the op's own kernel needs as scratch during the op (OpDef.scratch; 0: none)."""
    d = REGISTRY.get(op.kind)
    return int(d.scratch(g, op)) if d is not None and d.scratch is not None else 0


def macs(g, op) -> int:
    """Multiply-accumulates of one op (0 for data movement and unknown kinds)."""
    d = REGISTRY.get(op.kind)
    return d.macs(g, op) if d is not None else 0
