"""C compiler command lines for a target, with gcc (the target's own `cc`) or clang.

The targets describe their gcc cross compiler (`cc`, `cflags`). clang builds
the same code with `--target=<triple>`, the target's -mcpu/-march/-mfpu/
-mfloat-abi/-mabi flags and the gcc toolchain's C library headers (newlib for
arm-none-eabi, picolibc for riscv64-unknown-elf); objects compiled by clang
are linked by the gcc driver with the gcc toolchain's libraries, which is the
simplest setup that works with every clang (no clang runtime library needed).
"""
from __future__ import annotations

import functools
import re
import shutil
import subprocess
from typing import Sequence

from .errors import TinydeployError

TOOLCHAINS = ("gcc", "clang")
# Debian packages that provide each compiler driver.
TOOL_PACKAGES = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "riscv64-unknown-elf-gcc": "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf",
    "gcc": "gcc",
    "clang": "clang",
}

# gcc-only driver options that clang does not take (it gets the headers explicitly).
_GCC_ONLY = re.compile(r"^--specs=")
_OPT_LEVEL = re.compile(r"^-O([0-3sgz]|fast)?$")


def clang_triple(target) -> str:
    if target.arch == "arm":
        return "arm-none-eabi"
    if target.arch == "riscv":
        return "riscv32-unknown-elf"
    return ""  # host: clang's default


def find_compiler(target, toolchain: str = "gcc") -> str:
    """Path of the compiler driver for `target` with `toolchain`."""
    if toolchain not in TOOLCHAINS:
        raise TinydeployError(f"unknown toolchain '{toolchain}'; use one of {', '.join(TOOLCHAINS)}")
    tool = target.cc if toolchain == "gcc" else "clang"
    path = shutil.which(tool)
    if path is None:
        package = TOOL_PACKAGES.get(tool)
        hint = (f"install the Debian package(s) {package}" if package
                else "install it or fix the target's 'cc' field")
        raise TinydeployError(
            f"the compiler '{tool}' for target {target.name} is not on PATH: {hint} "
            "(./quickstart.sh installs all the tools)")
    return path


def cflags(target, toolchain: str = "gcc", opt: str | None = None) -> list[str]:
    """The target's compile flags for `toolchain`; opt ('-O0', '-Os', ...) replaces its -O level."""
    flags = list(target.cflags)
    if opt is not None:
        flags = [f for f in flags if not _OPT_LEVEL.match(f)] + [opt]
    if toolchain == "gcc" or target.is_host:
        return flags
    flags = [f for f in flags if not _GCC_ONLY.match(f)]
    if target.arch == "riscv":
        flags = [_clang_march(f) if f.startswith("-march=") else f for f in flags]
    triple = clang_triple(target)
    return [f"--target={triple}", *flags, *_system_includes(target.cc, tuple(target.cflags))]


@functools.lru_cache(maxsize=None)
def _clang_accepts(flag: str, triple: str) -> bool:
    clang = shutil.which("clang")
    if clang is None:
        return False
    proc = subprocess.run([clang, f"--target={triple}", flag, "-E", "-x", "c", "-"],
                          input="", capture_output=True, text=True)
    return proc.returncode == 0


def _clang_march(flag: str) -> str:
    """clang before 16 knows no zicsr/zifencei (it implies them): drop them if it refuses them."""
    if _clang_accepts(flag, "riscv32-unknown-elf"):
        return flag
    return re.sub(r"_zi(csr|fencei)(?=_|$)", "", flag)


@functools.lru_cache(maxsize=None)
def _system_includes(cc: str, flags: tuple[str, ...]) -> tuple[str, ...]:
    """-isystem for the C library headers of the gcc cross toolchain (not gcc's own:
    clang brings its stddef.h/stdint.h wrappers, arm_mve.h and so on)."""
    gcc = shutil.which(cc)
    if gcc is None:
        return ()
    keep = [f for f in flags if f.startswith(("-m", "--specs="))]
    proc = subprocess.run([gcc, *keep, "-E", "-Wp,-v", "-x", "c", "-"], input="",
                          capture_output=True, text=True)
    dirs, inside = [], False
    for line in proc.stderr.splitlines():
        if line.startswith("#include <...>"):
            inside = True
        elif line.startswith("End of search list"):
            break
        elif inside:
            path = line.strip()
            if re.search(r"/lib/gcc/[^/]+/[^/]+/include(-fixed)?$", path):
                continue  # gcc's own headers
            dirs.append(path)
    return tuple(f for d in dirs for f in ("-isystem", d))


def compile_command(target, toolchain: str, source: str, obj: str,
                    extra: Sequence[str] = (), opt: str | None = None) -> list[str]:
    return [find_compiler(target, toolchain), *cflags(target, toolchain, opt), *extra,
            "-c", source, "-o", obj]


def core_guard(target, name: str, files) -> list[str]:
    """Preprocessor lines for NAME.c that stop a build for a core the library was not
    generated for: the Arm and RISC-V kernels need their core's instructions (DSP extension,
    Helium, RV32 M, vector), and without the check a wrong -mcpu gives pages of undeclared
    functions or bad asm instead.  files: the library's runtime headers and sources; a library
    of portable C only (every host build) gets no check and compiles anywhere."""
    files = [str(f) for f in files]
    if target.backend == "arm" and any(f.startswith(("td_arm_", "arm/")) or "/arm/" in f
                                       for f in files):
        conds = ["!defined(__arm__)", "!defined(__ARM_ARCH_PROFILE)", "__ARM_ARCH_PROFILE != 'M'"]
        needs = []
        if target.has("dsp"):
            conds.append("!defined(__ARM_FEATURE_DSP)")
            needs.append("the DSP extension")
        if target.has("mve"):
            conds.append("!defined(__ARM_FEATURE_MVE)")
            needs.append("Helium (MVE)")
    elif target.backend == "riscv" and any("riscv" in f or f.startswith("rv_") for f in files):
        conds = ["!defined(__riscv)", "__riscv_xlen != 32", "!defined(__riscv_mul)"]
        needs = ["the M extension"]
        if target.has("rvv"):
            conds.append("!defined(__riscv_vector)")
            needs.append("the vector extension")
    else:
        return []
    core = target.core + (" with " + " and ".join(needs) if needs else "")
    flags = " ".join(f for f in target.cflags if f.startswith(("-mcpu=", "-march=", "-mfpu=")))
    message = (f"{name}.c: generated for target {target.name} ({core}); this compiler targets a "
               f"different core: compile with the target's flags ({flags}) or regenerate the "
               f"library with tinydeploy compile -t <your target>")
    return [f"/* This library's kernels need {core} (target {target.name}). */",
            "#if " + " || ".join(conds),
            f'#error "{message}"',
            "#endif"]
