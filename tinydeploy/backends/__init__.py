"""Kernel backends: faster variants of ops for one family of targets.

A backend is a module of this package, found by its name: a target's JSON says
which one it uses ("backend": "arm"), so a new backend is a new module here
plus the board files that name it, with no edit to the core. A backend offers

    choose(g, op, target, inplace) -> Optional[kernel_variants.Choice]

the variant it has for `op` on `target` (its emitter, scratch bytes and in-place
behaviour), or None, in which case the op's portable kernel (OpDef.emit in
tinydeploy/ops) runs. `inplace` is the op's in-place decision (a
stage_types.InplaceMode, or None): a variant must be correct under it. At
emission the variant's emitter reads the decision as planned (its overlap
direction) with ctx.inplace(op). Every variant is tested bit-exact against the
portable kernel.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from ..errors import TinydeployError


def available() -> list[str]:
    """The backend names this installation has."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str) -> ModuleType:
    """The backend module `name`, checked to offer choose()."""
    if name not in available():
        raise TinydeployError(f"unknown kernel backend '{name}'; available: {', '.join(available())}")
    module = importlib.import_module(f"{__name__}.{name}")
    if not callable(getattr(module, "choose", None)):
        raise TinydeployError(f"kernel backend '{name}' has no choose(g, op, target, inplace) function")
    return module
