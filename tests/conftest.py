"""Shared fixtures: the reference family figures and built model folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "model_configs"

# DESIGN.md's reference table: (n_embd, n_layer, n_head, n_inner, params, safetensors bytes), smallest
# first. Bytes are measured with hubtool's metadata in the header (version, spec sha256, seed): each is
# DESIGN.md's figure plus exactly that header growth (tests/test_build.py checks the relation).
REFERENCE = {
    "tiny-gpt2": (2, 2, 2, 8, 102_714, 413_416),
    "gpt2-5m": (80, 12, 2, 320, 5_036_720, 20_161_216),
    "gpt2-25m": (384, 3, 2, 1_536, 25_016_064, 100_068_328),
    "gpt2-50m": (512, 8, 2, 2_048, 51_475_968, 205_913_952),
    "gpt2-100m": (768, 8, 2, 3_072, 96_088_320, 384_363_464),
}
ALL_NAMES = list(REFERENCE)


@pytest.fixture(autouse=True)
def _offline_and_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test may reach a real hub, nor read or write the user's caches."""
    home = tmp_path_factory.getbasetemp() / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HUBTOOL_ARTIFACTS", raising=False)
    if "HUBTOOL_CONFIGS" not in os.environ:  # a module fixture may point at its own specs
        monkeypatch.setenv("HUBTOOL_CONFIGS", str(CONFIGS))


@pytest.fixture(scope="session")
def family_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every reference spec built once, into a session-wide artifacts root."""
    from hubtool.build.folder import build_model
    from hubtool.spec.catalog import resolve_spec

    root = tmp_path_factory.mktemp("artifacts")
    for name in ALL_NAMES:
        build_model(resolve_spec(name, CONFIGS), root=root)
    return root


@pytest.fixture(scope="session")
def tiny_dir(family_dir: Path) -> Path:
    return family_dir / "tiny-gpt2"


def run_hubtool(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``hubtool ARGS`` in a real subprocess, as a user would run it."""
    full_env = {**os.environ, "HUBTOOL_CONFIGS": str(CONFIGS), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hubtool", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )
