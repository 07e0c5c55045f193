"""The cycle model (issue 17 item 8): the QEMU plugin's counts against the emulator's
own instruction counter, the per-layer split, instruction classification and cost
tables on hand-written code, and the estimates in bench / run / summaries."""
import json
import shutil
import subprocess
from collections import Counter

import pytest

from conftest import cli, model_path
from tinydeploy import api, cycle_model as cm, data, on_target, summary
from tinydeploy.targets import load_target


def _run_with_plugin(model, target, mode, tmp_path):
    result = api.compile(model_path(model, "int8_qdq.onnx"), target=target, out_dir=tmp_path / "lib")
    counting = cm.Counting(result.target, result.name)
    _, res = on_target.build_and_run(result, data.default_inputs(result.io, 1), tmp_path, mode=mode,
                                     counting=counting)
    assert counting.note is None, counting.note
    return result, res, counting


@pytest.mark.parametrize("target", ["rv32-zve32x", "nucleo-l4r5zi"])
def test_plugin_count_equals_the_emulators_instruction_count(target, tmp_path):
    """Run mode (no layer hooks): the harness times run() and subtracts the timing of an
    empty function; the plugin's run minus its empty run is the same quantity. minstret
    (RISC-V) is exact; the Arm timer is read to within a few instructions."""
    _, res, counting = _run_with_plugin("kws", target, "run", tmp_path)
    hist = counting.histogram()
    plugin = sum(hist.total(0).values()) - sum(hist.empty.values())
    harness = res.instructions[0]
    if target.startswith("rv32"):
        assert plugin == harness
    else:
        assert abs(plugin - harness) <= 8, (plugin, harness)


def test_layers_sum_to_the_total_and_match_the_harness(tmp_path):
    result, res, counting = _run_with_plugin("kws", "rv32-zve32x", "profile", tmp_path)
    est = counting.estimate(0)
    assert len(est.layers) == len(result.report["layers"])
    assert sum(l["instructions"] for l in est.layers) + est.tail["instructions"] == est.instructions
    assert sum(l["cycles"] for l in est.layers) + est.tail["cycles"] == est.cycles
    # per layer, the plugin also counts the hook call's argument set-up that the harness's
    # calibration removes: a handful of instructions per layer
    for mine, theirs in zip(est.layers, res.layer_instructions[0]):
        assert 0 <= mine["instructions"] - theirs <= 8, (mine, theirs)
    assert 0 <= est.instructions - res.instructions[0] <= 8 * len(est.layers)


ARM_LOOP = """
    .syntax unified
    .thumb
    .text
    .globl dot
    .thumb_func
dot:
1:  ldr r3, [r0], #4
    ldr r4, [r1], #4
    smlad r2, r3, r4, r2
    subs r5, r5, #1
    bne 1b
    push {r4, r5, r6, lr}
    pop {r4, r5, r6, pc}
"""

RV_LOOP = """
    .text
    .globl dot
dot:
    vsetvli t0, a2, e16, m2, ta, ma
1:  vle8.v v2, (a0)
    vsext.vf2 v4, v2
    vwmacc.vx v8, a3, v4
    addi a2, a2, -1
    lw t1, 0(a1)
    bnez a2, 1b
    ret
"""


def _assemble(tmp_path, cc, flags, text):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    src = tmp_path / "snippet.S"
    src.write_text(text)
    obj = tmp_path / "snippet.o"
    subprocess.run([cc, *flags, "-c", str(src), "-o", str(obj)], check=True)
    return obj


def _loop_histogram(insns, iterations):
    """Executions of a loop that runs `iterations` times, then falls through once."""
    addrs = sorted(insns)
    loop_end = next(a for a in addrs if insns[a].mnemonic.split(".")[0] in ("bne", "bnez"))
    return Counter({a: iterations if a <= loop_end else 1 for a in addrs
                    if not insns[a].mnemonic.startswith("vsetvli")} |
                   {a: 1 for a in addrs if insns[a].mnemonic.startswith("vsetvli")})


def test_classification_and_costs_of_a_cortex_m4_loop(tmp_path):
    tgt = load_target("nucleo-l4r5zi")
    obj = _assemble(tmp_path, "arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb"], ARM_LOOP)
    insns = cm.disassemble(obj, cm.objdump_for(tgt))
    n = 10
    counts = _loop_histogram(insns, n)
    table = cm.table_for(tgt)
    costed = cm._static_costs(insns, counts.keys(), table)
    cycles, classes = cm.cycles_of(counts, costed, insns, table)
    assert classes == Counter(load=2 * n, mac=n, alu=n, branch=n, store_multi=1, load_multi=1)
    # per iteration: LDR 2 + pipelined LDR 1 + SMLAD 1 + SUBS 1 + BNE 1 (+P=2 when taken);
    # PUSH {4 regs} 1+4; POP {.., pc} 1+4+P
    assert cycles == n * 6 + (n - 1) * 2 + 5 + 7
    # the Cortex-M0+ and M4 tables never cost less than a cycle per instruction
    m0 = cm.TABLES["cortex-m0plus"]
    assert cm.cycles_of(counts, cm._static_costs(insns, counts.keys(), m0), insns, m0)[0] >= sum(counts.values())
    assert cycles >= sum(counts.values())


def test_rvv_costs_follow_lmul_and_the_datapath(tmp_path):
    tgt = load_target("rv32-zve32x")
    obj = _assemble(tmp_path, "riscv64-unknown-elf-gcc",
                    ["-march=rv32imc_zve32x", "-mabi=ilp32"], RV_LOOP)
    insns = cm.disassemble(obj, cm.objdump_for(tgt))
    table = cm.table_for(tgt)
    counts = _loop_histogram(insns, 4)
    costed = cm._static_costs(insns, counts.keys(), table)
    by_name = {insns[a].mnemonic.split(".")[0]: costed[a] for a in costed}
    beats = table.vector_vlen // table.vector_dlen  # cycles of one vector register (LMUL 1)
    assert by_name["vle8"].cls == "vector_load" and by_name["vle8"].cost == 1 * beats  # EMUL 1
    assert by_name["vsext"].cls == "vector" and by_name["vsext"].cost == 2 * beats  # LMUL 2
    assert by_name["vwmacc"].cost == 4 * beats  # widening: 2 * LMUL
    _, classes = cm.cycles_of(counts, costed, insns, table)
    assert classes == Counter(vector_load=4, vector=8, alu=4, load=4, branch=5, other=1)


def test_bench_json_has_cycles_and_ms_per_layer_and_in_total():
    out = cli("bench", model_path("ad", "int8_qdq.onnx"), "-t", "nucleo-l4r5zi", "--json", "-q")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    tgt = load_target("nucleo-l4r5zi")
    assert r["cycle_model"]["cost_model"] == "cortex-m4" and r["cycle_model"]["version"]
    assert r["clock_hz"] == tgt.clock_hz
    assert r["est_cycles"] >= r["instructions_per_inference"]
    assert r["est_ms"] == pytest.approx(r["est_cycles"] / tgt.clock_hz * 1e3, abs=1e-4)
    for layer in r["layers"]:
        assert layer["est_cycles"] >= layer["instructions"] > 0
        assert layer["est_ms"] == pytest.approx(layer["est_cycles"] / tgt.clock_hz * 1e3, abs=1e-4)
    assert sum(l["est_cycles"] for l in r["layers"]) <= r["est_cycles"]
    fig = summary.figures(api.compile(model_path("ad", "int8_qdq.onnx"), target="nucleo-l4r5zi").report,
                          tgt, r)
    assert fig["latency"]["est_ms"] == r["est_ms"]
    assert "cortex-m4 cycle model" in summary.format_table(fig)


def test_without_a_plugin_bench_falls_back_to_instructions(monkeypatch):
    def no_compiler():
        raise cm.TinydeployError("no host C compiler (gcc, cc or clang) to build the QEMU plugin")
    monkeypatch.setattr(cm, "build_plugin", no_compiler)
    r = api.bench(model_path("ad", "int8_qdq.onnx"), "rv32-zve32x")
    assert r.instructions_per_inference > 0
    assert r.est_cycles is None and "no host C compiler" in r.cycle_model_note
    fig = summary.figures(api.compile(model_path("ad", "int8_qdq.onnx"), target="rv32-zve32x").report,
                          load_target("rv32-zve32x"), r)
    assert "1 per cycle assumed" in summary.format_table(fig)


def test_every_emulated_target_has_a_cost_table():
    from tinydeploy import targets
    for name in targets.list_targets() if hasattr(targets, "list_targets") else []:
        tgt = load_target(name)
        if tgt.emulator is not None:
            assert cm.table_for(tgt) is not None, name


def test_a_qemu_that_cannot_load_the_plugin_falls_back(monkeypatch, tmp_path):
    bad = tmp_path / "not-a-plugin.so"
    bad.write_bytes(b"not an ELF")
    monkeypatch.setattr(cm, "build_plugin", lambda: bad)
    r = api.bench(model_path("ad", "int8_qdq.onnx"), "rv32-zve32x")
    assert r.instructions_per_inference > 0 and r.est_cycles is None
    assert "could not load" in r.cycle_model_note
