"""Compile generated libraries with gcc and clang at every -O level, with and
without frame pointers, under the strict warning flags; report what fails.

    PYTHONPATH=. python tools/compile_matrix.py OUT_DIR [OUT_DIR ...]
        [--toolchains gcc,clang] [--opts O0,Og,O2,Os,O3] [--fp both|on|off] [-j 2]

Each OUT_DIR is a `tinydeploy compile` output (its report.json names the
target). Identical sources of one target (the runtime kernels every model
shares) are compiled once, the weights files (constant data only) in one
configuration per compiler. Exit code 1 when anything fails; the distinct
diagnostics are listed once each with the configurations they occur in.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tinydeploy import toolchain
from tinydeploy.targets import load_target

STRICT = ("-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror")
FRAME_POINTER = {"on": "-fno-omit-frame-pointer", "off": "-fomit-frame-pointer"}
# the flag docs/integration.md asks for where GCC 12 would not finish (the 3x3 depthwise
# block's assembly at -Og with frame pointers; see td_arm_common.h, TD_ARM_DW_ASM)
DOCUMENTED_FLAGS = {("gcc", "Og", "on"): ["-DTD_ARM_DW_ASM=0"]}
COMPILE_TIMEOUT = 300  # seconds a file (a compiler that does not finish is a failure)


def jobs_for(lib_dirs, toolchains, opts, fps):
    """Configuration by configuration (so that a partial run covers whole ones)."""
    seen, sources = set(), []
    for lib in lib_dirs:
        lib = Path(lib).resolve()
        target = load_target(json.loads((lib / "report.json").read_text())["target"])
        for src in sorted(lib.glob("*.c")):
            key = (target.name, hashlib.sha1(src.read_bytes()).hexdigest())
            if key not in seen:
                seen.add(key)
                sources.append((target, src))
    for opt in opts:
        for fp in fps:
            for tc in toolchains:
                for target, src in sources:
                    data_only = src.name.endswith("_weights.c")  # constants: one configuration
                    if not data_only or (opt == opts[0] and fp == fps[0]):
                        yield target, tc, opt, fp, src


def compile_one(job, obj_dir):
    target, tc, opt, fp, src = job
    obj = Path(obj_dir) / f"{abs(hash(job))}.o"
    flags = [*STRICT, FRAME_POINTER[fp], *DOCUMENTED_FLAGS.get((tc, opt, fp), []),
             f"-I{src.parent}"]
    cmd = toolchain.compile_command(target, tc, str(src), str(obj), flags, f"-{opt}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return job, 1, f"error: the compiler did not finish within {COMPILE_TIMEOUT} s"
    finally:
        obj.unlink(missing_ok=True)
    return job, proc.returncode, proc.stderr


def summarize(results):
    diags = defaultdict(set)
    failed = 0
    for (target, tc, opt, fp, src), rc, err in results:
        if rc == 0 and not err.strip():
            continue
        failed += 1
        config = f"{tc} {target.name} -{opt} fp={fp}"
        lines = [l for l in err.splitlines() if re.search(r"(error|warning):", l)] or \
            err.strip().splitlines()[:3] or [f"exit {rc}"]
        for line in lines:
            line = re.sub(r"^.*/", "", line)  # drop the directory
            diags[line].add(config)
    return failed, diags


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("libs", nargs="+")
    ap.add_argument("--toolchains", default="gcc,clang")
    ap.add_argument("--opts", default="O0,Og,O2,Os,O3")
    ap.add_argument("--fp", default="both", choices=("both", "on", "off"))
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("-v", "--verbose", action="store_true", help="a progress line per compilation")
    args = ap.parse_args(argv)
    fps = ("on", "off") if args.fp == "both" else (args.fp,)
    jobs = list(jobs_for(args.libs, args.toolchains.split(","), args.opts.split(","), fps))
    results, done = [], defaultdict(lambda: [0, 0])
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        for result in pool.map(lambda j: compile_one(j, tmp), jobs):
            results.append(result)
            (_, tc, opt, fp, _), rc, err = result
            counts = done[(tc, opt, fp)]
            counts[0] += 1
            counts[1] += bool(rc or err.strip())
            if args.verbose:
                print(f"[{len(results)}/{len(jobs)}] {tc} -{opt} fp={fp}: {counts[0]} compiled, "
                      f"{counts[1]} with diagnostics", flush=True)
    failed, diags = summarize(results)
    targets = sorted({j[0].name for j in jobs})
    print(f"{len(jobs)} compilations ({args.toolchains} x {', '.join(targets)} x "
          f"{args.opts} x frame pointer {args.fp}): {failed} with diagnostics")
    for line, configs in sorted(diags.items(), key=lambda kv: -len(kv[1])):
        shown = sorted(configs)
        more = f" (+{len(shown) - 4} more)" if len(shown) > 4 else ""
        print(f"  {line}\n      in {'; '.join(shown[:4])}{more}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
