"""Progress bars for long work (calibration, verify, bench), drawn on stderr.

A `Progress` is the `progress(iterable, label)` wrapper the pipeline stages
accept (see `quantize.calibrate`): it yields the items of the iterable and
redraws one line on stderr as they go. `stage(label)` marks a step whose
length is unknown (building firmware, running the emulator) with a spinner
and the elapsed time.

Bars are drawn only when stderr is a terminal and `--quiet` was not given;
otherwise a Progress passes everything through silently. The environment
variable TINYDEPLOY_PROGRESS=1 forces bars on (=0 forces them off), e.g. to
see them in a CI log.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterable, Iterator, Optional, TextIO

WIDTH = 28
REDRAW_SECONDS = 0.1
SPINNER = "|/-\\"


def enabled_by_default(quiet: bool = False, stream: Optional[TextIO] = None) -> bool:
    """Whether bars should be drawn: not quiet, and stderr is a terminal (or forced)."""
    if quiet:
        return False
    forced = os.environ.get("TINYDEPLOY_PROGRESS", "").strip().lower()
    if forced in ("1", "yes", "true", "on"):
        return True
    if forced in ("0", "no", "false", "off"):
        return False
    stream = stream if stream is not None else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """Callable `progress(iterable, label, total=None)` plus `stage(label)`."""

    def __init__(self, enabled: Optional[bool] = None, stream: Optional[TextIO] = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled_by_default(stream=self.stream) if enabled is None else enabled
        self._lock = threading.Lock()
        self._width = 0  # characters of the line currently drawn

    # -- drawing -----------------------------------------------------------
    def _draw(self, text: str, final: bool = False) -> None:
        with self._lock:
            pad = " " * max(0, self._width - len(text))
            self.stream.write("\r" + text + pad + ("\n" if final else ""))
            self.stream.flush()
            self._width = 0 if final else len(text)

    def _bar(self, label: str, done: int, total: Optional[int], start: float) -> str:
        elapsed = time.monotonic() - start
        if total:
            frac = min(1.0, done / total)
            filled = int(round(frac * WIDTH))
            eta = ""
            if 0 < done < total:
                eta = f" eta {_clock(elapsed / done * (total - done))}"
            return (f"{label} [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total} "
                    f"{frac:4.0%} {_clock(elapsed)}{eta}")
        return f"{label} {done} {_clock(elapsed)}"

    # -- the wrapper -------------------------------------------------------
    def __call__(self, iterable: Iterable, label: str, total: Optional[int] = None) -> Iterator:
        if not self.enabled:
            yield from iterable
            return
        if total is None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        start = last = time.monotonic()
        done = 0
        self._draw(self._bar(label, done, total, start))
        try:
            for item in iterable:
                yield item
                done += 1
                now = time.monotonic()
                if now - last >= REDRAW_SECONDS or done == total:
                    self._draw(self._bar(label, done, total, start))
                    last = now
        finally:
            self._draw(self._bar(label, done, total, start), final=True)

    @contextmanager
    def stage(self, label: str):
        """A step of unknown length: a spinner with the elapsed time, then 'done'."""
        if not self.enabled:
            yield
            return
        start = time.monotonic()
        stop = threading.Event()

        def spin():
            i = 0
            while not stop.wait(REDRAW_SECONDS * 2):
                i += 1
                self._draw(f"{label} {SPINNER[i % len(SPINNER)]} {_clock(time.monotonic() - start)}")

        self._draw(f"{label} {SPINNER[0]} 0:00")
        thread = threading.Thread(target=spin, daemon=True)
        thread.start()
        ok = False
        try:
            yield
            ok = True
        finally:
            stop.set()
            thread.join()
            took = time.monotonic() - start
            self._draw(f"{label} {'done' if ok else 'failed'} ({took:.1f} s)", final=True)


SILENT = Progress(enabled=False)


def get(progress) -> Progress:
    """A Progress from what a caller passed: None (silent), True/False, a Progress,
    or a plain `progress(iterable, label)` callable (wrapped; its stages are silent)."""
    if progress is None or progress is False:
        return SILENT
    if progress is True:
        return Progress(enabled=True)
    if isinstance(progress, Progress):
        return progress
    if callable(progress):
        return _Wrapped(progress)
    raise TypeError(f"progress must be None, a bool or a callable, not {type(progress).__name__}")


class _Wrapped(Progress):
    def __init__(self, fn):
        super().__init__(enabled=False)
        self._fn = fn

    def __call__(self, iterable, label, total=None):
        return iter(self._fn(iterable, label))
