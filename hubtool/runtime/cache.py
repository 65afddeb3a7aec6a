"""Where hubtool keeps caches: one root for every command, so work done once is reused.

``HUBTOOL_CACHE`` moves it (default: ``$XDG_CACHE_HOME/hubtool`` or ``~/.cache/hubtool``).
``compile/`` holds Inductor's and Triton's caches for every worker: verify's compile run
and bench's compiled cells share it, so a model compiled by ``verify`` loads its kernels
from there in ``bench`` instead of compiling again. ``runs/`` holds per-run scratch.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "HUBTOOL_CACHE"


def cache_root() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hubtool"


def compile_cache(root: Path | None = None) -> Path:
    """The folder isolated workers run in: Inductor's cache is ``inductor/`` under it."""
    return (root or cache_root()) / "compile"
