"""Targets, firmware builder and QEMU runner, end to end with a fake model.

The fake model is plain C written here: three "layers" (x*3, a spin loop of
exactly 2 instructions per iteration, +1) reporting through TD_LAYER_DONE,
so outputs, dumps and instruction counts have known values on every target.
"""
import json
import shutil

import numpy as np
import pytest

from tinydeploy.emulator import elf_sizes, parse_log, renode_script, run_firmware, run_renode
from tinydeploy.errors import TinydeployError
from tinydeploy.firmware import ModelInfo, build_firmware
from tinydeploy.targets import TARGETS_DIR, list_targets, load_target

MCU_TARGETS = ["stm32f746", "nucleo-l4r5zi", "nrf52840", "rp2040", "cortex-m55",
               "esp32-c3", "rv32-zve32x"]
SIZE = 48
SPIN = 1000  # iterations of the 2-instruction loop in layer 1

FAKE_H = """\
#include <stdint.h>
#define FAKE_INPUT_SIZE 48
#define FAKE_OUTPUT_SIZE 48
int fake_run(const int8_t *input, int8_t *output);
"""

FAKE_C = """\
#include "fake.h"
#ifndef TD_LAYER_DONE
#define TD_LAYER_DONE(i, p, n) ((void)0)
#endif

static int8_t fake_act[FAKE_INPUT_SIZE];

#ifdef FAKE_TRAPS
/* about 270 KB of stack: overflows the 64 KB one */
static int fake_deep(volatile int8_t *p, int n)
{
    volatile int8_t buf[256];
    buf[0] = p[0];
    return n ? fake_deep(buf, n - 1) + buf[n & 255] : buf[0];
}
#endif

/* exactly two instructions per iteration */
static void fake_spin(unsigned n)
{
#if defined(__thumb2__)
    __asm__ volatile("1: subs %0, %0, #1\\n\\tbne 1b" : "+l"(n) : : "cc");
#elif defined(__arm__) /* Thumb-1 inline asm uses the divided syntax */
    __asm__ volatile("1: sub %0, #1\\n\\tbne 1b" : "+l"(n) : : "cc");
#elif defined(__riscv)
    __asm__ volatile("1: addi %0, %0, -1\\n\\tbnez %0, 1b" : "+r"(n));
#else
    for (volatile unsigned i = 0; i < n; ++i) {
    }
#endif
}

int fake_run(const int8_t *input, int8_t *output)
{
    if (input[0] == -128)
        return 3;
#ifdef FAKE_TRAPS
    if (input[0] == -127)
        __builtin_trap();
    if (input[0] == -126)
        for (;;) {
        }
    if (input[0] == -125)
        return fake_deep(fake_act, 1000) == 1234 ? 5 : 0;
#endif
    for (int i = 0; i < FAKE_INPUT_SIZE; ++i)
        fake_act[i] = (int8_t)(input[i] * 3);
    TD_LAYER_DONE(0, fake_act, sizeof fake_act);
    fake_spin(FAKE_SPIN);
    TD_LAYER_DONE(1, fake_act, sizeof fake_act);
    for (int i = 0; i < FAKE_OUTPUT_SIZE; ++i)
        output[i] = (int8_t)(fake_act[i] + 1);
    TD_LAYER_DONE(2, output, FAKE_OUTPUT_SIZE);
    return 0;
}
"""

FLT_H = """\
#define FLT_INPUT_SIZE 8
#define FLT_OUTPUT_SIZE 8
int flt_run(const float *input, float *output);
"""

FLT_C = """\
#include <math.h>
#include "flt.h"
#ifndef TD_LAYER_DONE
#define TD_LAYER_DONE(i, p, n) ((void)0)
#endif

int flt_run(const float *input, float *output)
{
    for (int i = 0; i < FLT_INPUT_SIZE; ++i)
        output[i] = input[i] * 2.0f + 0.5f;
    TD_LAYER_DONE(0, output, sizeof(float) * FLT_OUTPUT_SIZE);
    output[0] = expf(input[0]);
    output[1] = tanhf(input[1]);
    TD_LAYER_DONE(1, output, sizeof(float) * FLT_OUTPUT_SIZE);
    return 0;
}
"""

FAKE_MODEL = ModelInfo(name="fake", input_ctype="int8_t", output_ctype="int8_t",
                       input_size=SIZE, output_size=SIZE, num_layers=3)
FLT_MODEL = {"name": "flt", "input_ctype": "float", "output_ctype": "float",
             "input_size": 8, "output_size": 8, "num_layers": 2}


def expected_layers(x):
    act = (x.astype(np.int8) * np.int8(3)).astype(np.int8)
    return act, (act + np.int8(1)).astype(np.int8)


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("fake_src")
    for name, text in (("fake.h", FAKE_H), ("fake.c", FAKE_C), ("flt.h", FLT_H), ("flt.c", FLT_C)):
        (d / name).write_text(text)
    return d


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(7)
    x = rng.integers(-100, 101, size=(3, 6, 8)).astype(np.int8)  # any shape per sample
    x[1, 0, :3] = [127, -99, 42]
    return x


def build_fake(src, target, out, inputs, mode="profile", defines=None):
    return build_firmware(target, [src / "fake.c"], [src], {"FAKE_SPIN": SPIN, **(defines or {})},
                          FAKE_MODEL, inputs, out, mode=mode, werror=True)


@pytest.fixture(scope="module", params=MCU_TARGETS)
def profiled(request, src, samples, tmp_path_factory):
    """(target name, first run, second run) of the fake model in profile mode."""
    out = tmp_path_factory.mktemp(f"fw_{request.param}")
    elf = build_fake(src, request.param, out, samples)
    return request.param, run_firmware(request.param, elf), run_firmware(request.param, elf), elf


# ---- targets ---------------------------------------------------------------

def test_builtin_targets_load():
    names = list_targets()
    assert set(MCU_TARGETS + ["host"]) <= set(names)
    for name in names:
        t = load_target(name)
        assert t.name == name and t.sram_bytes > 0 and t.flash_bytes > 0 and t.clock_hz > 0
        assert all(p.is_file() for p in t.startup)
        if t.arch != "host":
            assert t.linker_script.is_file() and t.emulator.machine
    assert load_target("rv32-zve32x").vlen == 128
    assert load_target("cortex-m55").has("mve") and load_target("rp2040").features == ()
    assert load_target("stm32f746").instructions_per_tick == 40


def test_unknown_target_lists_known_ones():
    with pytest.raises(TinydeployError) as err:
        load_target("stm32f999")
    for name in MCU_TARGETS:
        assert name in str(err.value)


def write_target(tmp_path, **changes):
    data = json.loads((TARGETS_DIR / "nrf52840.json").read_text())
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "board.json"
    path.write_text(json.dumps(data))
    return path


def test_custom_target_file(tmp_path, src, samples):
    path = write_target(tmp_path, name="my-board", sram_bytes=128 * 1024)
    target = load_target(str(path))
    assert target.name == "my-board" and target.sram_bytes == 131072
    assert target.linker_script == TARGETS_DIR / "arm" / "mps2.ld"  # resolved via targets/
    result = run_firmware(target, build_fake(src, target, tmp_path / "fw", samples[:1]))
    assert np.array_equal(result.outputs[0], expected_layers(samples[0].ravel())[1])


@pytest.mark.parametrize("changes, message", [
    ({"clock_hz": None}, "field 'clock_hz' is missing"),
    ({"sram_bytes": "lots"}, "field 'sram_bytes' must be an integer"),
    ({"sram_bytes": -5}, "field 'sram_bytes' must be a positive integer"),
    ({"features": ["dsp", "avx"]}, "unknown feature 'avx'"),
    ({"features": ["rvv"]}, "field 'vlen' is missing"),
    ({"arch": "mips"}, "field 'arch' must be one of"),
    ({"linker_script": "arm/nowhere.ld"}, "field 'linker_script' names arm/nowhere.ld"),
    ({"emulator": {"machine": "mps2-an386"}}, "field 'emulator.qemu' is missing"),
    ({"cflags": "-O2"}, "field 'cflags' must be a list"),
    ({"backend": "avx512"}, "field 'backend' must be one of arm, portable, riscv; got 'avx512'"),
])
def test_invalid_target_file(tmp_path, changes, message):
    path = write_target(tmp_path, **changes)
    with pytest.raises(TinydeployError) as err:
        load_target(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_malformed_target_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"name": "bad", "arch": "arm",,}')
    with pytest.raises(TinydeployError, match=r"bad.json is not valid JSON.*line 1"):
        load_target(path)
    with pytest.raises(TinydeployError, match="does not exist"):
        load_target(tmp_path / "missing.json")


# ---- firmware on every MCU target -------------------------------------------

def test_outputs_match_numpy(profiled, samples):
    name, result, _, _ = profiled
    assert result.mode == "profile"
    for s, x in enumerate(samples):
        assert np.array_equal(result.outputs[s], expected_layers(x.ravel())[1]), name
    assert result.output_array.shape == (3, SIZE)


def test_instruction_counts_deterministic_and_plausible(profiled):
    name, first, second, _ = profiled
    assert first.instructions == second.instructions
    assert first.layer_instructions == second.layer_instructions
    for total, layers in zip(first.instructions, first.layer_instructions):
        assert len(layers) == 3
        # layer 1 is the hand-counted loop: 2 * SPIN instructions, plus setting
        # the counter; timer readings are synchronised to within a few
        assert abs(layers[1] - 2 * SPIN) <= 8, (name, layers)
        # layers 0 and 2 loop over 48 elements: a few instructions each
        assert 2 * SIZE <= layers[0] <= 12 * SIZE and 2 * SIZE <= layers[2] <= 12 * SIZE
        # the layers add up to the inference (plus its prologue and epilogue)
        assert -8 <= total - sum(layers) <= 30, (name, total, layers)


def test_stack_and_sizes(profiled):
    name, result, _, elf = profiled
    assert 0 < result.stack_bytes < 4096
    sizes = elf_sizes(elf)
    assert sizes["text"] > 1000 and sizes["rodata"] >= 3 * SIZE
    assert sizes["bss"] >= SIZE and sizes["stack"] == 64 * 1024
    assert sizes["flash"] == sizes["text"] + sizes["rodata"] + sizes["data"]


@pytest.mark.parametrize("target", ["nrf52840", "esp32-c3"])
def test_dump_mode(target, src, samples, tmp_path):
    result = run_firmware(target, build_fake(src, target, tmp_path, samples, mode="dump"))
    for s, x in enumerate(samples):
        act, out = expected_layers(x.ravel())
        assert np.array_equal(result.dump(s, 0, np.int8), act)
        assert np.array_equal(result.dump(s, 2, "int8"), out)
        assert np.array_equal(result.outputs[s], out)
    assert result.instructions is not None  # counts exclude the printing


@pytest.mark.parametrize("target", ["esp32-c3", "cortex-m55"])
def test_run_mode_has_no_hooks(target, src, samples, tmp_path):
    plain = run_firmware(target, build_fake(src, target, tmp_path / "r", samples, mode="run"))
    hooked = run_firmware(target, build_fake(src, target, tmp_path / "p", samples))
    assert plain.mode == "run" and plain.layer_instructions == [[], [], []]
    assert np.array_equal(plain.output_array, hooked.output_array)
    # The calls themselves are calibrated away, but code compiled around hook
    # calls is a little worse (spills; no loop fusion or vectorization across
    # layers), so profiling never makes an inference cheaper.
    for a, b in zip(plain.instructions, hooked.instructions):
        assert 0.5 * b <= a <= b + 40, (plain.instructions, hooked.instructions)


@pytest.mark.parametrize("target, reload", [("nrf52840", "63u"), ("cortex-m55", "127u")])
def test_counter_widening(target, reload, src, samples, tmp_path):
    """A tiny timer period makes the counter wrap many times per inference."""
    normal = run_firmware(target, build_fake(src, target, tmp_path / "n", samples))
    wraps = run_firmware(target, build_fake(src, target, tmp_path / "w", samples,
                                            defines={"TDH_COUNTER_RELOAD": reload}))
    assert np.array_equal(normal.output_array, wraps.output_array)
    quantum = load_target(target).instructions_per_tick
    for a, b in zip(normal.instructions, wraps.instructions):
        # SysTick's wrap interrupt runs a few dozen instructions per period
        assert abs(a - b) <= 0.03 * a + 2 * quantum, (normal.instructions, wraps.instructions)


@pytest.mark.parametrize("target", ["cortex-m55", "stm32f746", "rp2040", "esp32-c3"])
def test_float_model_links_libm(target, src, tmp_path):
    x = np.array([[0.1, -0.7, 1e-3, 3.25, -2.5e4, 0.0, -0.0, 7.0]], dtype=np.float32)
    elf = build_firmware(target, [src / "flt.c"], [src], None, FLT_MODEL, x, tmp_path, werror=True)
    out = run_firmware(target, elf).outputs[0]
    assert out.dtype == np.float32
    assert np.array_equal(out[2:], x[0, 2:] * np.float32(2) + np.float32(0.5))
    np.testing.assert_allclose(out[:2], [np.exp(x[0, 0]), np.tanh(x[0, 1])], rtol=2e-6)


def test_host_target(src, samples, tmp_path):
    result = run_firmware("host", build_fake(src, "host", tmp_path, samples, mode="dump"))
    assert np.array_equal(result.output_array[1], expected_layers(samples[1].ravel())[1])
    assert result.instructions is None and result.layer_instructions == [[], [], []]
    assert np.array_equal(result.dump(2, 0, np.int8), expected_layers(samples[2].ravel())[0])


# ---- errors -----------------------------------------------------------------

def test_model_error_code(src, samples, tmp_path):
    x = samples.copy()
    x[1, 0, 0] = -128
    elf = build_fake(src, "nrf52840", tmp_path, x)
    with pytest.raises(TinydeployError, match="returned 3 for sample 1"):
        run_firmware("nrf52840", elf)


@pytest.mark.parametrize("target", ["nrf52840", "rp2040", "cortex-m55", "esp32-c3"])
def test_fault_is_reported(target, src, samples, tmp_path):
    x = samples[:1].copy()
    x[0, 0, 0] = -127
    elf = build_fake(src, target, tmp_path, x, defines={"FAKE_TRAPS": None})
    with pytest.raises(TinydeployError, match="crashed: FAULT .*pc="):
        run_firmware(target, elf)


@pytest.mark.parametrize("target", ["nrf52840", "cortex-m55", "esp32-c3"])
def test_stack_overflow_is_reported(target, src, samples, tmp_path):
    x = samples[:1].copy()
    x[0, 0, 0] = -125
    elf = build_fake(src, target, tmp_path, x, defines={"FAKE_TRAPS": None})
    with pytest.raises(TinydeployError, match="overflowed its stack"):
        run_firmware(target, elf)


def test_stack_check_without_fault():
    log = ("BEGIN mode=run counter=none samples=1 in=int8 out=int8 out_size=1 layers=0\n"
           "OUT 0 05\nSTACK 65536 65536\nDONE\n")
    with pytest.raises(TinydeployError, match="overflowed its stack .all 65536 bytes"):
        parse_log(log)
    assert parse_log(log.replace("STACK 65536", "STACK 300")).stack_bytes == 300


def test_timeout(src, samples, tmp_path):
    x = samples[:1].copy()
    x[0, 0, 0] = -126
    elf = build_fake(src, "esp32-c3", tmp_path, x, defines={"FAKE_TRAPS": None})
    with pytest.raises(TinydeployError, match="did not finish within 1.5 s"):
        run_firmware("esp32-c3", elf, timeout=1.5)


def test_missing_tools(tmp_path, src, samples, monkeypatch):
    path = write_target(tmp_path, cc="no-such-gcc")
    with pytest.raises(TinydeployError, match="'no-such-gcc' .* not on PATH"):
        build_fake(src, load_target(path), tmp_path / "a", samples)
    path = write_target(tmp_path, emulator={"qemu": "qemu-system-nosuch", "machine": "mps2-an386"})
    elf = build_fake(src, load_target(path), tmp_path / "b", samples)
    with pytest.raises(TinydeployError, match="'qemu-system-nosuch' is not on PATH"):
        run_firmware(load_target(path), elf)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(TinydeployError, match="install the Debian package qemu-system-misc"):
        run_firmware("esp32-c3", elf)
    with pytest.raises(TinydeployError, match="gcc-riscv64-unknown-elf"):
        build_fake(src, "esp32-c3", tmp_path / "c", samples)


def test_bad_inputs(src, tmp_path):
    with pytest.raises(TinydeployError, match="47 elements each, model fake expects 48"):
        build_fake(src, "host", tmp_path, np.zeros((2, 47), np.int8))
    with pytest.raises(TinydeployError, match="exceed the range of int8"):
        build_fake(src, "host", tmp_path, np.full((1, 48), 300))


def test_compile_error_is_reported(tmp_path, samples):
    (tmp_path / "fake.h").write_text(FAKE_H)
    (tmp_path / "fake.c").write_text(FAKE_C.replace("return 0;\n}", "return 0\n}"))
    with pytest.raises(TinydeployError, match="compiling fake.c failed"):
        build_fake(tmp_path, "host", tmp_path / "out", samples)


def test_parse_log_rejects_incomplete_output():
    with pytest.raises(TinydeployError, match="stopped early"):
        parse_log("BEGIN mode=run counter=none samples=1 in=int8 out=int8 out_size=1 layers=0\n")


# ---- renode -----------------------------------------------------------------

@pytest.mark.parametrize("target", ["nrf52840", "cortex-m55", "esp32-c3"])
def test_renode_script(target, tmp_path):
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    script = renode_script(target, elf)
    assert (tmp_path / "firmware.resc").read_text() == script
    assert f"sysbus LoadELF @{elf}" in script and "MappedMemory" in script
    if shutil.which("renode") is None:
        with pytest.raises(TinydeployError, match="renode is not installed"):
            run_renode(target, elf)
