"""Helpers for the verify tests: built models and deliberately broken copies of them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

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
