"""What the benchmark scripts share: wall time of one whole command, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds for ``cmd`` to run to completion in the repo root; a failure ends the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env or dict(os.environ), cwd=REPO_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return seconds
