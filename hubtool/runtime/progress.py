"""Progress of long stages: live lines in a terminal, plain timestamped lines everywhere else.

Why: a build, a compile, a vLLM engine start or an upload can run for minutes, and a
command that prints nothing meanwhile cannot be told from a hung one (issue #13 measured
164 s of silence). In a terminal each running stage gets one live line (model, stage,
elapsed time, done/total, detail) drawn by rich. In CI logs and pipes, where redraws turn
into garbage, a stage prints one line when it starts, one when it ends, and a heartbeat
line every 15 s while it runs; never a control code.

One ``Progress`` per command; the command's stages run inside it::

    with Progress() as progress:
        with progress.stage("gpt2-25m", "compile") as stage:
            ...
        with progress.stage("gpt2-25m", "train", total=50, unit="steps") as stage:
            for ...:
                stage.advance()
                stage.update(detail="loss 3.21")

rich is imported only when a live display is drawn, so ``hubtool --help`` stays light.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any, TextIO

HEARTBEAT_SECONDS = 15.0


def _clock() -> str:
    return time.strftime("%H:%M:%S")


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"  # pragma: no cover - the loop always returns


def format_count(done: int, total: int | None, unit: str = "") -> str:
    """``12/40 steps``, ``12.3 MB/384.4 MB`` (unit B), ``12 files``; empty before anything is done
    when there is no total."""
    if unit == "B":
        return f"{_bytes(done)}/{_bytes(total)}" if total is not None else (_bytes(done) if done else "")
    if total is None:
        return f"{done:,} {unit}".rstrip() if done else ""
    return f"{done:,}/{total:,} {unit}".rstrip()


class Stage:
    """One running stage of one model. Made by ``Progress.stage``; ends when its ``with`` block does."""

    def __init__(self, progress: Progress, model: str, stage: str, total: int | None, unit: str) -> None:
        self._progress = progress
        self.model, self.stage, self.total, self.unit = model, stage, total, unit
        self.done = 0
        self.detail: str | None = None
        self.started = self.last_beat = time.monotonic()
        self.closed = False
        self.task: Any = None  # rich's task id, when live

    @property
    def name(self) -> str:
        return f"{self.model}: {self.stage}"

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def count(self) -> str:
        return format_count(self.done, self.total, self.unit)

    def advance(self, n: int = 1) -> None:
        """``n`` more units done."""
        self.update(done=self.done + n)

    def update(self, *, done: int | None = None, detail: str | None = None, total: int | None = None) -> None:
        """Set the units done, the detail text (e.g. the current loss) and/or the total, once known."""
        if done is not None:
            self.done = done
        if detail is not None:
            self.detail = detail
        if total is not None:
            self.total = total
        self._progress._changed(self)

    def close(self, outcome: str = "done") -> None:
        """End the stage: ``done``, ``failed`` or ``interrupted``. Closing twice does nothing."""
        self._progress._close(self, outcome)

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(_outcome(exc_type))


def _outcome(exc_type: type[BaseException] | None) -> str:
    if exc_type is None:
        return "done"
    return "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"


class Progress:
    """The progress display of one command. A context manager; ``stage`` opens stages in it.

    ``live`` None chooses for ``stream`` (default stderr): live lines when it is a terminal,
    plain lines otherwise. ``heartbeat_s`` is how often a plain-mode stage still running says so.
    """

    heartbeat_s: float = HEARTBEAT_SECONDS

    def __init__(self, *, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live = live
        self._lock = threading.RLock()
        self._stages: list[Stage] = []
        self._rich: Any = None
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()

    # -- public API ------------------------------------------------------------------------
    def stage(self, model: str, stage: str, *, total: int | None = None, unit: str = "") -> Stage:
        """Start a stage now; it ends when its ``with`` block exits (or at ``close``)."""
        opened = Stage(self, model, stage, total, unit)
        with self._lock:
            self._stages.append(opened)
            if self.live:
                opened.task = self._display().add_task(
                    opened.name, total=total, completed=0, model=model, stage=stage, count="", detail="")
            else:
                self._write(f"{_clock()} {opened.name} started")
                self._start_heartbeat()
        return opened

    def line(self, text: str) -> None:
        """A plain message between the stage lines (timestamped when not live)."""
        with self._lock:
            if self.live:
                self._display().console.print(text, markup=False, highlight=False)
            else:
                self._write(f"{_clock()} {text}")

    def close(self, outcome: str = "done") -> None:
        """End every open stage with ``outcome`` and stop the display."""
        with self._lock:
            for stage in list(self._stages):
                self._close(stage, outcome)
            self._stop.set()
            if self._rich is not None:
                self._rich.stop()
                self._rich = None
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join(timeout=5)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(_outcome(exc_type))

    # -- internals -------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (ValueError, OSError):  # the stream was closed under us (interpreter exit)
            pass

    def _display(self) -> Any:
        """rich's live progress, started on first use."""
        if self._rich is None:
            from rich.console import Console
            from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            console = Console(file=self.stream, force_terminal=True)
            self._rich = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.fields[model]}", style="bold", markup=False),
                TextColumn("{task.fields[stage]}", markup=False),
                BarColumn(bar_width=24),
                TimeElapsedColumn(),
                TextColumn("{task.fields[count]}", markup=False),
                TextColumn("{task.fields[detail]}", style="dim", markup=False),
                console=console, transient=True, refresh_per_second=4,
            )
            self._rich.start()
        return self._rich

    def _changed(self, stage: Stage) -> None:
        with self._lock:
            if self.live and stage.task is not None and not stage.closed:
                self._display().update(stage.task, completed=stage.done, total=stage.total, count=stage.count(),
                                       detail=stage.detail or "")

    def _close(self, stage: Stage, outcome: str) -> None:
        with self._lock:
            if stage.closed:
                return
            stage.closed = True
            if stage in self._stages:
                self._stages.remove(stage)
            verb = "done in" if outcome == "done" else f"{outcome} after"
            text = f"{stage.name} {verb} {stage.elapsed():.1f} s"
            if self.live:
                from rich.text import Text

                display = self._display()
                display.remove_task(stage.task)
                display.refresh()  # redraw without it before the line goes above the live area
                mark = ("✓ ", "green") if outcome == "done" else ("✗ ", "red")
                display.console.print(Text.assemble(mark, text), highlight=False)
            else:
                self._write(f"{_clock()} {text}")

    def _start_heartbeat(self) -> None:
        if self._beat is None:
            self._beat = threading.Thread(target=self._heartbeat, name="hubtool-progress", daemon=True)
            self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(1.0, self.heartbeat_s / 4)):
            now = time.monotonic()
            with self._lock:
                for stage in self._stages:
                    if now - stage.last_beat >= self.heartbeat_s:
                        stage.last_beat = now
                        parts = [f"still running, {now - stage.started:.0f} s", stage.count(), stage.detail or ""]
                        self._write(f"{_clock()} {stage.name} " + ", ".join(p for p in parts if p))
