"""A self-contained HTML report of one build: figures, memory, per-layer costs.

One file with inline CSS and inline SVG, no scripts, fonts or anything else
from the network, so it can be attached to a ticket or opened offline:

- the summary figures and the target's memory budget (flash and SRAM bars),
- the memory timeline: every arena tensor (and kernel scratch buffer) as a
  box over the steps it is live (x) and the bytes it occupies (y), with the
  step of peak live memory and the arena size marked,
- per-layer cost bars (MACs, and instructions when `bench` ran),
- the per-layer table: op, kernel, shapes, MACs, weight bytes, arena offset,
  bytes, SQNR (calibrated models) and instructions (with bench).

The timeline comes from report.json's "timeline" when the planner writes one,
else from the plan's lifetimes and placements. The output depends only on
the build, so compiling twice writes identical files.
"""
from __future__ import annotations

import html
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import summary
from .version import __version__

# ids the tests (and users' scripts) look for in the page
TIMELINE_ID = "memory-timeline"
TABLE_ID = "layer-table"
COSTS_ID = "layer-costs"
BUDGET_ID = "memory-budget"


@dataclass
class Box:
    """One buffer in the arena: bytes [offset, offset + nbytes) during steps [first, last]."""

    name: str
    first: int
    last: int
    offset: int
    nbytes: int
    kind: str = "tensor"  # or "scratch"


# --------------------------------------------------------------------------
# The memory timeline
# --------------------------------------------------------------------------
_NAME = ("name", "tensor", "buffer", "id")
_FIRST = ("first", "first_step", "start", "start_step", "begin", "alloc", "from")
_LAST = ("last", "last_step", "end", "end_step", "stop", "free", "to")
_OFFSET = ("offset", "arena_offset", "address", "addr")
_SIZE = ("bytes", "nbytes", "size", "size_bytes")


def _pick(d: dict, keys):
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return None


def _from_report(tl, labels: Optional[dict] = None) -> Optional[list]:
    """Boxes from report.json's "timeline", in the formats a planner is likely to write:
    a list of per-tensor intervals, or a list of steps each listing its live buffers
    (optionally wrapped in an object). None when the format is not understood.
    labels, if given, receives {step: the step's "op" entry} from per-step timelines."""
    items = None
    if isinstance(tl, list):
        items = tl
    elif isinstance(tl, dict):
        for key in ("tensors", "buffers", "intervals", "boxes", "entries", "steps", "timeline"):
            if isinstance(tl.get(key), list):
                items = tl[key]
                break
    if items is None or not all(isinstance(i, dict) for i in items):
        return None
    live_keys = ("live", "tensors", "buffers")
    if items and all(any(isinstance(i.get(k), list) for k in live_keys) for i in items):
        spans: dict = {}
        for idx, entry in enumerate(items):
            step = int(entry.get("step", idx))
            if labels is not None and entry.get("op") is not None:
                labels[step] = str(entry["op"])
            live = next(entry[k] for k in live_keys if isinstance(entry.get(k), list))
            for t in live:
                if not isinstance(t, dict):
                    return None
                name, off, size = _pick(t, _NAME), _pick(t, _OFFSET), _pick(t, _SIZE)
                if off is None or size is None:
                    return None
                kind = str(t.get("kind", "scratch" if str(name).startswith("scratch") else "tensor"))
                key = (str(name), int(off), int(size), kind)
                span = spans.setdefault(key, [step, step])
                span[0], span[1] = min(span[0], step), max(span[1], step)
        return [Box(k[0], s[0], s[1], k[1], k[2], k[3]) for k, s in spans.items()]
    boxes = []
    for i in items:
        first, last = _pick(i, _FIRST), _pick(i, _LAST)
        off, size = _pick(i, _OFFSET), _pick(i, _SIZE)
        if None in (first, last, off, size):
            return None
        if i.get("region", i.get("buffer_kind", "arena")) not in ("arena",):
            continue
        boxes.append(Box(str(_pick(i, _NAME)), int(first), int(last), int(off), int(size),
                         str(i.get("kind", "tensor"))))
    return boxes


def _from_plan(result) -> list:
    """Boxes from the compile result's plan (lifetimes of alias roots, arena placements,
    kernel scratch buffers)."""
    g, plan = result.graph, result.plan
    ops = {op.name: op for op in g.ops}
    boxes = []
    for key, (first, last) in plan.lifetimes.items():
        if isinstance(key, tuple):  # ("scratch", op name)
            op = ops.get(key[-1])
            choice = plan.choice(op.name) if op is not None else None
            offset = plan.scratch.get(key[-1])
            if choice is None or offset is None or not getattr(choice, "scratch_bytes", 0):
                continue
            boxes.append(Box(f"scratch of {key[-1]}", first, last, offset, choice.scratch_bytes,
                             "scratch"))
            continue
        p = plan.placements.get(key)
        if p is None or p.region != "arena":
            continue
        boxes.append(Box(key, first, last, p.offset, p.nbytes))
    return boxes


@dataclass
class Timeline:
    """The arena's boxes over steps; labels[step] = (op kind, layer name) for tooltips."""

    boxes: list
    n_steps: int
    labels: list
    source: str  # "report.json" or "plan"


def timeline(result) -> Timeline:
    """The arena's boxes (sorted by first step, offset) from report.json's "timeline" when
    the planner wrote one (steps are then its steps, normally the layers), else from the plan
    (steps are the graph's operators)."""
    g, report = result.graph, result.report
    kinds = {op.name: op.kind for op in g.ops}
    kinds.update({l["name"]: l["op"] for l in report["layers"]})
    names: dict = {}
    boxes = _from_report(report["timeline"], names) if "timeline" in report else None
    if boxes is not None:
        source = "report.json"
        n = max([b.last + 1 for b in boxes] + [s + 1 for s in names] + [1])
        if not names and n <= len(report["layers"]):  # steps are the layers
            names = {i: l["name"] for i, l in enumerate(report["layers"])}
    else:
        boxes, source = _from_plan(result), "plan"
        n = max([len(g.ops)] + [b.last + 1 for b in boxes] + [1])
        names = {i: op.name for i, op in enumerate(g.ops)}
    labels = [(kinds.get(names.get(s, ""), ""), names.get(s, "")) for s in range(n)]
    for b in boxes:  # e.g. the model's input, live "before" the first step: draw from step 0
        b.first, b.last = max(0, b.first), max(0, b.last, b.first)
    boxes = sorted(boxes, key=lambda b: (b.first, b.offset, b.last, b.name))
    return Timeline(boxes, n, labels, source)


def live_bytes(boxes: list, n_steps: int) -> list:
    """Bytes in use at each step: the union of the live boxes' byte ranges (buffers that
    share bytes, as in-place operators do, count once)."""
    live = []
    for s in range(n_steps):
        spans = sorted((b.offset, b.offset + b.nbytes) for b in boxes if b.first <= s <= b.last)
        total, end = 0, None
        for lo, hi in spans:
            if end is None or lo > end:
                total += hi - lo
                end = hi
            elif hi > end:
                total += hi - end
                end = hi
        live.append(total)
    return live


# --------------------------------------------------------------------------
# Drawing helpers
# --------------------------------------------------------------------------
def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _color(name: str, kind: str = "tensor") -> str:
    if kind == "scratch":
        return "#b8b8b8"
    hue = zlib.crc32(name.encode("utf-8")) % 360
    return f"hsl({hue},55%,62%)"


def _kb(n: float) -> str:
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{int(n)} B"


def _svg_timeline(result, tl: Timeline) -> str:
    boxes, n_steps = tl.boxes, tl.n_steps
    arena = result.report["arena_bytes"]
    top_used = max((b.offset + b.nbytes for b in boxes), default=0)
    ymax = max(arena, top_used, 1)
    left, right, top, bottom, plot_h = 78, 24, 34, 46, 320
    width = 960
    plot_w = width - left - right
    height = top + plot_h + bottom
    sw = plot_w / n_steps

    def y(bytes_: float) -> float:
        return top + plot_h - bytes_ / ymax * plot_h

    live = live_bytes(boxes, n_steps)
    peak_step = max(range(n_steps), key=lambda s: (live[s], -s))
    peak = live[peak_step]
    parts = [f'<svg id="{TIMELINE_ID}" class="timeline" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" '
             f'aria-label="arena memory timeline: buffers over steps and offsets">']
    parts.append(f'<rect class="plot" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" '
                 f'fill="#fafafa" stroke="#ccc"/>')
    # the step of peak live memory
    px = left + peak_step * sw
    parts.append(f'<rect class="peak" x="{px:.1f}" y="{top}" width="{sw:.1f}" height="{plot_h}" '
                 f'fill="#e53935" fill-opacity="0.12" stroke="#e53935" stroke-dasharray="4 3">'
                 f'<title>peak: {peak:,} B in use at step {peak_step} ({_e(tl.labels[peak_step][0])} '
                 f'{_e(tl.labels[peak_step][1])})</title></rect>')
    # y axis
    for i in range(5):
        v = ymax * i / 4
        yy = y(v)
        parts.append(f'<line x1="{left - 4}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" '
                     f'stroke="#e4e4e4"/>')
        parts.append(f'<text x="{left - 7}" y="{yy + 4:.1f}" text-anchor="end" class="tick">'
                     f'{_kb(v)}</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2:.0f}" class="axis" '
                 f'transform="rotate(-90 14 {top + plot_h / 2:.0f})" text-anchor="middle">'
                 f'arena offset</text>')
    # x axis
    every = max(1, -(-n_steps // 24))
    for s in range(0, n_steps, every):
        xx = left + (s + 0.5) * sw
        parts.append(f'<text x="{xx:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                     f'class="tick">{s}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 8}" text-anchor="middle" '
                 f'class="axis">step ({"layer" if tl.source == "report.json" else "operator"} in execution '
                 f'order)</text>')
    # the buffers
    for b in boxes:
        x0 = left + b.first * sw + 0.5
        w = max(1.0, (b.last - b.first + 1) * sw - 1.0)
        y0 = y(b.offset + b.nbytes)
        h = max(1.0, b.nbytes / ymax * plot_h)
        producer = tl.labels[b.first][0] if 0 <= b.first < n_steps else ""
        parts.append(f'<rect class="{"scratch" if b.kind == "scratch" else "tensor"}" '
                     f'x="{x0:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h:.1f}" '
                     f'fill="{_color(b.name, b.kind)}" fill-opacity="0.85" stroke="#333" stroke-width="0.5">'
                     f'<title>{_e(b.name)}\n{b.nbytes:,} B at offset {b.offset:,}; steps '
                     f'{b.first}-{b.last} (made by {_e(producer)})</title></rect>')
    # the arena size and the peak
    ya = y(arena)
    parts.append(f'<line class="arena-line" x1="{left}" y1="{ya:.1f}" x2="{left + plot_w}" '
                 f'y2="{ya:.1f}" stroke="#1e88e5" stroke-width="1.5" stroke-dasharray="6 4"/>')
    parts.append(f'<text x="{left + plot_w - 4}" y="{ya - 5:.1f}" text-anchor="end" '
                 f'class="label arena">arena {arena:,} B</text>')
    anchor = "start" if peak_step < n_steps / 2 else "end"
    tx = px + sw + 4 if anchor == "start" else px - 4
    parts.append(f'<text class="label peak-label" x="{tx:.1f}" y="{top + 14}" '
                 f'text-anchor="{anchor}">peak {peak:,} B in use at step {peak_step}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _svg_costs(layers: list, instructions: Optional[list]) -> str:
    has_ins = bool(instructions) and any(instructions)
    row_h = 22 if has_ins else 16
    left, bar_w, text_w, top = 250, 520, 150, 24
    width = left + bar_w + text_w
    height = top + row_h * len(layers) + 8
    max_macs = max((l["macs"] for l in layers), default=0) or 1
    max_ins = max((i or 0 for i in (instructions or [])), default=0) or 1
    parts = [f'<svg id="{COSTS_ID}" class="costs" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="per-layer cost bars">']
    parts.append(f'<rect x="{left}" y="4" width="10" height="10" fill="#5c6bc0"/>'
                 f'<text x="{left + 14}" y="13" class="tick">MACs</text>')
    if has_ins:
        parts.append(f'<rect x="{left + 70}" y="4" width="10" height="10" fill="#ef6c00"/>'
                     f'<text x="{left + 84}" y="13" class="tick">instructions (emulator)</text>')
    for i, l in enumerate(layers):
        y0 = top + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y0 + 11}" text-anchor="end" class="tick">'
                     f'<title>{_e(l["name"])}</title>{i} {_e(l["op"])}</text>')
        w = l["macs"] / max_macs * bar_w
        h = 8 if has_ins else 11
        parts.append(f'<rect class="cost-macs" x="{left}" y="{y0 + 2}" width="{w:.1f}" height="{h}" '
                     f'fill="#5c6bc0"><title>{l["macs"]:,} MACs</title></rect>')
        label = f'{l["macs"]:,} MACs'
        if has_ins:
            ins = instructions[i] if i < len(instructions) and instructions[i] else 0
            wi = ins / max_ins * bar_w
            parts.append(f'<rect class="cost-instructions" x="{left}" y="{y0 + 11}" width="{wi:.1f}" '
                         f'height="8" fill="#ef6c00"><title>{ins:,} instructions</title></rect>')
            label = f"{ins:,} instr."
        parts.append(f'<text x="{left + bar_w + 6}" y="{y0 + 11}" class="tick">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _budget_bar(title: str, capacity: Optional[int], segments: list) -> str:
    """One horizontal bar: capacity as the full width, used bytes as coloured segments."""
    width, bar_w, left, h = 960, 640, 110, 26
    used = sum(n for _, n, _ in segments)
    scale = max(capacity or 0, used, 1)
    parts = [f'<svg class="budget" viewBox="0 0 {width} {h + 22}" width="{width}" height="{h + 22}">',
             f'<text x="0" y="{h / 2 + 5:.0f}" class="label">{_e(title)}</text>',
             f'<rect x="{left}" y="2" width="{bar_w}" height="{h}" fill="#eee" stroke="#999"/>']
    x = float(left)
    legend = []
    for name, n, color in segments:
        w = n / scale * bar_w
        parts.append(f'<rect x="{x:.1f}" y="2" width="{w:.1f}" height="{h}" fill="{color}">'
                     f'<title>{_e(name)}: {n:,} B</title></rect>')
        legend.append(f"{name} {n:,} B")
        x += w
    pct = f"{100.0 * used / capacity:.1f}% of {capacity:,} B" if capacity else f"{used:,} B"
    over = capacity is not None and used > capacity
    parts.append(f'<text x="{left + bar_w + 8}" y="{h / 2 + 5:.0f}" class="label'
                 f'{" over" if over else ""}">{_e(pct)}</text>')
    parts.append(f'<text x="{left}" y="{h + 18}" class="tick">{_e(" + ".join(legend))}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------
CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 24px auto; max-width: 1200px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 17px; margin-top: 30px; }
.sub { color: #666; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 130px; }
.card b { display: block; font-size: 19px; } .card span { color: #666; font-size: 12px; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg text.label { font-size: 13px; } svg text.axis { font-size: 12px; fill: #555; }
svg text.peak-label { fill: #c62828; font-weight: 600; } svg text.arena { fill: #1565c0; }
svg text.over { fill: #c62828; font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12.5px; width: 100%; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; position: sticky; top: 0; }
td.l, th.l { text-align: left; } td.name { max-width: 320px; overflow: hidden; text-overflow: ellipsis; }
td.low { color: #c62828; font-weight: 600; }
.warn { background: #fff3e0; border-left: 4px solid #ef6c00; padding: 6px 10px; margin: 6px 0; }
.note { color: #666; font-size: 12.5px; }
code { background: #f4f4f4; padding: 1px 4px; border-radius: 3px; }
"""


def _shape(s) -> str:
    return "x".join(str(d) for d in s) if s else "scalar"


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{_e(value)}</b><span>{_e(label)}</span></div>'


def render(result, bench=None, min_sqnr_db: float = summary.DEFAULT_MIN_SQNR_DB,
           command: Optional[str] = None) -> str:
    """The HTML page for a CompileResult (and optionally an on_target.BenchResult)."""
    report, tgt, g = result.report, result.target, result.graph
    fig = summary.figures(report, tgt, bench)
    layers = report["layers"]
    b = bench.to_json() if hasattr(bench, "to_json") else bench
    instructions = None
    if b and b.get("layers"):
        by_name = {bl["name"]: bl.get("instructions") for bl in b["layers"]}
        instructions = [by_name.get(l["name"]) for l in layers]
    ops = {op.name: op for op in g.ops}
    tl = timeline(result)

    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>tinydeploy report: {_e(report['model'])} on {_e(report['target'])}</title>",
           f"<style>{CSS}</style>", "</head>", "<body>"]
    out.append(f"<h1>{_e(report['model'])} on {_e(tgt.name)}</h1>")
    out.append(f'<p class="sub">{_e(tgt.description)}<br>generated C library '
               f'<code>{_e(result.name)}.h</code> by tinydeploy {_e(__version__)}</p>')

    lat = fig["latency"]
    cards = [_card(f"{fig['layers']}", "layers"), _card(f"{fig['macs']:,}", "MACs per inference"),
             _card(f"{fig['flash']['used_bytes']:,} B",
                   f"flash ({'measured' if fig['flash']['measured'] else 'estimate'})"
                   + (f", {fig['flash']['percent']:.1f}%" if fig['flash']['percent'] is not None else "")),
             _card(f"{fig['ram']['used_bytes']:,} B",
                   "peak RAM" + (f", {fig['ram']['percent']:.1f}%" if fig['ram']['percent'] is not None
                                 else "")),
             _card(f"{report['arena_bytes']:,} B", "arena")]
    if report.get("ram_lower_bound_bytes") is not None:
        cards.append(_card(f"{report['ram_lower_bound_bytes']:,} B", "RAM lower bound"))
    if lat:
        cards.append(_card(f"{lat['instructions']:,}", "instructions per inference"))
        cards.append(_card(f"{lat['ms']:.2f} ms",
                           f"latency at {tgt.clock_hz / 1e6:g} MHz (1 instr./cycle)"))
    out.append('<div class="cards">' + "".join(cards) + "</div>")
    for msg in summary.sqnr_warnings(report, min_sqnr_db):
        out.append(f'<div class="warn">{_e(msg)}</div>')

    # memory budget
    out.append(f'<h2>Memory budget of {_e(tgt.name)}</h2><div id="{BUDGET_ID}">')
    fl = fig["flash"]
    weights = min(fl["weights_bytes"] or 0, fl["used_bytes"])
    out.append(_budget_bar("flash", tgt.flash_bytes,
                           [("weights", weights, "#8e24aa"),
                            ("code and parameters" + ("" if fl["measured"] else " (estimate)"),
                             fl["used_bytes"] - weights, "#ba68c8")]))
    ram = fig["ram"]
    io = max(0, ram["used_bytes"] - ram["arena_bytes"])
    stack = ram.get("stack_bytes")
    out.append(_budget_bar("SRAM", tgt.sram_bytes,
                           [("arena", ram["arena_bytes"], "#1e88e5")] +
                           ([("input and output", io, "#64b5f6")] if io else []) +
                           ([("stack (worst case)", stack, "#90a4ae")] if stack else [])))
    out.append('<p class="note">RAM counts the arena and the model\'s input and output buffers'
               f"{' (inside the arena)' if not io else ''}"
               f"{', and the worst-case stack of one inference' if stack else ''}; the rest of your "
               "firmware's data and stack come on top.</p></div>")

    # timeline
    out.append("<h2>Memory timeline</h2>")
    out.append('<p class="note">Each box is a buffer in the arena: from the step that writes it '
               "to the last step that reads it (x), at the bytes it occupies (y). Grey boxes are "
               "kernel scratch buffers. The red band marks the step with the most bytes in use; the "
               "dashed blue line is the arena size. Hover a box for its tensor.</p>")
    out.append('<div class="scroll">' + _svg_timeline(result, tl) + "</div>")

    # cost bars
    out.append("<h2>Per-layer cost</h2>")
    if not instructions:
        out.append('<p class="note">Instruction counts: run <code>tinydeploy report --bench</code> '
                   "to measure each layer on the target's emulator.</p>")
    out.append('<div class="scroll">' + _svg_costs(layers, instructions) + "</div>")

    # table
    out.append("<h2>Layers</h2>")
    heads = ["#", "layer", "op", "kernel", "input shapes", "output shape", "MACs", "weight bytes",
             "arena offset", "bytes", "SQNR dB"]
    if instructions:
        heads += ["instructions", "MACs/instr."]
    left_cols = {"layer", "op", "kernel", "input shapes"}
    out.append(f'<div class="scroll"><table id="{TABLE_ID}"><thead><tr>' +
               "".join((f'<th class="l">' if h in left_cols else "<th>") + f"{_e(h)}</th>" for h in heads) +
               "</tr></thead><tbody>")
    for i, l in enumerate(layers):
        op = ops.get(l["name"])
        ins_shapes = ", ".join(_shape(g.tensors[n].shape) for n in op.inputs
                               if n and not g.tensors[n].is_const) if op is not None else ""
        sq = l.get("sqnr_db")
        offset = l.get("arena_offset")
        kernel = l.get("kernel", "")
        if l.get("variant") and l["variant"] != "portable":
            kernel += f" ({l['variant']})"
        cells = [f"<td>{i}</td>",
                 f'<td class="l name" title="{_e(l["name"])}">{_e(summary.short_name(l["name"], 44))}</td>',
                 f'<td class="l">{_e(l["op"])}</td>', f'<td class="l">{_e(kernel)}</td>',
                 f'<td class="l">{_e(ins_shapes)}</td>', f"<td>{_e(_shape(l.get('out_shape')))}</td>",
                 f"<td>{l['macs']:,}</td>", f"<td>{l.get('weight_bytes', 0):,}</td>",
                 f"<td>{'-' if offset is None else f'{offset:,}'}"
                 f"{'' if offset is not None else ' (' + _e(l.get('buffer', '')) + ')'}</td>",
                 f"<td>{l.get('bytes', 0):,}</td>",
                 (f'<td class="{"low" if sq < min_sqnr_db else ""}">{sq:.1f}</td>' if sq is not None
                  else "<td>-</td>")]
        if instructions:
            n = instructions[i]
            cells.append(f"<td>{n:,}</td>" if n else "<td>-</td>")
            cells.append(f"<td>{l['macs'] / n:.3f}</td>" if n else "<td>-</td>")
        out.append('<tr class="layer">' + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    notes = ["SQNR is measured for models quantized from float with calibration data; "
             "pre-quantized (QDQ) models show '-'."]
    if instructions:
        notes.append("Instructions are exact counts on the emulated core (QEMU -icount); "
                     "latency assumes one instruction per cycle at the target's clock.")
    if command:
        notes.append(f"Made with: <code>{_e(command)}</code>")
    out.append("".join(f'<p class="note">{n}</p>' for n in notes))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write(result, path, bench=None, min_sqnr_db: float = summary.DEFAULT_MIN_SQNR_DB,
          command: Optional[str] = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result, bench, min_sqnr_db, command), encoding="utf-8")
    return path


@dataclass
class ReportResult:
    """What `report` wrote: the HTML file, the build it describes and the bench figures."""

    path: Path
    compile: object  # api.CompileResult
    bench: object = None  # on_target.BenchResult when bench=True
    figures: Optional[dict] = None
    min_sqnr_db: float = summary.DEFAULT_MIN_SQNR_DB

    def to_json(self) -> dict:
        return {"html": str(self.path), **(self.figures or {}),
                "warnings": summary.sqnr_warnings(self.compile.report, self.min_sqnr_db),
                "bench": self.bench.to_json() if self.bench is not None else None}
