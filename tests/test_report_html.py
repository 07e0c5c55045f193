"""The HTML report: self-contained, renders in headless Chromium with the memory timeline
and the per-layer table; the timeline reads report.json's "timeline" or the plan."""
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from conftest import EXAMPLES, cli, model_path

from tinydeploy import report_html


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (Debian package chromium; quickstart.sh installs it)")


def render_dom(html_path, tmp_path) -> str:
    """The DOM after Chromium loaded the page (no network, throwaway profile)."""
    profile = tmp_path / "chromium-profile"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={profile}", "--dump-dom", html_path.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class _Dom(HTMLParser):
    """Counts what the tests look for: elements by id, and elements inside them by class."""

    def __init__(self):
        super().__init__()
        self.stack = []  # (tag, id)
        self.ids = {}
        self.inside = {}  # (container id, tag, class) -> count
        self.rows = {}  # table id -> rows in its tbody

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids[a["id"]] = tag
        for _, cid in self.stack:
            if cid:
                key = (cid, tag, a.get("class", ""))
                self.inside[key] = self.inside.get(key, 0) + 1
        if tag == "tr" and any(t == "tbody" for t, _ in self.stack):
            table = next((cid for t, cid in reversed(self.stack) if t == "table"), None)
            self.rows[table] = self.rows.get(table, 0) + 1
        if tag not in ("meta", "br", "line", "rect", "img", "input", "link", "path", "circle"):
            self.stack.append((tag, a.get("id")))
        elif tag == "rect":  # <rect> may hold a <title>: keep it on the stack until </rect>
            self.stack.append((tag, None))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "rect":
            self.stack.pop()

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break


def parse(dom: str) -> _Dom:
    d = _Dom()
    d.feed(dom)
    return d


def _assert_self_contained(text: str):
    for needle in ("http://", "https://", "<script", "<link", "<img", "@import", "url("):
        assert needle not in text, f"the report refers to something outside the file: {needle}"


def test_vww_report_renders_in_headless_chromium(tmp_path):
    out = tmp_path / "vww.html"
    proc = cli("report", model_path("vww", "int8_qdq.onnx"), "-t", "stm32f746", "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert figures["html"] == str(out) and out.is_file()
    text = out.read_text()
    _assert_self_contained(text)

    dom = parse(render_dom(out, tmp_path))
    # the memory timeline: an inline SVG with a box per arena buffer and the peak marked
    assert dom.ids.get(report_html.TIMELINE_ID) == "svg"
    boxes = dom.inside.get((report_html.TIMELINE_ID, "rect", "tensor"), 0)
    assert boxes >= 10, dom.inside
    assert dom.inside.get((report_html.TIMELINE_ID, "rect", "peak"), 0) == 1
    assert dom.inside.get((report_html.TIMELINE_ID, "line", "arena-line"), 0) == 1
    # the per-layer table: one row per layer
    assert dom.ids.get(report_html.TABLE_ID) == "table"
    assert dom.rows.get(report_html.TABLE_ID) == figures["layers"] == 30
    # the cost bars and the memory budget
    assert dom.ids.get(report_html.COSTS_ID) == "svg"
    assert dom.inside.get((report_html.COSTS_ID, "rect", "cost-macs"), 0) == 30
    assert report_html.BUDGET_ID in dom.ids
    assert "stm32f746" in text and "327,680" in text and "1,048,576" in text


def _compiled(model, **kw):
    import tinydeploy
    return tinydeploy.compile(model, **kw)


@pytest.fixture(scope="module")
def digits_float():
    return _compiled(EXAMPLES / "digits" / "digits_cnn.onnx", target="stm32f746", quantize="float32")


def _as_tuples(tl):
    return sorted((b.first, b.last, b.offset, b.nbytes) for b in tl.boxes)


def test_timeline_formats_from_report_json(digits_float):
    """A planner's timeline in report.json (per tensor, or per step) draws the same boxes."""
    result = digits_float
    report = dict(result.report)
    report.pop("timeline", None)
    result.report = report
    from_plan = report_html.timeline(result)
    assert from_plan.source == "plan" and from_plan.boxes
    want = _as_tuples(from_plan)

    per_tensor = [dict(tensor=b.name, first=b.first, last=b.last, offset=b.offset, bytes=b.nbytes)
                  for b in from_plan.boxes]
    per_step = [dict(step=s, live=[dict(tensor=b.name, offset=b.offset, bytes=b.nbytes)
                                   for b in from_plan.boxes if b.first <= s <= b.last])
                for s in range(from_plan.n_steps)]
    for tl in (per_tensor, {"tensors": per_tensor}, per_step, {"steps": per_step}):
        result.report = dict(report, timeline=tl)
        got = report_html.timeline(result)
        assert got.source == "report.json"
        assert _as_tuples(got) == want
    result.report = dict(report, timeline={"something": "else"})  # not understood: the plan
    assert report_html.timeline(result).source == "plan"
    result.report = report


def test_peak_counts_shared_bytes_once():
    B = report_html.Box
    boxes = [B("a", 0, 1, 0, 100), B("b", 1, 2, 50, 100), B("c", 2, 2, 0, 10)]
    assert report_html.live_bytes(boxes, 3) == [100, 150, 110]


def test_report_python_api_and_sqnr_column(tmp_path):
    """tinydeploy.report(...) on a calibrated model: SQNR per layer, low ones flagged."""
    import tinydeploy
    ex = EXAMPLES / "digits"
    res = tinydeploy.report(ex / "digits_cnn.onnx", target="nrf52840", output=tmp_path / "r.html",
                            calib=ex / "calib.npz", min_sqnr_db=40)
    text = res.path.read_text()
    _assert_self_contained(text)
    d = res.to_json()
    assert d["layers"] == len(res.compile.report["layers"]) and d["bench"] is None
    sqnr = [l["sqnr_db"] for l in res.compile.report["layers"]]
    assert all(s is not None for s in sqnr)
    low = [s for s in sqnr if s < 40]
    assert text.count('class="low"') == len(low)
    assert len(d["warnings"]) == (len(low) + 1 if low else 0)
    assert 'id="memory-timeline"' in text and 'id="layer-table"' in text


def test_nice_ticks_are_round():
    """Issue 17 item 9: the y axis ticks fell at arena/4 (e.g. 9,520 B steps)."""
    assert report_html.nice_ticks(38080) == [0, 10240, 20480, 30720, 40960]  # 0-40 KB by 10 KB
    assert report_html.nice_ticks(752) == [0, 200, 400, 600, 800]
    assert report_html.nice_ticks(8464) == [0, 2048, 4096, 6144, 8192, 10240]
    assert report_html.nice_ticks(19.3) == [0, 5, 10, 15, 20]  # percentages
    for top in (7, 99, 1000, 4095, 4097, 123456, 3_000_000):
        ticks = report_html.nice_ticks(top)
        step = ticks[1] - ticks[0]
        unit = 1024 if top >= 4096 else 1
        mantissa = step / unit / 10 ** np.floor(np.log10(step / unit))
        assert ticks[-1] >= top and ticks[-2] < top and 3 <= len(ticks) - 1 <= 10
        assert round(mantissa, 6) in (1, 2, 2.5, 5)


def _attr_values(svg: str, cls: str, attr: str) -> list:
    return [float(m) for m in re.findall(rf'class="{cls}"[^>]* {attr}="([0-9.]+)"', svg)]


def test_kws_report_with_bench_is_readable(tmp_path):
    """Issue 17 item 9 on kws (every layer in place): the peak band is drawn over the boxes and
    labelled above the plot, buffers carry labels and a legend, the bytes-in-use line is there,
    and the cost bars of MACs and instructions share one axis (each layer's share of the total);
    the table has % and ms per layer. Headless Chromium renders it and takes a screenshot."""
    out = tmp_path / "kws.html"
    proc = cli("report", model_path("kws", "int8_qdq.onnx"), "-t", "stm32f746", "-o", out, "--bench", "--json")
    assert proc.returncode == 0, proc.stderr
    page = json.loads(proc.stdout)
    text = out.read_text()
    timeline = text[text.index(f'id="{report_html.TIMELINE_ID}"'):text.index("</svg>", text.index(
        f'id="{report_html.TIMELINE_ID}"'))]
    assert timeline.rindex('class="tensor"') < timeline.index('class="peak"')  # on top of the boxes
    peak_label_y = float(re.search(r'class="label peak-label" x="[0-9.]+" y="([0-9.]+)"', timeline).group(1))
    plot_y = float(re.search(r'class="plot" x="[0-9.]+" y="([0-9.]+)"', timeline).group(1))
    assert peak_label_y < plot_y  # above the plot, not over the boxes
    assert timeline.count('class="box-label"') >= 8 and 'class="live-line"' in timeline
    for legend in ("tensor (colour by name)", "kernel scratch", "bytes in use", "arena size", "peak step"):
        assert legend in timeline
    ticks = re.findall(r'class="tick">([0-9.]+ (?:KB|B))</text>', timeline)
    assert ticks[:3] == ["0 B", "2 KB", "4 KB"]
    # one axis: bar width / share is the same constant for the MAC and the instruction bars
    costs = text[text.index(f'id="{report_html.COSTS_ID}"'):]
    costs = costs[:costs.index("</svg>")]
    macs = np.array([l["macs"] for l in page["bench"]["layers"]], dtype=float)
    ins = np.array([l["instructions"] for l in page["bench"]["layers"]], dtype=float)
    w_macs = np.array(_attr_values(costs, "cost-macs", "width"))
    w_ins = np.array(_attr_values(costs, "cost-instructions", "width"))
    shares = np.concatenate([macs / macs.sum(), ins / ins.sum()])
    widths = np.concatenate([w_macs, w_ins])
    big = shares > 0.01
    assert np.allclose(widths[big] / shares[big], (widths[big] / shares[big])[0], rtol=0.02)
    assert costs.count('class="cost-grid"') >= 3 and "% of instructions" in costs
    assert "<th>% instr.</th>" in text and "<th>est. ms</th>" in text  # the cycle model's ms
    # it renders, and a screenshot shows it
    dom = parse(render_dom(out, tmp_path))
    assert dom.inside.get((report_html.TIMELINE_ID, "rect", "peak"), 0) == 1
    shot = tmp_path / "kws.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile2'}", "--window-size=1440,1800",
                    f"--screenshot={shot}", out.resolve().as_uri()], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
