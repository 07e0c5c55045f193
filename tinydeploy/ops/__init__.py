"""Every op tinydeploy compiles, one module per op family (see base.py for
what an OpDef holds and docs/adding-an-op.md for adding one)."""
from . import (binary, concat, conv, conv_transpose, fc, pad, pool, reduce, resize,  # noqa: F401 (registration)
               resize_bilinear, shape, slice, softmax, tile, unary)
from . import elementwise_fn, layer_norm, matmul, rnn  # noqa: F401 (registration)
from . import attention  # noqa: F401 (registration)
from .base import REGISTRY, OpDef, get, lookup, macs, scratch_bytes

__all__ = ["REGISTRY", "OpDef", "get", "lookup", "macs", "scratch_bytes"]
