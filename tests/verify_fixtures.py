"""Helpers for the verify tests: built models and deliberately broken copies of them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from hubtool.build import build_model
from hubtool.catalog import resolve_spec


def build(name: str, root: Path) -> Path:
    return build_model(resolve_spec(name), root=root).path


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def read_header(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_header(path: Path, header: dict, data: bytes) -> None:
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)


def tensor_offsets(path: Path, name: str) -> tuple[int, int]:
    header, _ = read_header(path)
    raw = path.read_bytes()
    base = 8 + int.from_bytes(raw[:8], "little")
    start, end = header[name]["data_offsets"]
    return base + start, base + end


def child_pids(marker: str = "hubtool.isolate") -> list[int]:
    """Our own child processes whose command line contains ``marker``."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and marker in cmd:
            found.append(int(entry.name))
    return found


def kill_child_when_started(delay: float = 1.0, limit: float = 120.0) -> threading.Thread:
    """SIGKILL the next isolated worker this process starts, ``delay`` seconds after it appears."""

    def hunt() -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            pids = child_pids()
            if pids:
                time.sleep(delay)
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                return
            time.sleep(0.05)

    thread = threading.Thread(target=hunt, daemon=True)
    thread.start()
    return thread


# -- fixtures (imported by the verify test modules) --------------------------------------------
@pytest.fixture(scope="session")
def built_root(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def tiny_model(built_root):
    return build("tiny-gpt2", built_root)


@pytest.fixture(scope="session")
def gpt2_25m(built_root):
    return build("gpt2-25m", built_root)


@pytest.fixture(scope="session")
def verify_cache(tmp_path_factory):
    """Inductor caches kept across a module's verify runs, as a user's cache would be."""
    return tmp_path_factory.mktemp("hubtool-cache")
