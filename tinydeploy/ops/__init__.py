"""Every op tinydeploy compiles, one module per op family (see base.py for
what an OpDef holds and docs/adding-an-op.md for adding one)."""
from . import binary, concat, conv, fc, pad, pool, reduce, resize, shape, slice, softmax, tile, unary  # noqa: F401,E501 (registration)
from .base import REGISTRY, OpDef, get, lookup, macs

__all__ = ["REGISTRY", "OpDef", "get", "lookup", "macs"]
