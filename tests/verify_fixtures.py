"""Helpers for the verify tests: building into a root, copies, and raw safetensors headers to break.

The built models themselves are session fixtures in conftest.py (each built once per run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hubtool.build.folder import build_model
from hubtool.spec.catalog import resolve_spec


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
