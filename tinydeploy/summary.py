"""The figures users look at after a build, and the summary `compile` prints.

`figures` gathers, from a report.json dict, the target and optionally a
bench result: layers, MACs, flash and RAM against the target's capacity,
and the latency estimate (only when an instruction count was measured).
`low_sqnr_layers` finds layers whose quantization lost accuracy. The text
summary and the HTML report (report_html.py) both draw from these.
"""
from __future__ import annotations

from typing import Optional

DEFAULT_MIN_SQNR_DB = 20.0


def short_name(name: str, width: int = 48) -> str:
    """A layer name cut to `width` characters (TF exports join many names with ';')."""
    if len(name) <= width:
        return name
    return name[:width - 3] + "..."


def _pct(used: Optional[int], capacity: Optional[int]) -> Optional[float]:
    if used is None or not capacity:
        return None
    return round(100.0 * used / capacity, 1)


def figures(report: dict, target, bench=None) -> dict:
    """Build figures: {layers, macs, flash: {...}, ram: {...}, latency: {...} or None}.

    `target` is a targets.Target; `bench` an optional on_target.BenchResult (or
    its to_json() dict). Flash is the compile-time estimate unless bench
    measured the library's object files. Latency is given only when the
    emulator counted the instructions: `ms` is instructions / clock (one
    instruction per cycle), `est_ms` the cycle model's estimate
    (docs/cycle-model.md) when it ran.
    """
    b = bench.to_json() if hasattr(bench, "to_json") else bench
    flash_measured = bool(b and b.get("flash_bytes"))
    flash_used = b["flash_bytes"] if flash_measured else report["flash_bytes"]
    ram_used = report.get("total_ram_bytes", report["peak_ram_bytes"])  # the stack included
    out = {
        "model": report["model"],
        "target": report["target"],
        "layers": len(report["layers"]),
        "macs": report["macs"],
        "flash": {"used_bytes": flash_used, "capacity_bytes": target.flash_bytes,
                  "percent": _pct(flash_used, target.flash_bytes),
                  "weights_bytes": report.get("weights_bytes"),
                  "measured": flash_measured},
        "ram": {"used_bytes": ram_used, "capacity_bytes": target.sram_bytes,
                "percent": _pct(ram_used, target.sram_bytes),
                "arena_bytes": report["arena_bytes"],
                "io_bytes": report.get("io_bytes", report["peak_ram_bytes"] - report["arena_bytes"]),
                "lower_bound_bytes": report.get("ram_lower_bound_bytes"),
                "stack_bytes": report.get("max_stack_bytes")},
        "latency": None,
    }
    instructions = b.get("instructions_per_inference") if b else None
    if instructions:
        seconds = instructions / target.clock_hz
        out["latency"] = {"instructions": int(instructions), "clock_hz": target.clock_hz,
                          "seconds": seconds, "ms": round(seconds * 1e3, 3),
                          "assumes": "one instruction per cycle"}
        if b.get("est_cycles"):
            out["latency"].update(est_cycles=b["est_cycles"], est_ms=b["est_ms"],
                                  cycle_model=(b.get("cycle_model") or {}).get("cost_model"))
        elif b.get("cycle_model_note"):
            out["latency"]["cycle_model_note"] = b["cycle_model_note"]
    return out


def fallback_note(report: dict) -> Optional[str]:
    """What the compile summary says when the build as chosen (--optimize balanced or size)
    went over the board's flash and took the compact kernels of --optimize size instead,
    and the portable kernel in some layers if even those were over (None: it did not)."""
    fb = report.get("optimize_fallback")
    if not fb:
        return None
    portable = fb.get("portable_layers") or []
    how = "the kernels of --optimize size"
    if portable:
        how += (f" and the portable kernel (less code) in {len(portable)} layer"
                f"{'s' if len(portable) > 1 else ''}")
    return (f"  note: --optimize {report['optimize']} needs {fb['chosen_flash_bytes']:,} B of flash, "
            f"more than {report['target']} has: built with {how} (about "
            f"{fb['extra_instructions']:,} more instructions per inference)")


def low_sqnr_layers(report: dict, min_db: float = DEFAULT_MIN_SQNR_DB) -> list:
    """[(index, layer)] of the layers whose measured SQNR is below min_db."""
    return [(i, l) for i, l in enumerate(report["layers"])
            if l.get("sqnr_db") is not None and l["sqnr_db"] < min_db]


def sqnr_warnings(report: dict, min_db: float = DEFAULT_MIN_SQNR_DB) -> list:
    """One message per low-SQNR layer (empty for QDQ and float models: no SQNR measured)."""
    msgs = [f"layer {i} '{short_name(l['name'], 60)}' ({l['op']}): quantization SQNR "
            f"{l['sqnr_db']:.1f} dB is below {min_db:g} dB" for i, l in low_sqnr_layers(report, min_db)]
    if msgs:
        used = report.get("calib_method")
        others = " or ".join(m for m in ("percentile", "mse") if m != used)
        tried = f" (this build used {used})" if used else ""
        msgs.append(f"low SQNR loses accuracy: try --calib-method {others}{tried}, more representative "
                    "calibration data, or a quantization-aware trained (QDQ) model")
    return msgs


def _bytes(n: Optional[int]) -> str:
    return "-" if n is None else f"{n:,} B"


def _human_bytes(n: Optional[int]) -> str:
    if n is None:
        return "-"
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n >> 10} KB"
    return f"{n:,} B"


def _hz(hz: int) -> str:
    if hz >= 1_000_000_000 and hz % 1_000_000 == 0:
        return f"{hz / 1e9:g} GHz"
    return f"{hz / 1e6:g} MHz"


def _latency(ms: float) -> str:
    if ms >= 1000:
        return f"~{ms / 1000:.2f} s"
    if ms >= 1:
        return f"~{ms:.1f} ms"
    return f"~{ms * 1000:.0f} us"


def format_table(fig: dict) -> str:
    """The summary table printed at the end of `compile`."""
    fl, ram, lat = fig["flash"], fig["ram"], fig["latency"]
    rows = [
        ("layers", f"{fig['layers']:,}", "", "", ""),
        ("MACs", f"{fig['macs']:,}", "", "", ""),
        ("flash", _bytes(fl["used_bytes"]), _human_bytes(fl["capacity_bytes"]),
         "-" if fl["percent"] is None else f"{fl['percent']:.1f}%",
         ("measured (library objects, weights included)" if fl["measured"] else
          f"weights {fl['weights_bytes']:,} B + code and parameters (compiled objects)")),
        ("RAM", _bytes(ram["used_bytes"]), _human_bytes(ram["capacity_bytes"]),
         "-" if ram["percent"] is None else f"{ram['percent']:.1f}%",
         (f"arena {ram['arena_bytes']:,} B" + (f" + input/output {ram['io_bytes']:,} B" if ram["io_bytes"]
                                               else " (input and output included)")
          + (f" + stack {ram['stack_bytes']:,} B (worst case of one inference, from the compiler)"
             if ram.get("stack_bytes") else ""))),
    ]
    if lat and lat.get("est_ms") is not None:
        rows.append(("latency", _latency(lat["est_ms"]), f"@ {_hz(lat['clock_hz'])}", "",
                     f"est. {lat['est_cycles']:,} cycles ({lat['cycle_model']} cycle model) for "
                     f"{lat['instructions']:,} instructions (emulator)"))
    elif lat:
        rows.append(("latency", _latency(lat["ms"]), f"@ {_hz(lat['clock_hz'])}", "",
                     f"{lat['instructions']:,} instructions (emulator), 1 per cycle assumed"))
    else:
        rows.append(("latency", "-", "", "", "not measured: add --bench to count instructions "
                                             "on the emulator"))
    head = ("", "used", fig["target"], "use", "")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    lines = []
    for r in [head] + rows:
        line = (f"  {r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  "
                f"{r[3]:>{widths[3]}}  {r[4]}")
        lines.append(line.rstrip())
    return "\n".join(lines)
