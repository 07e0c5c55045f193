"""clang builds, the wrong-core #error and linker-section placement (issue 17).

* The generated library of one model per target family (Arm DSP, Helium,
  Cortex-M0+, RV32IMC, RV32 + vector; float32 on an FPU core) compiles with
  clang --target=arm-none-eabi / riscv32-unknown-elf under -Wall -Wextra
  -Wpedantic -Wconversion -Werror at -O0, -O2 and -Os, with and without frame
  pointers (and with the cross gcc at -O0 with frame pointers; tools/compile_matrix.py
  runs the whole matrix: every model, -O0/-Og/-O2/-Os/-O3).
* Firmware whose library clang compiled is bit-exact on the emulators (Cortex-M7
  DSP and Cortex-M55 Helium with kws, RV32 + Zve32x with the digits CNN).
* NAME.c built for a core without its kernels' instructions stops with an
  #error naming the target and the core; portable output compiles anywhere.
* --weights-section / --arena-section place the weights and the arena in the
  named sections of the ELF, and the firmware still verifies with a linker
  script that maps them.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tinydeploy import api, data, on_target, toolchain
from tinydeploy.targets import TARGETS_DIR, load_target
from conftest import EXAMPLES, cli, model_path

STRICT = ["-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror"]
DIGITS = EXAMPLES / "digits"
# One library per target family: (target, model, compile options).
FAMILIES = {
    "arm-dsp": ("stm32f746", "kws", {}),  # balanced: int8 weights in the DSP kernels
    "arm-dsp-speed": ("stm32f746", "kws", {"optimize": "speed"}),  # int16 weights
    "arm-dsp-int4": ("stm32f746", "kws", {"weights": "int4"}),  # packed int4 weights
    "arm-fpu-float32": ("stm32f746", "digits", {"quantize": "float32"}),
    "helium": ("cortex-m55", "kws", {}),
    "cortex-m0plus": ("rp2040", "digits", {"calib": str(DIGITS / "calib.npz")}),
    "rv32imc": ("esp32-c3", "digits", {"calib": str(DIGITS / "calib.npz")}),
    "rv32-vector": ("rv32-zve32x", "kws", {}),
    "rv32-vector-int4": ("rv32-zve32x", "kws", {"weights": "int4"}),
    "helium-int4": ("cortex-m55", "kws", {"weights": "int4"}),
}

needs_clang = pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")


def _model(name: str) -> Path:
    return DIGITS / "digits_cnn.onnx" if name == "digits" else model_path(name, "int8_qdq.onnx")


@pytest.fixture(scope="module")
def family_libs(tmp_path_factory):
    base = tmp_path_factory.mktemp("families")
    cache = {}

    def get(family):
        if family not in cache:
            target, model, options = FAMILIES[family]
            cache[family] = api.compile(_model(model), target=target, out_dir=base / family,
                                        **options)
        return cache[family]
    return get


def _compile(target, tc: str, sources, lib: Path, flags, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [toolchain.find_compiler(target, tc), *toolchain.cflags(target, tc), *STRICT, *flags,
           f"-I{lib}", "-c", *map(str, sources)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)


@needs_clang
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_library_compiles_warning_free_with_clang_and_gcc(family, family_libs, tmp_path):
    result = family_libs(family)
    target, lib = result.target, result.out_dir
    code = sorted(p for p in lib.glob("*.c") if not p.name.endswith("_weights.c"))
    weights = sorted(lib.glob("*_weights.c"))
    configs = [("clang", opt, fp) for opt in ("-O0", "-O2", "-Os")
               for fp in ("-fno-omit-frame-pointer", "-fomit-frame-pointer")]
    configs += [("gcc", "-O0", "-fno-omit-frame-pointer")]
    for tc, opt, fp in configs:
        proc = _compile(target, tc, code, lib, [opt, fp], tmp_path)
        assert proc.returncode == 0 and not proc.stderr.strip(), \
            f"{family} {tc} {opt} {fp}:\n{proc.stderr[-3000:]}"
    for tc in ("clang", "gcc"):  # data only: one configuration
        proc = _compile(target, tc, weights, lib, ["-O2"], tmp_path)
        assert proc.returncode == 0 and not proc.stderr.strip(), f"{family} {tc}:\n{proc.stderr[-3000:]}"


@needs_clang
@pytest.mark.parametrize("target,optimize", [("stm32f746", "size"), ("stm32f746", "speed"),
                                             ("cortex-m55", "balanced")])
def test_clang_built_firmware_is_bit_exact_on_the_emulator(target, optimize):
    """kws: convolution, depthwise, pooling, fully connected: the C micro-kernels
    that replace the r7 assembly under clang (DSP, on int8 and int16 weights), the
    Helium kernels."""
    r = api.verify(model_path("kws", "int8_qdq.onnx"), target=target, samples=2,
                   toolchain="clang", optimize=optimize)
    assert r.match and r.max_abs_diff == 0, r


@needs_clang
@pytest.mark.parametrize("target,model", [("stm32f746", "kws"), ("cortex-m55", "kws"), ("rv32-zve32x", "kws")])
def test_clang_built_int4_firmware_is_bit_exact_on_the_emulator(target, model):
    """--weights int4 built by clang: kws on the Cortex-M7 (the Arm DSP int4 convolutions,
    td_arm_conv_s4, and the portable int4 depthwise and fully connected kernels); on
    Helium (td_mve_conv_s4, td_mve_fc_s4) and RISC-V vector (td_rvv_conv_s4, td_rvv_dw_s4,
    td_rvv_fc_s4)."""
    r = api.verify(model_path(model, "int8_qdq.onnx"), target=target, samples=2,
                   toolchain="clang", weights="int4")
    assert r.match and r.max_abs_diff == 0, r


@needs_clang
@pytest.mark.parametrize("target", ["rv32-zve32x", "esp32-c3", "rp2040"])  # RVV, RV32 scalar, Armv6-M
def test_cli_verify_with_clang(target):
    proc = cli("verify", DIGITS / "digits_cnn.onnx", "--calib", DIGITS / "calib.npz",
               "-t", target, "--toolchain", "clang", "--samples", "2", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "bit-exact" in proc.stdout


def test_clang_flags_come_from_the_target():
    tgt = load_target("rv32-zve32x")
    flags = toolchain.cflags(tgt, "clang", "-O0")
    assert flags[0] == "--target=riscv32-unknown-elf"
    assert "-O0" in flags and "-O2" not in flags
    assert not any(f.startswith("--specs") for f in flags)
    assert any(f.startswith("-march=rv32imc") and "zve32x" in f for f in flags)
    assert toolchain.cflags(tgt, "gcc") == list(tgt.cflags)


# --------------------------------------------------------------------------
# The wrong core
# --------------------------------------------------------------------------
@pytest.mark.parametrize("cc", ["arm-none-eabi-gcc", "clang"])
def test_library_for_another_core_stops_with_an_error_naming_it(cc, family_libs, tmp_path):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    lib = family_libs("arm-dsp").out_dir
    m0 = load_target("rp2040")
    tc = "clang" if cc == "clang" else "gcc"
    proc = subprocess.run([toolchain.find_compiler(m0, tc), *toolchain.cflags(m0, tc),
                           f"-I{lib}", "-c", str(lib / "net.c"), "-o", str(tmp_path / "x.o")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    first = next(l for l in proc.stderr.splitlines() if "error" in l)
    assert "#error" in first or "error:" in first
    assert "generated for target stm32f746 (cortex-m7 with the DSP extension)" in first, first
    assert "different core" in first


def test_helium_library_needs_helium(family_libs, tmp_path):
    lib = family_libs("helium").out_dir
    m7 = load_target("stm32f746")
    proc = subprocess.run([m7.cc, *m7.cflags, f"-I{lib}", "-c", str(lib / "net.c"),
                           "-o", str(tmp_path / "x.o")], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "target cortex-m55 (cortex-m55 with the DSP extension and Helium (MVE))" in proc.stderr


def test_riscv_vector_library_needs_the_vector_extension(family_libs, tmp_path):
    lib = family_libs("rv32-vector").out_dir
    c3 = load_target("esp32-c3")
    proc = subprocess.run([c3.cc, *c3.cflags, f"-I{lib}", "-c", str(lib / "net.c"),
                           "-o", str(tmp_path / "x.o")], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "generated for target rv32-zve32x" in proc.stderr and "vector extension" in proc.stderr


def test_portable_output_has_no_core_check(tmp_path):
    result = api.compile(DIGITS / "digits_cnn.onnx", out_dir=tmp_path / "lib",
                         calib=DIGITS / "calib.npz")
    assert "#error" not in (result.out_dir / "net.c").read_text()
    m0 = load_target("rp2040")
    if shutil.which(m0.cc):
        proc = subprocess.run([m0.cc, *m0.cflags, *STRICT, f"-I{result.out_dir}", "-c",
                               str(result.out_dir / "net.c"), "-o", str(tmp_path / "x.o")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------
# Linker sections
# --------------------------------------------------------------------------
PLACEMENT_LD = """\
/* mps2 code memory split: the last MB stands in for QSPI flash; the last MB of
 * SRAM for DTCM. */
MEMORY
{
    FLASH (rx)  : ORIGIN = 0x00000000, LENGTH = 3M
    QSPI  (rx)  : ORIGIN = 0x00300000, LENGTH = 1M
    RAM   (rwx) : ORIGIN = 0x20000000, LENGTH = 3M
    DTCM  (rw)  : ORIGIN = 0x20300000, LENGTH = 1M
}

REGION_ALIAS("TDH_CODE", FLASH);
REGION_ALIAS("TDH_CONST", FLASH);
REGION_ALIAS("TDH_RAM", RAM);

SECTIONS
{
    .qspi_rodata : ALIGN(16) { *(.qspi_rodata) } > QSPI
    .dtcm (NOLOAD) : ALIGN(16) { *(.dtcm) } > DTCM
}

INCLUDE cortexm_sections.ld
"""


def _symbols(elf: Path) -> dict:
    """{symbol: (section, address)} from objdump -t."""
    out = subprocess.run(["arm-none-eabi-objdump", "-t", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]{8}) .{7} (\S+)\s+[0-9a-f]+\s+(\S+)$", line)
        if m:
            table[m.group(3)] = (m.group(2), int(m.group(1), 16))
    return table


def test_weights_and_arena_go_to_the_named_sections(tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    result = api.compile(DIGITS / "digits_cnn.onnx", target="nucleo-l4r5zi", out_dir=tmp_path / "lib",
                         calib=DIGITS / "calib.npz", weights_section=".qspi_rodata",
                         arena_section=".dtcm")
    assert result.report["sections"] == {"weights": ".qspi_rodata", "arena": ".dtcm"}
    # a linker script that maps the two sections (next to the shared layout it includes)
    script = tmp_path / "ld" / "placement.ld"
    script.parent.mkdir()
    script.write_text(PLACEMENT_LD)
    shutil.copy(TARGETS_DIR / "arm" / "cortexm_sections.ld", script.parent)
    result.target = dataclasses.replace(result.target, linker_script=script)
    xq = data.default_inputs(result.io, 2)
    verdict = on_target.compare(result, xq, tmp_path / "work")
    assert verdict.match and verdict.max_abs_diff == 0
    elf = tmp_path / "work" / "fw-profile" / "firmware.elf"
    symbols = _symbols(elf)
    assert symbols["net_arena"][0] == ".dtcm" and symbols["net_arena"][1] >= 0x20300000
    assert symbols["net_arena"][1] % 16 == 0
    obj = elf.parent / "obj" / "net_weights.o"
    nm = subprocess.run(["arm-none-eabi-nm", "--defined-only", str(obj)], capture_output=True,
                        text=True, check=True).stdout
    weights = [line.split()[-1] for line in nm.splitlines()]
    assert weights and all(symbols[s][0] == ".qspi_rodata" for s in weights), \
        {s: symbols[s] for s in weights}
    assert all(0x300000 <= symbols[s][1] < 0x400000 and symbols[s][1] % 4 == 0 for s in weights)


def test_bad_section_name_is_refused():
    proc = cli("compile", DIGITS / "digits_cnn.onnx", "--quantize", "float32", "-o", "/tmp/x-never",
               "--weights-section", "bad name")
    assert proc.returncode == 2 and "is not a linker section name" in proc.stderr
