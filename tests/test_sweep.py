"""tinydeploy sweep (issue 18): many (model, target, options) configurations on a local
process pool or on Ray; error rows, resume, JSON Lines / CSV / HTML outputs."""
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import EXAMPLES, cli, model_path

import tinydeploy
from tinydeploy.sweep import pareto_front
from tinydeploy.errors import TinydeployError

TARGETS = ["nucleo-l4r5zi", "rv32-zve32x"]
GOOD_OPTIONS = [{}, {"kernel_scratch": "fit"}]
MEASURED = ("flash_bytes", "peak_ram_bytes", "total_ram_bytes", "stack", "instructions_per_inference",
            "est_ms", "est_cycles", "weights_bytes", "arena_bytes")


def ad_spec():
    """2 targets x 2 good option sets on the ad model (4 ok rows), plus a target that does not
    exist and an invalid option value (5 error rows)."""
    return {"models": [str(model_path("ad", "int8_qdq.onnx"))], "targets": TARGETS + ["no-such-board"],
            "options": GOOD_OPTIONS + [{"planner": "clever"}]}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The ad sweep through the CLI on a local pool of 2 workers, run twice."""
    tmp = tmp_path_factory.mktemp("sweep")
    spec = tmp / "spec.json"
    spec.write_text(json.dumps(ad_spec()))
    out = tmp / "results"
    first = cli("sweep", spec, "-o", out, "--jobs", "2", "--json")
    rows_text = (out / "results.jsonl").read_text()
    second = cli("sweep", spec, "-o", out, "--jobs", "2", "--json")
    return dict(out=out, spec=spec, first=first, second=second, rows_text=rows_text)


def test_rows_have_the_fields_and_failures_are_rows(local_run):
    proc = local_run["first"]
    assert proc.returncode == 1, proc.stderr  # some configurations failed, the sweep did not stop
    assert "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    rows = result["rows"]
    assert result["ran"] == 9 and result["skipped"] == 0 and result["errors"] == 5
    assert len(rows) == 9
    for row in rows:
        for field in ("model", "target", "options", "status", "error", "flash_bytes", "peak_ram_bytes",
                      "total_ram_bytes", "stack", "instructions_per_inference", "est_ms", "executor",
                      "node", "key"):
            assert field in row, field
        assert row["executor"] == "local" and row["node"]
        assert row["model"] == str(model_path("ad", "int8_qdq.onnx"))  # as the spec names it
    ok = [r for r in rows if r["status"] == "ok"]
    assert sorted((r["target"], json.dumps(r["options"])) for r in ok) == sorted(
        (t, json.dumps(o)) for t in TARGETS for o in GOOD_OPTIONS)
    for r in ok:
        assert r["error"] is None and r["flash_bytes"] > 0 and r["instructions_per_inference"] > 0
        assert r["est_ms"] > 0 and r["total_ram_bytes"] >= r["peak_ram_bytes"] > 0
    errors = {(r["target"], json.dumps(r["options"])): r["error"] for r in rows if r["status"] == "error"}
    assert len(errors) == 5
    assert "unknown target 'no-such-board'" in errors[("no-such-board", "{}")]
    assert "planner must be auto, greedy or exact" in errors[("nucleo-l4r5zi", '{"planner": "clever"}')]
    # the options as the spec gave them, in its order
    assert [r["options"] for r in rows[:3]] == GOOD_OPTIONS + [{"planner": "clever"}]


def test_figures_equal_the_bench_api(local_run):
    rows = json.loads(local_run["first"].stdout)["rows"]
    ad = model_path("ad", "int8_qdq.onnx")
    for r in (r for r in rows if r["status"] == "ok"):
        kw = {"kernel_scratch": r["options"]["kernel_scratch"]} if r["options"] else {}
        b = tinydeploy.bench(ad, target=r["target"], **kw)
        assert (r["flash_bytes"], r["peak_ram_bytes"], r["instructions_per_inference"], r["est_ms"]) == \
            (b.flash_bytes, b.peak_ram_bytes, b.instructions_per_inference, b.est_ms), r


def test_resume_skips_finished_configurations(local_run):
    proc = local_run["second"]
    result = json.loads(proc.stdout)
    assert result["ran"] == 0 and result["skipped"] == 9, result
    assert (local_run["out"] / "results.jsonl").read_text() == local_run["rows_text"]  # nothing re-ran
    assert result["rows"] == json.loads(local_run["first"].stdout)["rows"]
    # the human summary says so too
    text = cli("sweep", local_run["spec"], "-o", local_run["out"], "-q")
    assert "0 ran, 9 skipped" in text.stdout and "unknown target 'no-such-board'" in text.stdout


def test_resume_after_an_interruption(tmp_path, local_run):
    """A rows file with only some rows (and a torn last line) runs only the rest."""
    lines = local_run["rows_text"].splitlines()
    errors = [line for line in lines if json.loads(line)["status"] == "error"]
    out = tmp_path / "r"
    out.mkdir()
    (out / "results.jsonl").write_text("\n".join(errors) + '\n{"model": "torn')
    spec = ad_spec()
    spec["targets"] = ["no-such-board", TARGETS[0]]
    spec["options"] = [{"planner": "clever"}, {}]
    rows = tinydeploy.sweep(spec, out, jobs=1)
    assert rows.ran == 1 and rows.skipped == 3 and len(rows) == 4
    assert [r["status"] for r in rows] == ["error", "error", "error", "ok"]


def test_csv_and_html(local_run):
    out = local_run["out"]
    rows = json.loads(local_run["first"].stdout)["rows"]
    lines = (out / "results.csv").read_text().splitlines()
    assert len(lines) == len(rows) + 1
    table = list(csv.DictReader(lines))
    assert [r["status"] for r in table] == [r["status"] for r in rows]
    assert [r["flash_bytes"] for r in table] == ["" if r["flash_bytes"] is None else str(r["flash_bytes"])
                                                 for r in rows]
    page = (out / "pareto.html").read_text()
    assert page.count("<svg") == len(TARGETS)  # one plot per target that has results
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained
    assert "no-such-board" in page and "Failed configurations (5)" in page


def test_pareto_front():
    def row(flash, ram, ms):
        return dict(status="ok", flash_bytes=flash, total_ram_bytes=ram, peak_ram_bytes=ram, est_ms=ms)
    a, b, c, d = row(10, 10, 5.0), row(20, 5, 5.0), row(20, 10, 5.0), row(5, 50, 1.0)
    assert pareto_front([a, b, c, d, dict(status="error")]) == [a, b, d]


def test_validation_gives_accuracy(tmp_path):
    """With inputs that have labels each row has the deployed model's accuracy; a YAML spec
    with paths relative to it."""
    pytest.importorskip("yaml")
    digits = EXAMPLES / "digits"
    with np.load(digits / "test.npz") as d:
        np.savez(tmp_path / "few.npz", input=d["input"][:20], label=d["label"][:20])
    (tmp_path / "spec.yaml").write_text(
        f"models: ['{digits / 'digits_*.onnx'}']\ntargets: [nucleo-l4r5zi]\noptions: [{{}}]\n"
        f"calib: {digits / 'calib.npz'}\ninputs: few.npz\n")
    rows = tinydeploy.sweep(tmp_path / "spec.yaml", tmp_path / "out", jobs=1)
    assert len(rows) == 1 and rows[0]["status"] == "ok", rows[0]["error"]
    r = rows[0]
    assert r["validate_samples"] == 20 and r["matches_golden"] is True
    assert 0.8 <= r["accuracy"] <= 1.0 and r["top1_agreement"] > 0.8 and r["sqnr_db"] > 20


def test_spec_errors(tmp_path, monkeypatch):
    ad = str(model_path("ad", "int8_qdq.onnx"))
    for spec, message in (
            ({"models": [ad], "targets": ["rp2040"], "option": [{}]}, "unknown key(s) option"),
            ({"models": [str(tmp_path / "*.onnx")], "targets": ["rp2040"]}, "no model file matches"),
            ({"models": [ad], "targets": []}, "'targets' must be a non-empty list"),
            ({"models": [ad], "targets": ["rp2040"], "options": [{"kernel-scratch": "fit"}]},
             "unknown option(s) kernel-scratch"),
            ({"models": [ad], "targets": ["rp2040"], "inputs": "missing.npz"}, "inputs file not found")):
        with pytest.raises(TinydeployError, match=None) as info:
            tinydeploy.sweep(spec, tmp_path / "out")
        assert message in str(info.value)
    (tmp_path / "s.yaml").write_text("models: []\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # PyYAML not installed
    with pytest.raises(TinydeployError, match="write the spec as JSON or `pip install pyyaml`"):
        tinydeploy.sweep(tmp_path / "s.yaml", tmp_path / "out")
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    with pytest.raises(TinydeployError, match=r"pip install 'tinydeploy\[ray\]'"):
        tinydeploy.sweep({"models": [ad], "targets": ["rp2040"]}, tmp_path / "out", executor="ray")


def test_optimize_option():
    """--optimize in a spec's option dicts: passed to compile, a bad value refused."""
    from tinydeploy.sweep import compile_kwargs
    assert compile_kwargs({"optimize": "size"}, None)["optimize"] == "size"
    with pytest.raises(TinydeployError) as info:
        compile_kwargs({"optimize": "fast"}, None)
    assert str(info.value) == "optimize must be size, balanced or speed, not 'fast'"


def test_cli_errors(tmp_path):
    proc = cli("sweep", tmp_path / "nope.json", "-o", tmp_path / "out")
    assert proc.returncode == 2 and "sweep spec not found" in proc.stderr
    (tmp_path / "bad.json").write_text("{models")
    proc = cli("sweep", tmp_path / "bad.json", "-o", tmp_path / "out")
    assert proc.returncode == 2 and "is not valid JSON" in proc.stderr
    help_text = cli("sweep", "--help").stdout
    assert "Example" in help_text and "--ray" in help_text and "--jobs" in help_text


def _kill_first_ray_task(killed: list, stop: threading.Event) -> None:
    """Kill (SIGKILL) the first Ray worker seen running a sweep task: Ray titles a worker
    process 'ray::_ray_task' while it runs one."""
    while not stop.is_set() and not killed:
        ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
        for line in ps.splitlines():
            pid, _, args = line.strip().partition(" ")
            if args.startswith("ray::_ray_task"):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.05)


def test_ray_rows_equal_the_local_rows_despite_a_killed_worker(tmp_path):
    """2 models x 2 emulated targets x 2 option sets (8 configurations) plus an invalid option
    set, on a local pool and on an in-process Ray cluster while one Ray worker is killed:
    Ray retries the killed task, every row equals the local pool's, a re-run skips them all."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'tinydeploy[ray]' to run "
                                            "the sweep through a local Ray cluster)")
    spec = {"models": [str(model_path(m, "int8_qdq.onnx")) for m in ("ad", "kws")], "targets": TARGETS,
            "options": GOOD_OPTIONS + [{"planner": "clever"}]}
    local = tinydeploy.sweep(spec, tmp_path / "local", jobs=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_first_ray_task, args=(killed, stop))
    killer.start()
    try:
        rows = tinydeploy.sweep(spec, tmp_path / "ray", executor="ray")
        again = tinydeploy.sweep(spec, tmp_path / "ray", executor="ray")
    finally:
        stop.set()
        killer.join()
        ray.shutdown()
    assert killed, "no Ray task was seen running"
    assert rows.ran == len(local) == 12 and again.ran == 0 and again.skipped == 12
    assert sum(r["status"] == "ok" for r in rows) == 8
    by_key = {r["key"]: r for r in local}
    for r in rows:
        l = by_key[r["key"]]
        assert (r["status"], r["error"]) == (l["status"], l["error"]), r["target"]
        assert [r[f] for f in MEASURED] == [l[f] for f in MEASURED], (r["model"], r["target"])
        if r["status"] == "ok":
            assert r["executor"] == "ray" and r["node"]