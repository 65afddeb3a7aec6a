"""What produced an artifact: library versions and hubtool's own version and git commit.

Reads package metadata only (no heavy imports), so it is cheap to call anywhere.
"""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "transformers", "huggingface_hub", "safetensors", "tokenizers")
_SOURCE_DIR = Path(__file__).resolve().parents[2]


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def hubtool_version() -> str:
    return package_version("hubtool") or "0+unknown"


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    versions.update({name: package_version(name) for name in names})
    return versions


@lru_cache(maxsize=1)
def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the hubtool checkout, or nulls when not run from one."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(_SOURCE_DIR), *args],  # noqa: S607 - whichever git is on PATH, as a user's shell runs it
                capture_output=True, text=True, timeout=10, check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != _SOURCE_DIR:
        # An installed hubtool (site-packages) inside some other checkout is not that checkout.
        return {"commit": None, "dirty": None, "untracked": None}
    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "untracked": None}
    status = git("status", "--porcelain", "--untracked-files=all", "--", "hubtool", "pyproject.toml") or ""
    lines = [line for line in status.splitlines() if line.strip()]
    # An untracked module under hubtool/ changes what runs as much as an edited one.
    untracked = sum(1 for line in lines if line.startswith("??") and not line.rstrip().endswith(".pyc"))
    changed = sum(1 for line in lines if not line.startswith("??"))
    return {"commit": commit, "dirty": bool(changed or untracked), "untracked": untracked}


def hubtool_identity() -> dict[str, Any]:
    state = git_state()
    return {"version": hubtool_version(), "git_commit": state["commit"], "git_dirty": state["dirty"],
            "untracked": state["untracked"]}
