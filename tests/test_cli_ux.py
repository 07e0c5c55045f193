"""The command line as users meet it: the compile summary, SQNR warnings, progress bars
(--quiet, off when stderr is not a terminal), --json on every command that reports
figures, the Python API at the top level, and byte-identical output on every compile."""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import EXAMPLES, cli, model_path

import tinydeploy
from tinydeploy.progress import Progress

DIGITS = EXAMPLES / "digits"


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    """200 of the digits CNN's calibration samples (calibrating on all 1347 takes longer)."""
    path = tmp_path_factory.mktemp("calib") / "calib200.npz"
    with np.load(DIGITS / "calib.npz") as d:
        np.savez(path, input=d["input"][:200])
    return path


def cli_env(*args, **env):
    full = dict(os.environ, **{k: str(v) for k, v in env.items()})
    return subprocess.run([sys.executable, "-m", "tinydeploy", *map(str, args)],
                          capture_output=True, text=True, env=full)


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def test_compile_prints_a_summary_table(tmp_path):
    proc = ok(cli("compile", model_path("vww", "int8_qdq.onnx"), "-t", "stm32f746", "-o", tmp_path / "o"))
    out = proc.stdout
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert "stm32f746" in lines["used"]
    assert lines["layers"].split()[1] == str(len(report["layers"]))
    assert f"{report['macs']:,}" in lines["MACs"]
    assert f"{report['flash_bytes']:,} B" in lines["flash"] and "1 MB" in lines["flash"]
    assert f"{100 * report['flash_bytes'] / 1048576:.1f}%" in lines["flash"]
    # RAM is the arena plus the worst-case stack (issue 19 item 4), each named
    assert f"{report['total_ram_bytes']:,} B" in lines["RAM"] and "320 KB" in lines["RAM"]
    assert f"{100 * report['total_ram_bytes'] / 327680:.1f}%" in lines["RAM"]
    assert f"arena {report['arena_bytes']:,} B" in lines["RAM"]
    assert f"+ stack {report['max_stack_bytes']:,} B" in lines["RAM"]
    assert "not measured" in lines["latency"]  # no instruction count: no latency figure
    assert proc.stderr == ""  # no bars (stderr is not a terminal), no warnings (QDQ: no SQNR)


@pytest.fixture
def compile_calls(monkeypatch):
    """The models api.compile is called with (the CLI and the API's commands all compile
    through it); for the CLI in this process (click's runner)."""
    from tinydeploy import api
    calls, real = [], api.compile

    def counting(model, *args, **kwargs):
        calls.append(model)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(api, "compile", counting)
    return calls


def cli_in_process(*args):
    from click.testing import CliRunner
    from tinydeploy.cli import main
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return result


def test_compile_bench_report_json(tmp_path, compile_calls):
    """--bench measures instructions on the emulator: latency at the target's clock, and the
    HTML report (--report) gets per-layer instructions. compile --bench and report --bench
    compile the model once (the bench runs the library just compiled)."""
    ad = model_path("ad", "int8_qdq.onnx")
    r = json.loads(cli_in_process("compile", ad, "-t", "stm32f746", "-o", tmp_path / "o",
                                  "--bench", "--report", "--json").stdout)
    assert compile_calls == [str(ad)]
    bench, summary = r["bench"], r["summary"]
    assert bench["instructions_per_inference"] > 0
    lat = summary["latency"]
    assert lat["instructions"] == bench["instructions_per_inference"] and lat["clock_hz"] == 216_000_000
    assert lat["ms"] == pytest.approx(bench["instructions_per_inference"] / 216e3, rel=1e-3)
    assert summary["flash"]["measured"] and summary["flash"]["used_bytes"] == bench["flash_bytes"]
    assert summary["ram"]["capacity_bytes"] == 327680 and summary["flash"]["capacity_bytes"] == 1048576
    html = (tmp_path / "o" / "report.html").read_text()
    assert html.count('class="cost-instructions"') == len(r["layers"])
    assert "<th>instr.</th>" in html
    assert f"{bench['layers'][0]['instructions']:,}" in html

    page = json.loads(cli_in_process("report", ad, "-t", "stm32f746", "-o", tmp_path / "r.html",
                                     "--bench", "--json").stdout)
    assert compile_calls == [str(ad)] * 2
    assert page["bench"] == bench  # the same build, the same exact counts
    assert (tmp_path / "r.html").read_text().count('class="cost-instructions"') == len(r["layers"])


def test_calibration_progress_and_low_sqnr_warnings(tmp_path, calib):
    args = ["compile", DIGITS / "digits_cnn.onnx", "-t", "stm32f746", "--calib", calib,
            "--min-sqnr", "100"]
    forced = ok(cli_env(*args, "-o", tmp_path / "a", TINYDEPLOY_PROGRESS=1))
    assert "calibrating [" in forced.stderr and "200/200 100%" in forced.stderr
    # issue 17 item 10: every step of a compile shows, from the first (was silent until calibration)
    for step in ("reading digits_cnn.onnx done", "planning memory for stm32f746 done", "generating C done"):
        assert step in forced.stderr
    n_layers = len(json.loads((tmp_path / "a" / "report.json").read_text())["layers"])
    warnings = [l for l in forced.stderr.split("\n") if l.startswith("warning: ")]
    assert len(warnings) == n_layers + 1  # every layer is below 100 dB, plus the advice
    assert "quantization SQNR" in warnings[0] and "below 100 dB" in warnings[0]
    assert warnings[-1].startswith("warning: low SQNR loses accuracy: try --calib-method percentile or mse "
                                   "(this build used minmax)")
    used = ok(cli_env(*args, "--calib-method", "percentile", "-o", tmp_path / "p", "--quiet"))
    advice = [l for l in used.stderr.split("\n") if l.startswith("warning: low SQNR")]
    assert advice[0].startswith("warning: low SQNR loses accuracy: try --calib-method mse "
                                "(this build used percentile)")

    quiet = ok(cli_env(*args, "-o", tmp_path / "b", "--quiet", "--json", TINYDEPLOY_PROGRESS=1))
    assert "calibrating" not in quiet.stderr  # --quiet wins over the environment
    r = json.loads(quiet.stdout)
    assert len(r["warnings"]) == n_layers + 1
    assert all(l["sqnr_db"] < 100 for l in r["layers"])


def test_progress_bar_and_stage():
    buf = io.StringIO()
    p = Progress(enabled=True, stream=buf)
    assert list(p(range(5), "work")) == [0, 1, 2, 3, 4]
    with p.stage("step"):
        pass
    text = buf.getvalue()
    assert "work [" in text and "5/5 100%" in text and text.count("\n") == 2
    assert "step done" in text
    silent = io.StringIO()
    assert list(Progress(enabled=False, stream=silent)(iter("ab"), "x")) == ["a", "b"]
    assert silent.getvalue() == ""


def test_json_on_every_command(tmp_path):
    ad = model_path("ad", "int8_qdq.onnx")
    x = np.random.default_rng(0).normal(size=(3, 640)).astype(np.float32)
    np.savez(tmp_path / "in.npz", input_1=x)
    run = json.loads(ok(cli("run", ad, "-t", "host", "--inputs", tmp_path / "in.npz",
                            "-o", tmp_path / "out.npz", "--json")).stdout)
    assert run["outputs"][next(iter(run["outputs"]))]["samples"] == 3 and run["accuracy"] is None
    assert (tmp_path / "out.npz").exists()
    verify = json.loads(ok(cli("verify", ad, "-t", "stm32f746", "--samples", "1", "--json")).stdout)
    assert verify["match"] is True and verify["instructions_per_inference"] > 0
    bench = json.loads(ok(cli("bench", ad, "-t", "stm32f746", "--json")).stdout)
    assert bench["instructions_per_inference"] > 0 and len(bench["layers"]) > 0
    inspect = json.loads(ok(cli("inspect", ad, "--json")).stdout)
    assert inspect["unsupported"] == []
    targets = json.loads(ok(cli("targets", "--json")).stdout)
    assert {"stm32f746", "host"} <= {t["name"] for t in targets}
    report = json.loads(ok(cli("report", ad, "-t", "rp2040", "-o", tmp_path / "r.html", "--json")).stdout)
    assert report["target"] == "rp2040" and report["ram"]["capacity_bytes"] == 264 * 1024
    compiled = json.loads(ok(cli("compile", ad, "-t", "host", "-o", tmp_path / "c", "--json")).stdout)
    assert compiled["summary"]["latency"] is None and compiled["out_dir"] == str(tmp_path / "c")


def test_python_api_at_top_level(tmp_path):
    ad = model_path("ad", "int8_qdq.onnx")
    v = tinydeploy.verify(ad, target="stm32f746", samples=1)
    assert v.match and v.instructions_per_inference > 0
    b = tinydeploy.bench(ad, target="stm32f746")
    assert b.instructions_per_inference > 0 and b.layers[0]["instructions"] > 0
    from tinydeploy import bench, verify  # noqa: F401 (the names import too)
    assert callable(verify) and callable(bench)


def test_help_has_examples():
    for cmd in ("report", "verify", "bench"):
        h = cli(cmd, "--help")
        assert h.returncode == 0 and "Example" in h.stdout and "--json" in h.stdout, cmd


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("model,args", [
    (("vww", "int8_qdq.onnx"), ["-t", "stm32f746"]),
    (("digits",), ["-t", "nucleo-l4r5zi", "--calib"]),
], ids=["vww-qdq", "digits-calibrated"])
def test_compile_is_byte_for_byte_reproducible(tmp_path, model, args, calib):
    path = DIGITS / "digits_cnn.onnx" if model == ("digits",) else model_path(*model)
    args = args + [calib] if args[-1] == "--calib" else args
    outs = []
    for i, seed in enumerate(("1", "2")):  # other hash seeds, other output paths
        out = tmp_path / f"run{i}" / "lib"
        ok(cli_env("compile", path, *args, "--report", "-o", out, PYTHONHASHSEED=seed))
        outs.append(_files(out))
    assert sorted(outs[0]) == sorted(outs[1])
    assert {"report.json", "report.html", "net.h", "net.c", "net_weights.c", "CMakeLists.txt"} <= set(outs[0])
    for name in outs[0]:
        assert outs[0][name] == outs[1][name], f"{name} differs between two compiles"


def test_bench_on_a_target_without_emulator_is_a_clear_error(tmp_path):
    for cmd in (["compile", "-o", tmp_path / "o"], ["report", "-o", tmp_path / "r.html"]):
        proc = cli(cmd[0], model_path("ad", "int8_qdq.onnx"), *cmd[1:], "-t", "host", "--bench")
        assert proc.returncode == 2 and proc.stderr.startswith("error: --bench runs the model on the "
                                                               "target's emulator, and target 'host' has none")
        assert not (tmp_path / "o").exists() and not (tmp_path / "r.html").exists()
