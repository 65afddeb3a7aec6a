"""Fixtures for the hub tests: built models, an isolated huggingface_hub home, and a staging
hub running on 127.0.0.1 on a free port. Nothing here talks to any other address."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hubtool.hub.server import Limits, StagingHub
from tests.conftest import linked_copy

REPO_ROOT = Path(__file__).resolve().parent.parent
def write_card(folder: Path) -> None:
    """The card `hubtool card` renders for the folder's files (what push's gate accepts for its repo)."""
    from hubtool.card.render import card_command
    from hubtool.spec.catalog import resolve_spec

    card_command(resolve_spec(folder.name), root=folder.parent)


@pytest.fixture
def models(request, built, tmp_path) -> Path:
    """Private copies of the built models, each with its rendered card: tiny-gpt2 (tests change
    its files), and gpt2-25m for tests marked family (its weights are hard-linked: read-only)."""
    root = tmp_path / "artifacts"
    root.mkdir()
    shutil.copytree(built("tiny-gpt2"), root / "tiny-gpt2", copy_function=shutil.copy2)
    write_card(root / "tiny-gpt2")
    if request.node.get_closest_marker("family"):
        write_card(linked_copy(built("gpt2-25m"), root / "gpt2-25m"))
    return root


@pytest.fixture(autouse=True)
def hf_home(tmp_path, monkeypatch) -> Path:
    """huggingface_hub's home, cache and token all inside tmp_path; no token, no endpoint set."""
    from huggingface_hub import constants

    home = tmp_path / "hf-home"
    home.mkdir()
    for var in ("HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return home


class RunningHub:
    """A staging hub in a thread, with its log lines kept for assertions."""

    def __init__(self, root: Path, token_file: Path | None = None, limits: Limits | None = None) -> None:
        self.root = root
        self.token_file = token_file
        self.limits = limits
        self.lines: list[str] = []
        self.running = True
        self.hub = self._start()

    def _start(self) -> StagingHub:
        return StagingHub(self.root, host="127.0.0.1", port=0, token_file=self.token_file, log=self.lines.append,
                          limits=self.limits).start()

    @property
    def url(self) -> str:
        return self.hub.url

    @property
    def store(self):
        return self.hub.store

    def restart(self) -> None:
        self.hub.stop()
        self.hub = self._start()

    def stop(self) -> None:
        if self.running:
            self.hub.stop()
            self.running = False


@pytest.fixture
def hub(tmp_path):
    running = RunningHub(tmp_path / "hub-root")
    yield running
    running.stop()


@pytest.fixture
def token_hub(tmp_path):
    """A hub that needs a token to write and hides private repos from others."""
    token_file = tmp_path / "tokens.txt"
    token_file.write_text("# accepted tokens\nhf_stagingSECRETtoken123\n")
    running = RunningHub(tmp_path / "hub-root", token_file=token_file)
    running.token = "hf_stagingSECRETtoken123"
    yield running
    running.stop()


# token, user, organisations: the users of ``users_hub`` (the token file format of `hub serve`)
USERS = {
    "alice": ("hf_aliceTOKEN0123456789", "research,shared"),
    "bob": ("hf_bobTOKEN0123456789", ""),
    "carol": ("hf_carolTOKEN0123456789", "shared"),
    "admin": ("hf_adminTOKEN0123456789", "*"),
}


@pytest.fixture
def users_hub(tmp_path):
    """A hub with users alice (orgs research, shared), bob, carol (org shared) and admin (*)."""
    token_file = tmp_path / "users.txt"
    token_file.write_text("# token user orgs\n" + "".join(f"{tok} {user} {orgs}\n" for user, (tok, orgs) in USERS.items()))
    running = RunningHub(tmp_path / "hub-root", token_file=token_file)
    running.tokens = {user: tok for user, (tok, _) in USERS.items()}
    yield running
    running.stop()


def start_serve(root: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``hubtool hub serve --root ROOT --port 0 ARGS`` in its own process; (process, URL from its banner)."""
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("hubtool")), "hub", "serve", "--root", str(root), "--port", "0", *args],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    banner = proc.stderr.readline()
    if not banner.startswith("Staging hub at http://127.0.0.1:"):
        proc.kill()
        proc.wait(timeout=30)
        raise AssertionError(f"hub serve did not start: {banner}{proc.stderr.read()}")
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining the request log
    return proc, banner.split()[3]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """``hubtool ARGS`` in a subprocess (a real process: real exit code, real stderr)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(Path(sys.executable).with_name("hubtool")), *args], capture_output=True, text=True,
        env=full_env, cwd=REPO_ROOT, timeout=timeout,
    )


def hf_cli(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    """The official ``hf`` CLI shipped with huggingface_hub."""
    hf = Path(sys.executable).with_name("hf")
    return subprocess.run([str(hf), *args], capture_output=True, text=True, env={**os.environ, **env},
                          cwd=REPO_ROOT, timeout=timeout)


def same_files(a: Path, b: Path, names: list[str]) -> bool:
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
