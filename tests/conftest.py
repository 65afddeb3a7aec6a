"""Shared fixtures: the reference family figures, built model folders, and the test lanes.

Every reference model is built at most ONCE per run, lazily, on first use, into one
session-wide artifacts root. Those folders are shared and read-only: a test that writes
into a model folder (verify writes verification.json, card writes README.md, ...) takes a
private copy first (``tiny_copy``, ``private_models``, ``linked_copy``). A check at the end
of the run fails if any shared folder was changed.

Lanes (markers registered in pyproject.toml; ``make test-fast`` deselects all three):
  slow    more than a few seconds even on tiny-gpt2 (torch.compile, the demo, many processes)
  family  needs gpt2-25m, gpt2-50m or gpt2-100m built; added automatically to tests that
          request their fixtures, and refused (with a message) to tests that build them
          through ``built``/``private_models`` without the marker
  vllm    starts vLLM when it is installed
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
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

SMALL_MODEL = "tiny-gpt2"  # the only model the fast lane builds
# Session fixtures of the bigger models: a test that requests one is in the family lane.
FAMILY_FIXTURES = {"gpt2_25m_dir": "gpt2-25m", "gpt2_50m_dir": "gpt2-50m", "gpt2_100m_dir": "gpt2-100m",
                   "family_dir": None}
# Only the weights are hard-linked into private copies: tests rewrite the small files in place.
LINKED_FILES = ("model.safetensors",)


def model_params(names: list[str] | None = None) -> list:
    """``names`` (default: every reference model) as parametrize values; the big ones marked family."""
    return [pytest.param(n, id=n, marks=() if n == SMALL_MODEL else pytest.mark.family) for n in names or ALL_NAMES]


MODEL_PARAMS = model_params()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark family every test that uses a bigger model's fixture (before -m deselects)."""
    for item in items:
        if set(getattr(item, "fixturenames", ())) & FAMILY_FIXTURES.keys() and not item.get_closest_marker("family"):
            item.add_marker(pytest.mark.family)


# -- the order xdist hands out test files -------------------------------------------------------
# make test gives whole files to two workers (--dist loadfile), in collection order when xdist's own
# reordering (by number of tests per file) is off. The files take from 1 to 400 s, so a long one
# handed out last runs alone at the end: longest first. The seconds are recorded, not guessed:
# `make test PYTEST_ARGS=--record-durations` rewrites the file. A stale or missing entry only costs
# speed; a file not in it counts as the median.
DURATIONS = REPO / "tests" / "durations.json"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--record-durations", action="store_true",
                     help=f"write each test file's seconds (setup, call, teardown) to {DURATIONS.name}, "
                          "which orders the files that make test spreads over its workers: longest first")


class _LongestFilesFirst:
    """After random-order's shuffle: files by recorded seconds, the shuffled order kept within each file."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        import statistics

        default = statistics.median(self.seconds.values())
        first: dict[str, int] = {}
        for index, item in enumerate(items):
            first.setdefault(_file_of(item), index)
        items.sort(key=lambda item: (-self.seconds.get(_file_of(item), default), first[_file_of(item)]))


class _RecordDurations:
    """Sums each file's report durations in the process that prints the results (xdist's controller)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.split("::")[0]
        self.seconds[name] = self.seconds.get(name, 0.0) + report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Files that ran replace their entries; the others keep theirs (so record on the whole suite)."""
        import datetime
        import json

        recorded = json.loads(DURATIONS.read_text()).get("seconds", {}) if DURATIONS.is_file() else {}
        recorded.update({name: round(total, 1) for name, total in self.seconds.items()})
        DURATIONS.write_text(json.dumps({
            "command": "make test PYTEST_ARGS=--record-durations",
            "measured": f"{datetime.date.today()}, {os.cpu_count()} cores",
            "seconds": dict(sorted(recorded.items(), key=lambda kv: -kv[1])),
        }, indent=1) + "\n")


def _file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]


def pytest_configure(config: pytest.Config) -> None:
    worker = hasattr(config, "workerinput")  # an xdist worker: the controller records
    if config.getoption("--record-durations") and not worker:
        config.pluginmanager.register(_RecordDurations(), "hubtool-record-durations")
    # Only where files are spread over workers (where xdist reordered them anyway): one process keeps
    # random-order's shuffled file order.
    if (worker or getattr(config.option, "dist", "no") != "no") and DURATIONS.is_file():
        import json

        seconds = json.loads(DURATIONS.read_text()).get("seconds") or {}
        if seconds:
            config.pluginmanager.register(_LongestFilesFirst(seconds), "hubtool-longest-files-first")


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


# -- built models ------------------------------------------------------------------------------
def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


class SessionModels:
    """The reference models, each built on first request into one root, never twice."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: dict[str, dict[str, tuple[int, int]]] = {}

    def path(self, name: str) -> Path:
        if name not in self.built:
            from hubtool.build.folder import build_model
            from hubtool.spec.catalog import resolve_spec

            folder = build_model(resolve_spec(name, CONFIGS), root=self.root).path
            self.built[name] = _snapshot(folder)
        return self.root / name

    def changed(self) -> list[str]:
        """Shared folders whose files differ from what the build left (a test wrote into one)."""
        return [name for name, files in self.built.items() if _snapshot(self.root / name) != files]


@pytest.fixture(scope="session")
def session_models(tmp_path_factory: pytest.TempPathFactory):
    """The one session artifacts root. At the end: did any test change a shared folder?"""
    models = SessionModels(tmp_path_factory.mktemp("artifacts"))
    yield models
    changed = models.changed()
    assert not changed, f"tests wrote into the shared model folder(s) {changed}: copy a model before changing it"


def _require_family(request: pytest.FixtureRequest, name: str) -> None:
    if name != SMALL_MODEL and request.node.get_closest_marker("family") is None:
        pytest.fail(f"{request.node.nodeid} builds {name}: mark it @pytest.mark.family (the fast lane builds "
                    f"{SMALL_MODEL} only)", pytrace=False)


@pytest.fixture
def built(request: pytest.FixtureRequest, session_models: SessionModels) -> Callable[[str], Path]:
    """``built(name)``: the shared, read-only folder of a reference model, built on first use."""

    def get(name: str) -> Path:
        _require_family(request, name)
        return session_models.path(name)

    return get


@pytest.fixture(scope="session")
def tiny_dir(session_models: SessionModels) -> Path:
    """tiny-gpt2, shared and read-only (copy it before changing anything)."""
    return session_models.path("tiny-gpt2")


@pytest.fixture(scope="session")
def gpt2_25m_dir(session_models: SessionModels) -> Path:
    return session_models.path("gpt2-25m")


@pytest.fixture(scope="session")
def gpt2_50m_dir(session_models: SessionModels) -> Path:
    return session_models.path("gpt2-50m")


@pytest.fixture(scope="session")
def gpt2_100m_dir(session_models: SessionModels) -> Path:
    return session_models.path("gpt2-100m")


@pytest.fixture(scope="session")
def family_dir(session_models: SessionModels) -> Path:
    """The session root with every reference model built (shared and read-only)."""
    for name in ALL_NAMES:
        session_models.path(name)
    return session_models.root


def linked_copy(src: Path, dst: Path) -> Path:
    """A private copy of a model folder: the weights hard-linked (cheap), every other file copied.

    Hubtool's writers replace files (temp file + rename), which breaks the link; a test that
    rewrites the weights in place must unlink them first.
    """
    dst.mkdir(parents=True)
    for path in sorted(src.iterdir()):
        if path.is_dir():
            shutil.copytree(path, dst / path.name)
        elif path.name in LINKED_FILES:
            os.link(path, dst / path.name)
        else:
            shutil.copy2(path, dst / path.name)
    return dst


@pytest.fixture
def tiny_copy(tiny_dir: Path, tmp_path: Path) -> Path:
    """A private copy of tiny-gpt2 at tmp_path/tiny-gpt2, free to change."""
    return linked_copy(tiny_dir, tmp_path / "tiny-gpt2")


@pytest.fixture
def private_models(built: Callable[[str], Path], tmp_path: Path) -> Callable[..., Path]:
    """``private_models(*names)``: an artifacts root in tmp_path holding private copies of those models."""
    root = tmp_path / "artifacts"

    def make(*names: str) -> Path:
        root.mkdir(exist_ok=True)
        for name in names:
            linked_copy(built(name), root / name)
        return root

    return make


@pytest.fixture(scope="session")
def verify_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compile-cache root for the run's verify and bench calls, as a user's cache would be.

    Under xdist every worker gets the same root (beside the workers' own temp folders), as two
    hubtool commands on one machine share ~/.cache/hubtool: a model compiled by one worker's test
    is loaded from Inductor's cache by the other's instead of being compiled again (Inductor
    writes its cache entries atomically, so concurrent workers are safe).
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent / "hubtool-cache"
        shared.mkdir(exist_ok=True)
        return shared
    return tmp_path_factory.mktemp("hubtool-cache")


def run_hubtool(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``hubtool ARGS`` in a real subprocess, as a user would run it."""
    full_env = {**os.environ, "HUBTOOL_CONFIGS": str(CONFIGS), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hubtool", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )
