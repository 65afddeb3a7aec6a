"""Ctrl-C and SIGTERM that are never lost, even when they land inside a library's import code.

The handler records the signal before raising KeyboardInterrupt. Library code can swallow
the exception (an import machinery ``except BaseException``, a retry loop), so commands that
publish something check ``requested()`` before their final, visible step (a build's rename
into place) and the CLI exits 130 whenever a signal arrived, whatever happened to the
exception. A command for which a signal is the normal way to end (``hub serve``) calls
``handled()`` and exits 0.

A signal can also land while a finalizer (``__del__``, a weakref callback) runs, where Python
cannot raise: it prints "Exception ignored in ..." with a traceback and goes on. Seen in
``make test``: a Ctrl-C during ``hubtool build`` landed in the regex module's ``__del__``. The
installed ``sys.unraisablehook`` takes such a KeyboardInterrupt, prints nothing, and delivers
the signal again to the main thread (``_thread.interrupt_main``) from a short-lived thread,
a moment later: called in the hook itself (or while the hook waits for a ``threading.Thread``
to start) the handler would raise at once, inside the hook, and be lost too.
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
import time
from typing import Any

_REQUESTED = threading.Event()
_REDELIVERIES = 3  # a signal that keeps landing in finalizers is still recorded: the CLI exits 130
_redelivered = 0
_previous_hook = sys.unraisablehook


def _handler(signum: int, frame: object) -> None:
    _REQUESTED.set()
    raise KeyboardInterrupt


def _unraisable(unraisable: Any) -> None:
    """A KeyboardInterrupt raised inside a finalizer: deliver it again where it can stop the command."""
    global _redelivered
    exc_type = unraisable.exc_type
    if not (isinstance(exc_type, type) and issubclass(exc_type, KeyboardInterrupt) and _REQUESTED.is_set()):
        _previous_hook(unraisable)
        return
    if _redelivered < _REDELIVERIES:
        _redelivered += 1
        try:
            _thread.start_new_thread(_deliver_again, ())  # returns at once, unlike threading.Thread.start
        except RuntimeError:  # the interpreter is shutting down: the CLI exits 130 on requested() anyway
            pass


def _deliver_again() -> None:
    time.sleep(0.01)  # let the hook and the finalizer return first
    _thread.interrupt_main(signal.SIGINT)


def install() -> None:
    """Route SIGINT and SIGTERM through the recording handler (main thread only)."""
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    sys.unraisablehook = _unraisable


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
