"""Preloaded by a test's fork server: writes a file if the server runs its exit handlers.

The process that imports this module records its pid; forked workers inherit the handler but
are other processes, so only the server itself can write the file (HUBTOOL_TEST_UNWOUND).
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

_SERVER = os.getpid()


def _unwound() -> None:
    marker = os.environ.get("HUBTOOL_TEST_UNWOUND")
    if marker and os.getpid() == _SERVER:
        Path(marker).write_text("the fork server ran its exit handlers")


atexit.register(_unwound)
