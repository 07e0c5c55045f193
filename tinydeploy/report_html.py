"""A self-contained HTML report of one build: figures, memory, per-layer costs.

One file with inline CSS and inline SVG, no scripts, fonts or anything else
from the network, so it can be attached to a ticket or opened offline:

- the summary figures and the target's memory budget (flash and SRAM bars),
- the memory timeline: every arena tensor (and kernel scratch buffer) as a
  box over the steps it is live (x) and the bytes it occupies (y), with the
  step of peak live memory and the arena size marked,
- per-layer cost bars on one axis: each layer's share of the MACs and, when `bench`
  ran, of the instructions, with its milliseconds,
- with validation inputs, the deployed model against the original (the metric set of
  `tinydeploy validate`, and each int8 layer's SQNR against the float model),
- the per-layer table: op, kernel, shapes, MACs, weight bytes, arena offset,
  bytes, SQNR (calibrated models) and instructions (with bench).

The timeline comes from report.json's "timeline" when the planner writes one,
else from the plan's lifetimes and placements. The output depends only on
the build, so compiling twice writes identical files.
"""
from __future__ import annotations

import html
import math
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
VALIDATION_ID = "validation"


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


def nice_ticks(top: float, count: int = 5) -> list:
    """Round axis values from 0 to at least `top`: steps of 1, 2, 2.5 or 5 times a power of
    ten (of bytes, or of KB when the axis spans kilobytes), about `count` of them."""
    unit = 1024 if top >= 4096 else 1
    raw = max(top / unit, 1e-9) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw - 1e-12)
    if unit == 1:
        step = max(1, round(step))
    n = int(math.ceil(top / unit / step - 1e-9))
    return [i * step * unit for i in range(n + 1)]


def _tick_label(v: float) -> str:
    if v >= 4096 or (v >= 1024 and v % 1024 == 0):
        kb = v / 1024
        return f"{kb:g} KB"
    return f"{int(v)} B"


def _halo(cls: str) -> str:
    """Text drawn over boxes stays readable: a white outline under the glyphs."""
    return f'class="{cls}" paint-order="stroke" stroke="#fff" stroke-width="3" stroke-linejoin="round"'


def _svg_timeline(result, tl: Timeline) -> str:
    boxes, n_steps = tl.boxes, tl.n_steps
    arena = result.report["arena_bytes"]
    top_used = max((b.offset + b.nbytes for b in boxes), default=0)
    ticks = nice_ticks(max(arena, top_used, 1))
    ymax = ticks[-1]
    left, right, top, bottom, plot_h = 78, 24, 46, 46, 320
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
    # y axis: round byte values
    for v in ticks:
        yy = y(v)
        parts.append(f'<line x1="{left - 4}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" '
                     f'stroke="#e4e4e4"/>')
        parts.append(f'<text x="{left - 7}" y="{yy + 4:.1f}" text-anchor="end" class="tick">'
                     f'{_tick_label(v)}</text>')
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
    # the buffers, each labelled with its tensor where the box has room
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
        chars = int((w - 6) / 6.2)
        if h >= 13 and chars >= 4:
            text = summary.short_name(b.name if b.kind != "scratch" else f"scratch {b.name}", chars)
            parts.append(f'<text class="box-label" x="{x0 + 3:.1f}" y="{y0 + min(h / 2 + 4, 12):.1f}">'
                         f'{_e(text)}</text>')
    # bytes in use at each step: a step line over the boxes (says something even when every
    # layer runs in place and the boxes stack on the same bytes)
    points = []
    for s in range(n_steps):
        yy = y(live[s])
        points += [f"{left + s * sw:.1f},{yy:.1f}", f"{left + (s + 1) * sw:.1f},{yy:.1f}"]
    parts.append(f'<polyline class="live-line" points="{" ".join(points)}" fill="none" stroke="#212121" '
                 f'stroke-width="1.5"><title>bytes in use at each step</title></polyline>')
    # the arena size and the peak step, drawn over the boxes
    ya = y(arena)
    parts.append(f'<line class="arena-line" x1="{left}" y1="{ya:.1f}" x2="{left + plot_w}" '
                 f'y2="{ya:.1f}" stroke="#1e88e5" stroke-width="1.5" stroke-dasharray="6 4"/>')
    parts.append(f'<text x="{left + plot_w - 4}" y="{ya + 14:.1f}" text-anchor="end" '
                 f'{_halo("label arena")}>arena {arena:,} B</text>')
    px = left + peak_step * sw
    parts.append(f'<rect class="peak" x="{px:.1f}" y="{top}" width="{sw:.1f}" height="{plot_h}" '
                 f'fill="#e53935" fill-opacity="0.10" stroke="#e53935" stroke-width="2" '
                 f'stroke-dasharray="5 3"><title>peak: {peak:,} B in use at step {peak_step} '
                 f'({_e(tl.labels[peak_step][0])} {_e(tl.labels[peak_step][1])})</title></rect>')
    anchor = "start" if peak_step < n_steps / 2 else "end"
    tx = px if anchor == "start" else px + sw
    parts.append(f'<line x1="{px + sw / 2:.1f}" y1="{top - 10}" x2="{px + sw / 2:.1f}" y2="{top}" '
                 f'stroke="#e53935" stroke-width="2"/>')
    parts.append(f'<text class="label peak-label" x="{tx:.1f}" y="{top - 14}" text-anchor="{anchor}">'
                 f'peak {peak:,} B in use at step {peak_step} ({_e(tl.labels[peak_step][0])})</text>')
    # legend
    legend = [("rect", "hsl(200,55%,62%)", "tensor (colour by name)"), ("rect", "#b8b8b8", "kernel scratch"),
              ("line", "#212121", "bytes in use"), ("dash", "#1e88e5", "arena size"),
              ("band", "#e53935", "peak step")]
    lx = left
    for shape, color, text in legend:
        if shape == "rect":
            parts.append(f'<rect x="{lx}" y="6" width="12" height="10" fill="{color}" stroke="#333" '
                         f'stroke-width="0.5"/>')
        elif shape == "band":
            parts.append(f'<rect x="{lx}" y="6" width="12" height="10" fill="{color}" fill-opacity="0.1" '
                         f'stroke="{color}" stroke-width="2" stroke-dasharray="3 2"/>')
        else:
            dash = ' stroke-dasharray="4 3"' if shape == "dash" else ""
            parts.append(f'<line x1="{lx}" y1="11" x2="{lx + 14}" y2="11" stroke="{color}" '
                         f'stroke-width="2"{dash}/>')
        parts.append(f'<text x="{lx + 18}" y="15" class="tick legend">{_e(text)}</text>')
        lx += 26 + int(len(text) * 6.2)
    parts.append("</svg>")
    return "\n".join(parts)


def _svg_costs(layers: list, instructions: Optional[list], ms: Optional[list] = None) -> str:
    """Per-layer bars on one axis: each layer's share (%) of the model's MACs and, with bench,
    of its instructions, so the two bars of a layer compare (a layer whose instruction share
    exceeds its MAC share is the slow one)."""
    has_ins = bool(instructions) and any(instructions)
    row_h = 22 if has_ins else 16
    left, bar_w, text_w, top = 250, 480, 230, 40
    width = left + bar_w + text_w
    height = top + row_h * len(layers) + 8
    total_macs = sum(l["macs"] for l in layers) or 1
    total_ins = sum(i or 0 for i in (instructions or [])) or 1
    mac_share = [100.0 * l["macs"] / total_macs for l in layers]
    ins_share = [100.0 * (i or 0) / total_ins for i in instructions] if has_ins else []
    ticks = nice_ticks(max(mac_share + ins_share + [1.0]), 5)
    if ticks[-1] > 100:
        ticks = [t for t in ticks if t < 100] + [100]
    axis_max = ticks[-1]
    parts = [f'<svg id="{COSTS_ID}" class="costs" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="per-layer cost bars: share of the total">']
    parts.append(f'<rect x="{left}" y="4" width="10" height="10" fill="#5c6bc0"/>'
                 f'<text x="{left + 14}" y="13" class="tick">% of MACs</text>')
    if has_ins:
        parts.append(f'<rect x="{left + 90}" y="4" width="10" height="10" fill="#ef6c00"/>'
                     f'<text x="{left + 104}" y="13" class="tick">% of instructions (emulator)</text>')
    for t in ticks:  # one axis for both bars
        xx = left + t / axis_max * bar_w
        parts.append(f'<line class="cost-grid" x1="{xx:.1f}" y1="{top - 6}" x2="{xx:.1f}" y2="{height - 6}" '
                     f'stroke="#e4e4e4"/>')
        parts.append(f'<text x="{xx:.1f}" y="{top - 10}" text-anchor="middle" class="tick">{t:g}%</text>')
    for i, l in enumerate(layers):
        y0 = top + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y0 + 11}" text-anchor="end" class="tick">'
                     f'<title>{_e(l["name"])}</title>{i} {_e(l["op"])}</text>')
        w = mac_share[i] / axis_max * bar_w
        h = 8 if has_ins else 11
        parts.append(f'<rect class="cost-macs" x="{left}" y="{y0 + 2}" width="{w:.1f}" height="{h}" '
                     f'fill="#5c6bc0"><title>{l["macs"]:,} MACs ({mac_share[i]:.1f}%)</title></rect>')
        label = f'{mac_share[i]:.1f}% MACs'
        if has_ins:
            ins = instructions[i] if i < len(instructions) and instructions[i] else 0
            wi = ins_share[i] / axis_max * bar_w
            parts.append(f'<rect class="cost-instructions" x="{left}" y="{y0 + 11}" width="{wi:.1f}" '
                         f'height="8" fill="#ef6c00"><title>{ins:,} instructions ({ins_share[i]:.1f}%)'
                         f'</title></rect>')
            label += f" | {ins_share[i]:.1f}% instr."
            if ms and i < len(ms) and ms[i] is not None:
                label += f" | {ms[i]:.3f} ms"
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
       margin: 24px auto; max-width: 1400px; padding: 0 16px; }
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
table { border-collapse: collapse; font-size: 12px; width: 100%; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; position: sticky; top: 0; }
td.l, th.l { text-align: left; } td.name { max-width: 320px; overflow: hidden; text-overflow: ellipsis; }
td.kernel { max-width: 260px; overflow: hidden; text-overflow: ellipsis; }
svg text.box-label { font-size: 10px; fill: #111; pointer-events: none; }
td.low { color: #c62828; font-weight: 600; }
.warn { background: #fff3e0; border-left: 4px solid #ef6c00; padding: 6px 10px; margin: 6px 0; }
.note { color: #666; font-size: 12.5px; }
code { background: #f4f4f4; padding: 1px 4px; border-radius: 3px; }
"""


def _shape(s) -> str:
    return "x".join(str(d) for d in s) if s else "scalar"


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{_e(value)}</b><span>{_e(label)}</span></div>'


def _validation_section(v, min_sqnr_db: float) -> list:
    """The deployed model against the original (a validation.ValidateResult)."""
    out = [f'<h2>Validation against the original model</h2><div id="{VALIDATION_ID}">',
           f'<p class="note">The generated C on {_e(v.target)} against <code>{_e(v.reference)}</code> '
           f"in onnxruntime, on {v.samples} samples of your data. C == golden model: "
           f"<b>{'bit-exact' if v.matches_golden and v.max_abs_diff_golden == 0 else 'within 1e-4' if v.matches_golden else 'MISMATCH'}</b>"
           f" (max |diff| {v.max_abs_diff_golden:g}).</p>"]
    heads = ["output", "shape", "top-1 agreement", "accuracy (deployed / original)", "RMSE", "MAE",
             "L2 relative", "cosine", "SQNR dB"]
    out.append('<table class="validation"><thead><tr>' + "".join(
        f'<th{" class=l" if h == "output" else ""}>{_e(h)}</th>' for h in heads) + "</tr></thead><tbody>")
    for m in v.outputs:
        acc = (f"{m.accuracy:.2%} / {m.reference_accuracy:.2%}" if m.accuracy is not None else "-")
        cells = [f'<td class="l">{_e(m.name)}</td>', f"<td>{_e(_shape(m.shape))}</td>",
                 f"<td>{m.top1_agreement:.2%}</td>" if m.top1_agreement is not None else "<td>-</td>",
                 f"<td>{acc}</td>", f"<td>{m.rmse:.4g}</td>", f"<td>{m.mae:.4g}</td>",
                 f"<td>{m.l2_relative:.4g}</td>", f"<td>{m.cosine:.6f}</td>",
                 f"<td>{m.sqnr_db:.1f}</td>" if m.sqnr_db is not None else "<td>identical</td>"]
        out.append('<tr class="output">' + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if v.layers:
        out.append(f'<p class="note">Per-layer SQNR, int8 against the float model on these inputs '
                   f"(lowest first; below {min_sqnr_db:g} dB in red):</p>")
        out.append('<table class="validation-layers"><thead><tr><th class="l">layer</th><th class="l">op</th>'
                   "<th>SQNR dB</th></tr></thead><tbody>")
        for layer in v.layers:
            low = ' class="low"' if layer["sqnr_db"] < min_sqnr_db else ""
            out.append(f'<tr class="vlayer"><td class="l name" title="{_e(layer["name"])}">'
                       f'{_e(summary.short_name(layer["name"], 60))}</td><td class="l">{_e(layer["op"])}</td>'
                       f'<td{low}>{layer["sqnr_db"]:.1f}</td></tr>')
        out.append("</tbody></table>")
    out.append("</div>")
    return out


def render(result, bench=None, min_sqnr_db: float = summary.DEFAULT_MIN_SQNR_DB,
           command: Optional[str] = None, validation=None) -> str:
    """The HTML page for a CompileResult (and optionally an on_target.BenchResult and a
    validation.ValidateResult)."""
    report, tgt, g = result.report, result.target, result.graph
    fig = summary.figures(report, tgt, bench)
    layers = report["layers"]
    b = bench.to_json() if hasattr(bench, "to_json") else bench
    instructions = cycles = None
    if b and b.get("layers"):
        by_name = {bl["name"]: bl for bl in b["layers"]}
        instructions = [by_name.get(l["name"], {}).get("instructions") for l in layers]
        if b.get("est_cycles") is not None:
            cycles = [(by_name.get(l["name"], {}).get("est_cycles"),
                       by_name.get(l["name"], {}).get("est_ms")) for l in layers]
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
                   "RAM with stack" + (f", {fig['ram']['percent']:.1f}%" if fig['ram']['percent'] is not None
                                 else "")),
             _card(f"{report['arena_bytes']:,} B", "arena")]
    if report.get("ram_lower_bound_bytes") is not None:
        cards.append(_card(f"{report['ram_lower_bound_bytes']:,} B", "RAM lower bound"))
    if lat:
        cards.append(_card(f"{lat['instructions']:,}", "instructions per inference"))
        if lat.get("est_ms") is not None:
            cards.append(_card(f"{lat['est_ms']:.2f} ms",
                               f"est. latency at {tgt.clock_hz / 1e6:g} MHz ({lat['est_cycles']:,} "
                               f"cycles, {lat['cycle_model']} cycle model)"))
        else:
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
    io = ram["io_bytes"] or 0
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
               "to the last step that reads it (x), at the bytes it occupies (y), labelled with its "
               "tensor where it has room (hover any box for its name, size and offset). Grey boxes "
               "are kernel scratch buffers. The black line is the bytes in use at each step (buffers "
               "that share bytes, as in-place layers do, count once); the red band marks the step "
               "with the most; the dashed blue line is the arena size.</p>")
    out.append('<div class="scroll">' + _svg_timeline(result, tl) + "</div>")

    # cost bars
    out.append("<h2>Per-layer cost</h2>")
    if not instructions:
        out.append('<p class="note">Instruction counts: run <code>tinydeploy report --bench</code> '
                   "to measure each layer on the target's emulator.</p>")
    # per-layer ms: the cycle model's estimate, else one instruction per cycle
    if cycles:
        ms = [c[1] for c in cycles]
    else:
        ms = [None if not n else n / tgt.clock_hz * 1e3 for n in instructions] if instructions else None
    out.append('<div class="scroll">' + _svg_costs(layers, instructions, ms) + "</div>")

    if validation is not None:
        out += _validation_section(validation, min_sqnr_db)

    # table
    out.append("<h2>Layers</h2>")
    heads = ["#", "layer", "op", "kernel", "input shapes", "output shape", "MACs", "weights B",
             "offset", "bytes", "SQNR dB"]
    if instructions:
        heads += ["instr.", "% instr."] + (["est. cycles", "est. ms"] if cycles else ["ms"]) + ["MAC/instr."]
        total_ins = sum(n or 0 for n in instructions) or 1
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
        # the variant says which kernel runs; the C function's mangled name is in the tooltip
        kernel = l.get("variant") or l.get("kernel", "")
        function = l.get("kernel", "")
        cells = [f"<td>{i}</td>",
                 f'<td class="l name" title="{_e(l["name"])}">{_e(summary.short_name(l["name"], 30))}</td>',
                 f'<td class="l">{_e(l["op"])}</td>',
                 f'<td class="l kernel" title="{_e(function)}">{_e(summary.short_name(kernel, 24))}</td>',
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
            cells.append(f"<td>{100.0 * n / total_ins:.1f}</td>" if n else "<td>-</td>")
            if cycles:
                est_cycles, est_ms = cycles[i]
                cells.append(f"<td>{est_cycles:,}</td>" if est_cycles is not None else "<td>-</td>")
                cells.append(f"<td>{est_ms:.3f}</td>" if est_ms is not None else "<td>-</td>")
            else:
                cells.append(f"<td>{ms[i]:.3f}</td>" if n else "<td>-</td>")
            cells.append(f"<td>{l['macs'] / n:.3f}</td>" if n else "<td>-</td>")
        out.append('<tr class="layer">' + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    notes = ["SQNR is measured for models quantized from float with calibration data; "
             "pre-quantized (QDQ) models show '-'."]
    if instructions and cycles:
        cm = b.get("cycle_model") or {}
        notes.append("Instructions are exact counts on the emulated core (QEMU -icount); cycles "
                     f"and ms are estimates of the {_e(cm.get('cost_model', ''))} cycle model "
                     "(instructions by class weighted with the core's costs, zero-wait-state memory "
                     "assumed; see docs/cycle-model.md) at the target's clock.")
    elif instructions:
        notes.append("Instructions are exact counts on the emulated core (QEMU -icount); "
                     f"ms assumes one instruction per cycle at the target's {tgt.clock_hz / 1e6:g} MHz.")
    if command:
        notes.append(f"Made with: <code>{_e(command)}</code>")
    out.append("".join(f'<p class="note">{n}</p>' for n in notes))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write(result, path, bench=None, min_sqnr_db: float = summary.DEFAULT_MIN_SQNR_DB,
          command: Optional[str] = None, validation=None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result, bench, min_sqnr_db, command, validation), encoding="utf-8")
    return path


@dataclass
class ReportResult:
    """What `report` wrote: the HTML file, the build it describes and the bench figures."""

    path: Path
    compile: object  # api.CompileResult
    bench: object = None  # on_target.BenchResult when bench=True
    figures: Optional[dict] = None
    min_sqnr_db: float = summary.DEFAULT_MIN_SQNR_DB
    validation: object = None  # validation.ValidateResult when validate_inputs were given

    def to_json(self) -> dict:
        return {"html": str(self.path), **(self.figures or {}),
                "warnings": summary.sqnr_warnings(self.compile.report, self.min_sqnr_db),
                "bench": self.bench.to_json() if self.bench is not None else None,
                "validation": self.validation.to_json() if self.validation is not None else None}
