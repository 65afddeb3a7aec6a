"""Ctrl-C and SIGTERM that are never lost, even when they land inside a library's import code.

The handler records the signal before raising KeyboardInterrupt. Library code can swallow
the exception (an import machinery ``except BaseException``, a retry loop), so commands that
publish something check ``requested()`` before their final, visible step (a build's rename
into place) and the CLI exits 130 whenever a signal arrived, whatever happened to the
exception. A command for which a signal is the normal way to end (``hub serve``) calls
``handled()`` and exits 0.
"""

from __future__ import annotations

import signal
import threading

_REQUESTED = threading.Event()


def _handler(signum: int, frame: object) -> None:
    _REQUESTED.set()
    raise KeyboardInterrupt


def install() -> None:
    """Route SIGINT and SIGTERM through the recording handler (main thread only)."""
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def requested() -> bool:
    """True once a SIGINT or SIGTERM has arrived in this process."""
    return _REQUESTED.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if a signal arrived (and was swallowed somewhere): stop before publishing."""
    if _REQUESTED.is_set():
        raise KeyboardInterrupt


def handled() -> None:
    """The command ended as a signal asks it to (a server told to stop): not an interruption."""
    _REQUESTED.clear()
