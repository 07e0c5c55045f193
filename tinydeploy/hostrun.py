"""Build a generated library with the host C compiler and run samples through it."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from .codegen import TEMPLATES
from .errors import TinydeployError

HOST_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]


def host_cc(cc: str | None = None) -> str:
    cc = cc or os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise TinydeployError(f"the host C compiler '{cc}' was not found; install gcc "
                              "(Debian: apt-get install gcc) or set CC")
    return cc


def build(lib_dir: Path, name: str, io: dict, exe: Path, extra_flags=(), cc: str | None = None) -> Path:
    """Compile the library in lib_dir with a small file-I/O main into `exe` (cc: the compiler,
    default $CC or gcc)."""
    import jinja2
    main_c = exe.parent / "td_host_main.c"
    main_c.write_text(jinja2.Template((TEMPLATES / "host_main.c.j2").read_text()).render(
        name=name, NAME=name.upper(), in_ctype=io["input"]["ctype"], out_ctype=io["output"]["ctype"],
        **packed_io(io)))
    sources = sorted(str(p) for p in lib_dir.glob("*.c")) + [str(main_c)]
    cmd = [host_cc(cc), *HOST_CFLAGS, *extra_flags, "-I", str(lib_dir), *sources, "-o", str(exe), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TinydeployError(f"the generated C failed to compile on the host "
                              f"(this is a tinydeploy bug):\n{proc.stderr[-4000:]}")
    return exe


def packed_io(io: dict) -> dict:
    """How a driver holding one sample's inputs (and outputs) flattened and concatenated
    in the model's order calls NAME_run: in_size, out_size (elements) and the pointers
    into `x` and `y` (run_args); one input and one output: (x, y)."""
    inputs, outputs = io.get("inputs") or [io["input"]], io.get("outputs") or [io["output"]]
    args, at = [], {"x": 0, "y": 0}
    for buf, entries in (("x", inputs), ("y", outputs)):
        for e in entries:
            args.append(f"{buf} + {at[buf]}" if len(inputs) + len(outputs) > 2 else buf)
            at[buf] += e["size"]
    return dict(in_size=at["x"], out_size=at["y"], run_args=", ".join(args))


def run(exe: Path, inputs: np.ndarray, out_dtype: str, out_shape, timeout: float = 600) -> np.ndarray:
    """Run every sample (first axis) through the host executable."""
    inputs = np.ascontiguousarray(inputs)
    in_path, out_path = exe.parent / "td_inputs.bin", exe.parent / "td_outputs.bin"
    in_path.write_bytes(inputs.tobytes())
    proc = subprocess.run([str(exe), str(in_path), str(out_path), str(len(inputs))],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise TinydeployError(f"the host build failed at run time (exit {proc.returncode}): "
                              f"{proc.stderr.strip()[-2000:]}")
    data = np.frombuffer(out_path.read_bytes(), dtype=out_dtype)
    return data.reshape((len(inputs),) + tuple(out_shape))
