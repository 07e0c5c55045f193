"""Firmware integration: the generated library in other projects.

- a host CMake project that add_subdirectory()s the generated directory,
- a plain Makefile project (the recipe of docs/integration.md),
  both giving the golden model's answer,
- examples/stm32f746 cross-built with arm-none-eabi-gcc; its ELF fits the board.
"""
import shutil
import subprocess

import numpy as np
import pytest

from conftest import EXAMPLES, REPO, model_path

import tinydeploy
from tinydeploy import emulator, golden

EXAMPLE = REPO / "examples" / "stm32f746"
FLASH = (0x08000000, 1024 * 1024)
SRAM = (0x20000000, 320 * 1024)

HOST_MAIN = r"""
#include <stdio.h>
#include "net.h"

static int8_t input[NET_INPUT_SIZE];
static int8_t output[NET_OUTPUT_SIZE];

int main(void)
{
    for (int i = 0; i < NET_INPUT_SIZE; i++)
        input[i] = (int8_t)((i * 37 + 11) % 256 - 128);
    int status = net_run(input, output);
    if (status != NET_OK)
        return 10 + status;
    for (int i = 0; i < NET_OUTPUT_SIZE; i++)
        printf("%d\n", output[i]);
    return 0;
}
"""

APP_CMAKE = """
cmake_minimum_required(VERSION 3.13)
project(app C)
add_subdirectory(model)
add_executable(app main.c)
target_link_libraries(app PRIVATE net)
"""

# The Makefile recipe of docs/integration.md, for the host compiler.
APP_MAKEFILE = """
NET_DIR := model
CFLAGS  += -O2 -std=c99 -I$(NET_DIR)
SRCS    := main.c $(wildcard $(NET_DIR)/*.c)
LDLIBS  += -lm

app: $(SRCS:.c=.o)
\t$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
"""


def _need(*tools):
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (quickstart.sh installs it)")


def _run(cmd, cwd=None):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def host_model(tmp_path_factory):
    """The AD model compiled for the host, and the golden output for the test pattern."""
    root = tmp_path_factory.mktemp("host-model")
    result = tinydeploy.compile(model_path("ad", "int8_qdq.onnx"), target="host", out_dir=root / "model")
    n = result.io["input"]["size"]
    x = ((np.arange(n) * 37 + 11) % 256 - 128).astype(np.int8)
    want = golden.run(result.graph, x.reshape((1,) + tuple(result.io["input"]["shape"][1:])))[0]
    return result.out_dir, want


def _app(tmp_path, model_dir, build_file, content):
    app = tmp_path / "app"
    app.mkdir()
    shutil.copytree(model_dir, app / "model")
    (app / "main.c").write_text(HOST_MAIN)
    (app / build_file).write_text(content)
    return app


def _outputs(exe):
    return np.array([int(v) for v in _run([exe]).stdout.split()], np.int8)


def test_add_subdirectory_host_cmake_project(tmp_path, host_model):
    _need("cmake", "gcc")
    model_dir, want = host_model
    app = _app(tmp_path, model_dir, "CMakeLists.txt", APP_CMAKE)
    _run(["cmake", "-S", app, "-B", app / "build", "-DCMAKE_BUILD_TYPE=Release"])
    _run(["cmake", "--build", app / "build"])
    np.testing.assert_array_equal(_outputs(app / "build" / "app"), want)


def test_plain_makefile_project(tmp_path, host_model):
    _need("make", "gcc")
    model_dir, want = host_model
    app = _app(tmp_path, model_dir, "Makefile", APP_MAKEFILE)
    _run(["make", "-s", "-C", app])
    np.testing.assert_array_equal(_outputs(app / "app"), want)


def _section_addresses(elf):
    out = _run(["arm-none-eabi-readelf", "-S", "-W", elf]).stdout
    sections = {}
    for line in out.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 5 and parts[0].startswith("[") and parts[1].startswith("."):
            sections[parts[1]] = (int(parts[3], 16), int(parts[5], 16))
    return sections


@pytest.mark.parametrize("model,options", [
    (("vww", "int8_qdq.onnx"), {}),
    (("digits",), {"quantize": "float32"}),
], ids=["vww-int8", "digits-float32"])
def test_stm32f746_example_cross_builds_and_fits(tmp_path, model, options):
    _need("cmake", "arm-none-eabi-gcc", "arm-none-eabi-readelf")
    path = EXAMPLES / "digits" / "digits_cnn.onnx" if model == ("digits",) else model_path(*model)
    result = tinydeploy.compile(path, target="stm32f746", out_dir=tmp_path / "model", **options)
    build = tmp_path / "build"
    _run(["cmake", "-S", EXAMPLE, "-B", build, f"-DTD_MODEL_DIR={result.out_dir}"])
    _run(["cmake", "--build", build])
    elf = build / "firmware.elf"
    sizes = emulator.elf_sizes(elf)
    assert sizes["flash"] <= FLASH[1]
    assert sizes["ram"] + sizes["stack"] <= SRAM[1]
    # the model is in there: weights in flash, the arena in RAM
    assert sizes["rodata"] + sizes["text"] >= result.report["weights_bytes"]
    assert sizes["bss"] >= result.report["arena_bytes"]
    # placed in the board's memories: flash at 0x08000000, RAM at 0x20000000
    for name, (addr, size) in _section_addresses(elf).items():
        if name in (".isr_vector", ".text", ".ARM.exidx"):
            assert FLASH[0] <= addr and addr + size <= FLASH[0] + FLASH[1], name
        elif name in (".data", ".bss", ".stack"):
            assert SRAM[0] <= addr and addr + size <= SRAM[0] + SRAM[1], name
    assert _section_addresses(elf)[".isr_vector"][0] == FLASH[0]
    # the vector table: initial stack pointer at the top of SRAM, a Thumb reset handler in flash
    words = np.frombuffer((build / "firmware.bin").read_bytes()[:8], "<u4")
    assert words[0] == SRAM[0] + SRAM[1]
    assert words[1] & 1 and FLASH[0] <= words[1] < FLASH[0] + FLASH[1]
    # arm-none-eabi-size agrees
    size_out = _run(["arm-none-eabi-size", elf]).stdout.split("\n")[1].split()
    text, data, bss = map(int, size_out[:3])
    assert text + data <= FLASH[1] and data + bss <= SRAM[1]
