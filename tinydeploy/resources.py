"""Where tinydeploy's non-Python files live: C runtime, code templates, target files,
host tools' C sources (the QEMU plugin).

A wheel carries them inside the package (tinydeploy/_data/<name>, copied there
at build time by setup.py); a source checkout (editable install, the tests)
has them at the repository root. Every module asks here, never relative to
its own file, so an installed tool and a checkout behave the same.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import TinydeployError

RUNTIME_C = "runtime_c"
CODEGEN_TEMPLATES = "codegen_templates"
TARGETS = "targets"
TOOLS_C = "tools_c"
SHIPPED = (RUNTIME_C, CODEGEN_TEMPLATES, TARGETS, TOOLS_C)


def data_dir(name: str) -> Path:
    """The directory of one shipped resource (runtime_c, codegen_templates, targets, tools_c)."""
    if name not in SHIPPED:
        raise ValueError(f"unknown resource directory '{name}'")
    packaged = resources.files("tinydeploy") / "_data" / name
    if packaged.is_dir():
        # An installed wheel is unpacked on disk, so this is a real directory.
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise TinydeployError(f"tinydeploy is installed without its '{name}' files; "
                          "reinstall it from a wheel or a source checkout")
