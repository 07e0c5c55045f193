"""An in-process cache of compiled objects, keyed by what the compiler actually sees.

`verify`, `bench` and the tests build many firmwares whose runtime kernels (td_s8_*.c,
the DSP GEMM, the run-time im2col, ...) are byte-for-byte the same sources with the same
flags; only the model's own net.c, its weights and the sample file change. Compiling a
source is looked up by the SHA-256 of the compiler's path, its flags (without -I, whose
effect the preprocessed text carries) and the preprocessed text without line markers
(`cc -E -P`, about 10 ms where the compile takes 100-400 ms): equal keys mean the
compiler gets the same translation unit with the same options, so the object is the same.
Only successful compiles are cached; warnings cannot differ between equal keys.
"""
from __future__ import annotations

import hashlib
import subprocess
import threading
from collections import OrderedDict
from pathlib import Path

MAX_ENTRIES = 256
MAX_OBJECT_BYTES = 1 << 20  # bigger objects (weights) compile faster than they are worth keeping

_objects: OrderedDict[str, bytes] = OrderedDict()
_lock = threading.Lock()


def _key(cc: str, flags: list[str], source: Path) -> str | None:
    """The cache key of compiling `source`, or None when it cannot be preprocessed."""
    kept, skip = [], False
    for flag in flags:
        if skip:
            skip = False
        elif flag in ("-I", "-include"):
            skip = True  # the included text is in the preprocessed output
        elif not flag.startswith("-I"):
            kept.append(flag)
    proc = subprocess.run([cc, *flags, "-E", "-P", str(source)], capture_output=True)
    if proc.returncode != 0:
        return None  # let the real compile report it
    digest = hashlib.sha256()
    for part in (cc, "\0".join(kept), ""):
        digest.update(part.encode() + b"\0")
    digest.update(proc.stdout)
    return digest.hexdigest()


def compile_object(cc: str, flags: list[str], source: Path, obj: Path, run) -> None:
    """Compile `source` to `obj` with `run([cc, *flags, "-c", source, "-o", obj])`, or copy
    the object of an earlier compile of the same translation unit."""
    key = _key(cc, flags, source)
    with _lock:
        cached = _objects.get(key) if key else None
        if cached is not None:
            _objects.move_to_end(key)
    if cached is not None:
        obj.write_bytes(cached)
        return
    run([cc, *flags, "-c", str(source), "-o", str(obj)])
    data = obj.read_bytes()
    if key and len(data) <= MAX_OBJECT_BYTES:
        with _lock:
            _objects[key] = data
            while len(_objects) > MAX_ENTRIES:
                _objects.popitem(last=False)
