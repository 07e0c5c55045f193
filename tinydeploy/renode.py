"""Renode support: users with Renode installed can run verification there too."""
from __future__ import annotations

import shutil

from .errors import TinydeployError


def require() -> None:
    """Renode is not packaged for Debian; it must be installed by the user."""
    if shutil.which("renode") is None or shutil.which("renode-test") is None:
        raise TinydeployError("--emulator renode needs `renode` and `renode-test` on PATH "
                              "(Renode is not in Debian's archive; install it from renode.io), "
                              "or use the default --emulator qemu")
    raise TinydeployError("the Renode verification path is not implemented yet; use --emulator qemu")
