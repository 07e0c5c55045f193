"""Sweeps: compile, fit-check, benchmark (and validate) many (model, target, options)
configurations, on a local process pool or on a Ray cluster (docs/sweep.md).

Above the API: each configuration runs `api.compile`, `api.bench_compiled` and, when the
spec has inputs, `api.validate_compiled` in a worker process. The API does not import
this module; the CLI's `sweep` command does.

Results go to OUT/results.jsonl (one row per configuration, appended as each one
finishes, so an interrupted sweep keeps what it finished), OUT/results.csv and
OUT/pareto.html. A configuration is keyed by the SHA-256 of its model file (and of the
spec's calib/inputs files), its target and its options as canonical JSON; a configuration
whose key already has a row in results.jsonl is skipped.
"""
from __future__ import annotations

import concurrent.futures
import csv
import glob
import hashlib
import html
import io
import json
import multiprocessing
import os
import socket
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Optional, Union

from .errors import TinydeployError
from .shards import connect_ray, ray_module

ROWS = "results.jsonl"
CSV = "results.csv"
HTML = "pareto.html"
SPEC_KEYS = ("models", "targets", "options", "inputs", "calib")
# the CLI's long option names (with underscores) a spec's option dicts may use
OPTION_KEYS = ("quantize", "calib", "calib_method", "no_inplace", "planner", "kernel_scratch",
               "optimize", "name", "input_shape")
# every row has these columns (the CSV's header), then "options" as JSON
COLUMNS = ("model", "target", "options", "status", "error", "flash_bytes", "code_bytes", "weights_bytes",
           "peak_ram_bytes", "total_ram_bytes", "arena_bytes", "stack", "macs", "instructions_per_inference",
           "est_cycles", "est_ms", "cycle_model", "accuracy", "reference_accuracy", "top1_agreement",
           "sqnr_db", "matches_golden", "validate_samples", "executor", "node", "seconds", "key",
           "model_sha256")
MAX_WORKER_RESTARTS = 2  # a local worker process that dies: its configurations are retried this often


class SweepRows(list):
    """The rows of a sweep (one dict per configuration of the spec, in spec order), with
    `ran` and `skipped` (configurations done by an earlier run) counts and the output paths."""

    ran: int = 0
    skipped: int = 0
    paths: dict = {}

    @property
    def errors(self) -> int:
        return sum(1 for r in self if r.get("status") != "ok")


# --------------------------------------------------------------------------
# The spec
# --------------------------------------------------------------------------
def load_spec(spec) -> tuple[dict, Path]:
    """A spec dict (relative paths from the working directory) or a .json/.yaml/.yml file
    (relative paths from its directory) -> (spec dict, base directory)."""
    if isinstance(spec, dict):
        return spec, Path.cwd()
    path = Path(spec)
    if not path.is_file():
        raise TinydeployError(f"sweep spec not found: {path}")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise TinydeployError(f"{path} is YAML, and PyYAML is not installed: write the spec as JSON "
                                  "or `pip install pyyaml`") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise TinydeployError(f"{path} is not valid YAML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TinydeployError(f"{path} is not valid JSON ({exc}); a spec is JSON, or YAML "
                                  "in a .yaml/.yml file") from None
    if not isinstance(data, dict):
        raise TinydeployError(f"{path}: a sweep spec is a mapping with 'models', 'targets' and "
                              "'options' (docs/sweep.md)")
    return data, path.resolve().parent


def _str_list(spec: dict, key: str, where: str) -> list:
    value = spec.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise TinydeployError(f"{where}: '{key}' must be a non-empty list of strings")
    return value


def _resolve(base: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def configurations(spec, where: str = "the sweep spec") -> tuple[list, dict]:
    """The spec's configurations in order, [(model, target, options)], and its files
    {"calib": path or None, "inputs": path or None, "models": {model: path}}; the model as
    the spec names it (relative to the spec); TinydeployError for a bad spec."""
    spec, base = load_spec(spec)
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise TinydeployError(f"{where}: unknown key(s) {', '.join(unknown)}; a spec has "
                              f"{', '.join(SPEC_KEYS)}")
    models = {}  # as the spec names it (a match of a relative glob: relative to base) -> its path
    for pattern in _str_list(spec, "models", where):
        found = sorted(glob.glob(os.path.expanduser(pattern), root_dir=base, recursive=True))
        found = [f for f in found if _resolve(base, f).is_file()]
        if not found:
            raise TinydeployError(f"{where}: no model file matches '{pattern}'")
        models.update((f, str(_resolve(base, f))) for f in found if f not in models)
    targets = _str_list(spec, "targets", where)
    grid = spec.get("options", [{}])
    if isinstance(grid, dict):
        grid = [grid]
    if not isinstance(grid, list) or not grid or not all(isinstance(o, dict) for o in grid):
        raise TinydeployError(f"{where}: 'options' must be a list of option dicts ({{}} = the defaults)")
    for options in grid:
        bad = sorted(set(options) - set(OPTION_KEYS))
        if bad:
            raise TinydeployError(f"{where}: unknown option(s) {', '.join(bad)} in {json.dumps(options)}; "
                                  f"options are the CLI's long names with underscores: {', '.join(OPTION_KEYS)}")
    files = {}
    for key in ("calib", "inputs"):
        value = spec.get(key)
        if value is not None and not isinstance(value, str):
            raise TinydeployError(f"{where}: '{key}' must be the path of an .npz file")
        files[key] = _resolve(base, value) if value else None
        if files[key] is not None and not files[key].is_file():
            raise TinydeployError(f"{where}: {key} file not found: {files[key]}")
    # a calib path inside an options dict is relative to the spec too
    grid = [dict(o, calib=str(_resolve(base, o["calib"]))) if isinstance(o.get("calib"), str) else o
            for o in grid]
    files["models"] = models
    return [(m, t, o) for m in models for t in targets for o in grid], files


def compile_kwargs(options: dict, calib) -> dict:
    """A spec's options dict (CLI long names) -> keyword arguments of api.compile."""
    from .frontend import parse_input_shapes
    kw = {}
    o = dict(options)
    if "quantize" in o:
        kw["quantize"] = o.pop("quantize")
    if "calib_method" in o:
        kw["calib_method"] = o.pop("calib_method")
        if kw["calib_method"] not in ("minmax", "percentile", "mse"):
            raise TinydeployError(f"calib_method must be minmax, percentile or mse, not {kw['calib_method']!r}")
    if "no_inplace" in o:
        flag = o.pop("no_inplace")
        if not isinstance(flag, bool):
            raise TinydeployError(f"no_inplace must be true or false, not {flag!r}")
        kw["inplace"] = not flag
    if "planner" in o:
        kw["planner_method"] = o.pop("planner")
        if kw["planner_method"] not in ("auto", "greedy", "exact"):
            raise TinydeployError(f"planner must be auto, greedy or exact, not {kw['planner_method']!r}")
    if "kernel_scratch" in o:
        kw["kernel_scratch"] = scratch_policy(o.pop("kernel_scratch"))
    if "optimize" in o:
        kw["optimize"] = o.pop("optimize")
        if kw["optimize"] not in ("size", "balanced", "speed"):
            raise TinydeployError(f"optimize must be size, balanced or speed, not {kw['optimize']!r}")
    if "name" in o:
        kw["name"] = str(o.pop("name"))
    if "input_shape" in o:
        shapes = o.pop("input_shape")
        kw["input_shapes"] = parse_input_shapes([shapes] if isinstance(shapes, str) else shapes)
    calib = o.pop("calib", calib)
    if calib is not None:
        kw["calib"] = str(calib)
    if o:
        raise TinydeployError(f"unknown option(s): {', '.join(sorted(o))}")
    return kw


def scratch_policy(value):
    """--kernel-scratch as a spec gives it: "fit", "any", or a fraction >= 0 (number or text)."""
    if value in ("fit", "any"):
        return value
    try:
        fraction = float(value)
        if isinstance(value, bool) or not (0 <= fraction < float("inf")):
            raise ValueError
        return fraction
    except (TypeError, ValueError):
        raise TinydeployError(f"kernel_scratch must be a non-negative fraction, 'fit' or 'any', "
                              f"not {value!r}") from None


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def config_key(model_sha: str, target: str, options: dict, data_shas: dict) -> str:
    """What identifies a configuration across runs: model hash, target, options (canonical
    JSON) and the hashes of the spec's calib/inputs files."""
    ident = json.dumps(dict(model=model_sha, target=target, options=options,
                            data={k: v for k, v in sorted(data_shas.items()) if v}),
                       sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(ident.encode()).hexdigest()[:24]


# --------------------------------------------------------------------------
# One configuration (in a worker process)
# --------------------------------------------------------------------------
def _materialize(tmp: Path, role: str, name: Optional[str], payload) -> Optional[str]:
    """A file a worker needs: a path it can read (local pool), or bytes shipped through
    Ray's object store, written to a temporary file with the original name."""
    if payload is None:
        return None
    if isinstance(payload, (bytes, bytearray, memoryview)):
        d = tmp / role
        d.mkdir(parents=True, exist_ok=True)
        path = d / name
        path.write_bytes(bytes(payload))
        return str(path)
    return str(payload)


def run_config(job: dict, model=None, calib=None, inputs=None) -> dict:
    """Compile, fit-check, bench (and validate, with inputs) one configuration; never raises:
    a failure is a row with status "error" and the message. model/calib/inputs: a path or the
    file's bytes (job holds the file names)."""
    from . import api  # the worker's imports: the API and what it pulls in
    start = time.monotonic()
    row = dict(job["row"])
    try:
        with tempfile.TemporaryDirectory(prefix="tinydeploy-sweep-") as tmp:
            tmp = Path(tmp)
            model_path = _materialize(tmp, "model", job["model_name"], model)
            calib_path = _materialize(tmp, "calib", job.get("calib_name"), calib)
            inputs_path = _materialize(tmp, "inputs", job.get("inputs_name"), inputs)
            options = dict(job["row"]["options"])
            if job.get("option_calib_name") is not None:  # an options dict's own calib file
                options["calib"] = _materialize(tmp, "option-calib", job["option_calib_name"],
                                                job.get("option_calib"))
            kw = compile_kwargs(options, calib_path)
            result = api.compile(model_path, target=row["target"], out_dir=tmp / "lib", **kw)
            r = result.report
            bench = api.bench_compiled(result)
            row.update(flash_bytes=bench.flash_bytes, code_bytes=bench.flash_bytes - r["weights_bytes"],
                       weights_bytes=r["weights_bytes"], peak_ram_bytes=bench.peak_ram_bytes,
                       total_ram_bytes=r.get("total_ram_bytes"), arena_bytes=bench.arena_bytes,
                       stack=r.get("max_stack_bytes"), macs=bench.macs,
                       instructions_per_inference=bench.instructions_per_inference,
                       est_cycles=bench.est_cycles, est_ms=bench.est_ms,
                       cycle_model=(bench.cycle_model or {}).get("cost_model"))
            if inputs_path is not None:
                v = api.validate_compiled(result, model_path, inputs_path, work=tmp / "validate",
                                          input_shapes=kw.get("input_shapes"))
                first = v.outputs[0]
                row.update(accuracy=first.accuracy, reference_accuracy=first.reference_accuracy,
                           top1_agreement=first.top1_agreement, sqnr_db=first.sqnr_db,
                           matches_golden=v.matches_golden, validate_samples=v.samples)
            row["status"] = "ok"
    except TinydeployError as exc:
        row.update(status="error", error=str(exc))
    except Exception as exc:  # a bug, or something the API did not foresee: still one row
        row.update(status="error", error=f"internal error: {type(exc).__name__}: {exc}")
    row["seconds"] = round(time.monotonic() - start, 2)
    return row


def _local_task(job: dict, model, calib, inputs, option_calib) -> dict:
    job = dict(job, option_calib=option_calib)
    row = run_config(job, model, calib, inputs)
    row.update(executor="local", node=socket.gethostname())
    return row


def _ray_task(job: dict, model: bytes, calib, inputs, option_calib) -> dict:
    import ray
    job = dict(job, option_calib=option_calib)
    row = run_config(job, model, calib, inputs)
    ctx = ray.get_runtime_context()
    row.update(executor="ray", node=f"{ctx.get_node_id()}@{ray.util.get_node_ip_address()}")
    return row


# --------------------------------------------------------------------------
# Executors: both yield rows as configurations finish
# --------------------------------------------------------------------------
def _run_local(jobs: list, files: dict, workers: int):
    pending = list(jobs)
    restarts = {}
    while pending:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that has threads
        with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, min(workers, len(pending))),
                                                    mp_context=ctx) as pool:
            futures = {pool.submit(_local_task, job, job["model_path"], files.get("calib"),
                                   files.get("inputs"), job.get("option_calib_path")): job
                       for job in pending}
            pending = []
            for future in concurrent.futures.as_completed(futures):
                job = futures[future]
                try:
                    yield future.result()
                except concurrent.futures.process.BrokenProcessPool:
                    # a worker died (killed, out of memory): retry its configurations in a new pool
                    restarts[job["key"]] = restarts.get(job["key"], 0) + 1
                    if restarts[job["key"]] > MAX_WORKER_RESTARTS:
                        yield dict(job["row"], status="error", executor="local", node=socket.gethostname(),
                                   error="the worker process died (killed or out of memory) "
                                         f"{restarts[job['key']]} times running this configuration")
                    else:
                        pending.append(job)


def _run_ray(jobs: list, files: dict, address: Optional[str]):
    ray = connect_ray(address)
    task = ray.remote(num_cpus=1, max_retries=MAX_WORKER_RESTARTS)(_ray_task)
    refs = {}  # each file goes into the object store once: workers need no shared file system

    def put(path):
        if path is None:
            return None
        if path not in refs:
            refs[path] = ray.put(Path(path).read_bytes())
        return refs[path]

    calib, inputs = put(files.get("calib")), put(files.get("inputs"))
    pending = {task.remote(job, put(job["model_path"]), calib, inputs, put(job.get("option_calib_path"))): job
               for job in jobs}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            job = pending.pop(ref)
            try:
                yield ray.get(ref)
            except Exception as exc:  # the task's worker died more often than Ray retries it
                yield dict(job["row"], status="error", executor="ray", node=None,
                           error=f"the Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")


# --------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------
def read_rows(path: Path) -> dict:
    """{key: row} of a results.jsonl (the last row of each key; a torn last line is ignored)."""
    rows = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line an interrupted run did not finish
            if isinstance(row, dict) and "key" in row:
                rows[row["key"]] = row
    return rows


def sweep(spec: Union[dict, str, os.PathLike], out_dir: Union[str, os.PathLike], executor: str = "local",
          jobs: Optional[int] = None, ray_address: Optional[str] = None, progress=None,
          retry_errors: bool = False) -> SweepRows:
    """Run every (model, target, options) configuration of `spec` (a dict, or a .json/.yaml
    file) that out_dir/results.jsonl has no row for; write results.jsonl, results.csv and
    pareto.html to out_dir and return the rows of the spec's configurations.

    executor: "local" (a process pool of `jobs` workers, default os.cpu_count()) or "ray"
    (one task per configuration with num_cpus=1 on the cluster at ray_address: "auto", an
    address, or None/"local" for a local one; an already initialized Ray is used as it is).
    retry_errors: also re-run configurations whose earlier row is an error."""
    from .progress import get as get_progress
    if executor not in ("local", "ray"):
        raise TinydeployError(f"executor must be 'local' or 'ray', not {executor!r}")
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise TinydeployError(f"jobs must be a positive integer, not {jobs!r}")
    if executor == "ray":
        ray_module()  # a clear error before any work when Ray is missing
    configs, files = configurations(spec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / ROWS
    done = read_rows(rows_path)
    data_shas = {k: _sha256(files[k]) if files[k] else None for k in ("calib", "inputs")}
    model_shas = {}
    order, todo = [], []
    for model, target, options in configs:
        path = files["models"][model]
        sha = model_shas.get(path) or model_shas.setdefault(path, _sha256(path))
        opt_calib = options.get("calib") if isinstance(options.get("calib"), str) else None
        shas = dict(data_shas, option_calib=_sha256(opt_calib) if opt_calib and Path(opt_calib).is_file() else None)
        key = config_key(sha, target, options, shas)
        order.append(key)
        previous = done.get(key)
        if previous is not None and (previous.get("status") == "ok" or not retry_errors):
            continue
        if key in (j["key"] for j in todo):
            continue  # the same configuration listed twice
        row = {c: None for c in COLUMNS}
        row.update(model=model, target=target, options=options, key=key, model_sha256=sha)
        job = dict(key=key, row=row, model_path=path, model_name=Path(path).name,
                   calib_name=files["calib"].name if files["calib"] else None,
                   inputs_name=files["inputs"].name if files["inputs"] else None)
        if opt_calib:
            job.update(option_calib_path=opt_calib if Path(opt_calib).is_file() else None,
                       option_calib_name=Path(opt_calib).name)
        todo.append(job)
    skipped = len(set(order)) - len(todo)
    bar = get_progress(progress)
    if todo:
        runner = (_run_ray(todo, files, ray_address) if executor == "ray"
                  else _run_local(todo, files, jobs or os.cpu_count() or 1))
        with open(rows_path, "a") as f:
            for row in bar(runner, f"sweep ({skipped} done before)" if skipped else "sweep", total=len(todo)):
                done[row["key"]] = row
                f.write(json.dumps(row, sort_keys=False) + "\n")
                f.flush()  # an interrupted sweep keeps every finished row
    rows = SweepRows()
    seen = set()
    for key in order:
        if key not in seen and key in done:
            seen.add(key)
            rows.append(done[key])
    rows.ran, rows.skipped = len(todo), skipped
    rows.paths = dict(jsonl=str(rows_path), csv=str(out / CSV), html=str(out / HTML))
    write_csv(rows, out / CSV)
    write_html(rows, out / HTML)
    return rows


# --------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------
def write_csv(rows: list, path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for row in rows:
        row = dict(row, error=" ".join(str(row["error"]).split()) if row.get("error") else None)  # one line
        w.writerow(["" if row.get(c) is None else
                    json.dumps(row[c], sort_keys=True) if isinstance(row.get(c), (dict, list)) else row[c]
                    for c in COLUMNS])
    Path(path).write_text(buf.getvalue())


def latency_of(row: dict, use_ms: bool):
    return row.get("est_ms") if use_ms else row.get("instructions_per_inference")


def ram_of(row: dict):
    return row.get("total_ram_bytes") or row.get("peak_ram_bytes")


def pareto_front(rows: list) -> list:
    """The ok rows no other row beats: no more flash, RAM (total: arena + I/O + stack) and
    latency (estimated ms, or instructions where a row has no estimate), less of one."""
    ok = [r for r in rows if r.get("status") == "ok"]
    use_ms = bool(ok) and all(r.get("est_ms") is not None for r in ok)
    points = [(r["flash_bytes"], ram_of(r), latency_of(r, use_ms)) for r in ok]
    front = []
    for i, p in enumerate(points):
        dominated = any(all(a <= b for a, b in zip(q, p)) and q != p for q in points)
        if not dominated:
            front.append(ok[i])
    return front


def _label(row: dict) -> str:
    return f"{Path(row['model']).name} {json.dumps(row['options'], sort_keys=True)}"


def _svg(rows: list, front: list, use_ms: bool) -> str:
    """Latency (x) against RAM (y), the point's area by flash; the Pareto front filled."""
    w, h, m = 640, 360, 56
    ok = [r for r in rows if r.get("status") == "ok"]
    xs = [latency_of(r, use_ms) for r in ok]
    ys = [ram_of(r) for r in ok]
    fs = [r["flash_bytes"] for r in ok]
    x0, x1 = 0, max(xs) * 1.08 or 1
    y0, y1 = 0, max(ys) * 1.08 or 1
    fmax = max(fs) or 1

    def sx(v):
        return m + (v - x0) / (x1 - x0) * (w - 1.5 * m)

    def sy(v):
        return h - m + (y0 - v) / (y1 - y0) * (h - 1.5 * m)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             'role="img" font-family="sans-serif" font-size="11">',
             f'<line x1="{m}" y1="{h - m}" x2="{w - m / 2}" y2="{h - m}" stroke="#444"/>',
             f'<line x1="{m}" y1="{h - m}" x2="{m}" y2="{m / 2}" stroke="#444"/>']
    for i in range(5):
        xv, yv = x0 + (x1 - x0) * i / 4, y0 + (y1 - y0) * i / 4
        parts.append(f'<text x="{sx(xv):.1f}" y="{h - m + 16}" text-anchor="middle">'
                     f'{xv:.3g}</text>' if use_ms else
                     f'<text x="{sx(xv):.1f}" y="{h - m + 16}" text-anchor="middle">{xv / 1e6:.3g}M</text>')
        parts.append(f'<text x="{m - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv / 1024:.0f}K</text>')
    parts.append(f'<text x="{(w + m) / 2:.0f}" y="{h - 12}" text-anchor="middle">'
                 f'{"estimated ms per inference" if use_ms else "instructions per inference"}</text>')
    parts.append(f'<text x="14" y="{h / 2:.0f}" text-anchor="middle" transform="rotate(-90 14 {h / 2:.0f})">'
                 'RAM bytes (arena + I/O + stack)</text>')
    front_ids = {id(r) for r in front}
    for r, x, y, f in sorted(zip(ok, xs, ys, fs), key=lambda t: id(t[0]) in front_ids):
        on = id(r) in front_ids
        radius = 3 + 9 * (f / fmax) ** 0.5
        tip = html.escape(f"{_label(r)}\nflash {f:,} B, RAM {y:,} B, "
                          + (f"{x:.3f} ms" if use_ms else f"{x:,} instructions")
                          + (" (Pareto)" if on else ""))
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{radius:.1f}" '
                     f'fill="{"#1f77b4" if on else "none"}" fill-opacity="0.7" '
                     f'stroke="{"#1f77b4" if on else "#999"}"><title>{tip}</title></circle>')
    parts.append("</svg>")
    return "\n".join(parts)


def write_html(rows: list, path: Path) -> None:
    """One self-contained page: per target, the flash-RAM-latency Pareto front (an inline SVG
    and a table) and every configuration; then the failed configurations."""
    esc = html.escape
    body = [f"<h1>tinydeploy sweep: {len(rows)} configurations</h1>",
            "<p>Per target: latency against RAM, each circle's area by flash; filled circles are the "
            "Pareto front (no other configuration needs less of one of flash, RAM and latency "
            "without needing more of another).</p>"]
    targets = list(dict.fromkeys(r["target"] for r in rows))
    for target in targets:
        trows = [r for r in rows if r["target"] == target]
        ok = [r for r in trows if r.get("status") == "ok"]
        body.append(f"<h2>{esc(target)}</h2>")
        if not ok:
            body.append("<p>No configuration ran on this target.</p>")
            continue
        use_ms = all(r.get("est_ms") is not None for r in ok)
        front = pareto_front(trows)
        body.append(_svg(trows, front, use_ms))
        body.append("<table><tr><th>Pareto</th><th>model</th><th>options</th><th>flash B</th>"
                    "<th>RAM B</th><th>stack B</th><th>instructions</th><th>est. ms</th>"
                    "<th>accuracy</th></tr>")
        front_ids = {id(r) for r in front}
        for r in sorted(ok, key=lambda r: (id(r) not in front_ids, latency_of(r, use_ms))):
            acc = f"{r['accuracy']:.2%}" if r.get("accuracy") is not None else ""
            ms = f"{r['est_ms']:.3f}" if r.get("est_ms") is not None else ""
            body.append(f"<tr><td>{'&#9679;' if id(r) in front_ids else ''}</td><td>{esc(Path(r['model']).name)}"
                        f"</td><td><code>{esc(json.dumps(r['options'], sort_keys=True))}</code></td>"
                        f"<td>{r['flash_bytes']:,}</td><td>{ram_of(r):,}</td><td>{r.get('stack') or ''}</td>"
                        f"<td>{r['instructions_per_inference']:,}</td><td>{ms}</td><td>{acc}</td></tr>")
        body.append("</table>")
    failed = [r for r in rows if r.get("status") != "ok"]
    if failed:
        body.append(f"<h2>Failed configurations ({len(failed)})</h2><table><tr><th>model</th><th>target</th>"
                    "<th>options</th><th>error</th></tr>")
        for r in failed:
            body.append(f"<tr><td>{esc(Path(r['model']).name)}</td><td>{esc(r['target'])}</td>"
                        f"<td><code>{esc(json.dumps(r['options'], sort_keys=True))}</code></td>"
                        f"<td><pre>{esc(str(r.get('error')))}</pre></td></tr>")
        body.append("</table>")
    page = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>tinydeploy sweep</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
            "margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:right}"
            "td:nth-child(2),td:nth-child(3){text-align:left}pre{margin:0;white-space:pre-wrap;"
            "text-align:left}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    Path(path).write_text(page)


class _CallableModule(types.ModuleType):
    """`tinydeploy.sweep(spec, out_dir)` calls the function even once `tinydeploy.sweep`
    names this module (importing a submodule sets the package attribute of its name)."""

    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
