"""Bytes moved by huggingface_hub's downloads and uploads, reported to hubtool's progress display.

Why hand-written: huggingface_hub draws its own tqdm bars, which write carriage returns even
into a log and would fight hubtool's live display, and it has no callback for bytes moved.
What it does offer is enough to count them without touching its internals:

- ``snapshot_download(tqdm_class=...)`` draws every bar of a download (files fetched, bytes
  received) with the class it is given: ``byte_bars`` is a tqdm class that draws nothing and
  reports the bytes of its byte bars.
- ``CommitOperationAdd`` uploads from an open binary file as well as from a path:
  ``CountingReader`` is such a file, whose reads report the furthest byte reached, so bytes
  read twice (the digest of a small file, a retried part) are counted once.

A report is ``on_bytes(done, total)``; ``total`` is None while it is not known yet.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ByteReport = Callable[[int, "int | None"], None]


class _Sink:
    """Where the bars draw: nowhere."""

    encoding = "utf-8"

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def byte_bars(on_bytes: ByteReport) -> type[Any]:
    """A tqdm class for ``snapshot_download``: silent; reports (bytes done, bytes expected).

    huggingface_hub 2.x keeps two byte bars (received and written to disk), 1.x one; the
    report follows the furthest of them. Bars counting files are ignored.
    """
    from tqdm.std import tqdm

    lock = threading.Lock()
    byte_bars_seen: list[Any] = []

    class SilentBytes(tqdm):
        monitor_interval = 0  # no monitor thread for bars nobody sees
        # huggingface_hub leaves some bars to the garbage collector, whose close() redraws them:
        # set False when the download is over, so nothing is reported after it.
        reporting = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)  # huggingface_hub's own keyword, not tqdm's
            # miniters=0 and mininterval=0: every update redraws, that is calls display()
            kwargs.update(disable=False, file=_Sink(), mininterval=0, miniters=0, leave=False)
            super().__init__(*args, **kwargs)
            if self.unit == "B":
                with lock:
                    byte_bars_seen.append(self)
            self._report()

        def display(self, *args: Any, **kwargs: Any) -> bool:  # on every update, refresh and total change
            self._report()
            return True

        def _report(self) -> None:
            if not SilentBytes.reporting or getattr(self, "unit", None) != "B":
                return
            with lock:
                done = max((int(bar.n) for bar in byte_bars_seen), default=0)
                total = max((int(bar.total or 0) for bar in byte_bars_seen), default=0)
            on_bytes(done, total or None)

    SilentBytes.set_lock(threading.RLock())  # not tqdm's default, which starts a multiprocessing helper
    return SilentBytes


@contextmanager
def download_bars(on_bytes: ByteReport | None) -> Iterator[dict[str, Any]]:
    """``snapshot_download``'s keyword arguments for silent bars reporting to ``on_bytes`` (none
    without it). Reports ``(0, None)`` first; nothing after the block ends."""
    if on_bytes is None:
        yield {}
        return
    bars = byte_bars(on_bytes)
    on_bytes(0, None)
    try:
        yield {"tqdm_class": bars}
    finally:
        bars.reporting = False


class UploadCounter:
    """The bytes of several files read for an upload: each file counts up to the furthest byte read."""

    def __init__(self, total: int, on_bytes: ByteReport) -> None:
        self.total, self.on_bytes = total, on_bytes
        self._furthest: dict[int, int] = {}
        self._keys = itertools.count()
        self._lock = threading.Lock()
        on_bytes(0, total)

    def reached(self, key: int, position: int) -> None:
        with self._lock:
            if position <= self._furthest.get(key, 0):
                return
            self._furthest[key] = position
            done = sum(self._furthest.values())
        self.on_bytes(min(done, self.total), self.total)

    def reader(self, path: str | os.PathLike[str]) -> CountingReader:
        return CountingReader(path, self, key=next(self._keys))


class CountingReader(io.BufferedReader):
    """An open file (what ``CommitOperationAdd`` accepts instead of a path) that counts its reads."""

    def __init__(self, path: str | os.PathLike[str], counter: UploadCounter, *, key: int) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self._counter, self._key = counter, key

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self._counter.reached(self._key, self.tell())
        return data

    def read1(self, size: int = -1) -> bytes:
        data = super().read1(size)
        self._counter.reached(self._key, self.tell())
        return data

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer)
        self._counter.reached(self._key, self.tell())
        return n
