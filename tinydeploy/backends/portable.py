"""The portable backend: no variants, every op runs its portable C kernel
(OpDef.emit in tinydeploy/ops). For hosts and cores without a SIMD backend."""
from __future__ import annotations


def choose(g, op, target, inplace=None):
    return None
