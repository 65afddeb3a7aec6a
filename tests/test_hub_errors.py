"""One-line errors, exit code 1 and no traceback: bad or missing token, missing repo or
revision, a closed port, an endpoint that is not a hub, offline mode; repo id parsing."""

from __future__ import annotations

import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hubtool.errors import HubError
from hubtool.hub.pull import is_repo_id, parse_repo_ref, pull_repo
from hubtool.hub.push import push_model
from tests.hub_fixtures import hf_home, hub, models, run_cli, token_hub  # noqa: F401 - fixtures


def one_line_error(done) -> str:
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def not_a_hub(tmp_path):
    """A plain static file server: it answers HTTP, but not the Hub's API."""
    (tmp_path / "www").mkdir()
    handler = type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(tmp_path / "www")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_repo_ids_are_told_apart_from_names_and_paths(tmp_path, monkeypatch):
    assert parse_repo_ref("Crusadersk/tiny-gpt2") == ("Crusadersk/tiny-gpt2", None)
    assert parse_repo_ref("Crusadersk/tiny-gpt2@refs/pr/1") == ("Crusadersk/tiny-gpt2", "refs/pr/1")
    assert is_repo_id("Crusadersk/tiny-gpt2@main")
    assert not is_repo_id("tiny-gpt2") and not is_repo_id("model_configs/tiny-gpt2.yaml")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local" / "model").mkdir(parents=True)
    assert not is_repo_id("local/model") and is_repo_id("local/other")
    with pytest.raises(HubError, match="is not a repo id"):
        parse_repo_ref("a/b/c")


@pytest.mark.slow
def test_bad_and_missing_token(models, token_hub):
    args = ["push", "tiny-gpt2", "--out", str(models), "--repo-id", "org/t", "--force", "--endpoint", token_hub.url]
    bad = one_line_error(run_cli(*args, env={"HF_TOKEN": "hf_notTheRightOne"}))
    assert bad == f"Error: {token_hub.url} rejected the token (401 Unauthorized); check HF_TOKEN or `hf auth login`"
    missing = one_line_error(run_cli(*args))
    assert missing == f"Error: {token_hub.url} requires a token (401 Unauthorized); set HF_TOKEN or run `hf auth login`"


def test_no_token_for_the_hub_fails_before_any_request(models):
    with pytest.raises(HubError, match=r"^no token for https://huggingface.co: set HF_TOKEN or run `hf auth login`$"):
        push_model(models / "tiny-gpt2", repo_id="org/t", force=True)


def test_missing_repo_and_revision(models, hub):
    with pytest.raises(HubError, match=rf"^repo 'org/nope' not found at {hub.url}; if it is private"):
        pull_repo("org/nope", endpoint=hub.url)
    push_model(models / "tiny-gpt2", repo_id="org/t", endpoint=hub.url, force=True)
    with pytest.raises(HubError, match=rf"^revision 'nope' not found in 'org/t' at {hub.url}$"):
        pull_repo("org/t@nope", endpoint=hub.url)


@pytest.mark.slow
def test_closed_port(models, closed_port):
    done = run_cli("push", "tiny-gpt2", "--out", str(models), "--repo-id", "org/t", "--force", "--endpoint", closed_port)
    expected = f"Error: cannot connect to {closed_port} (connection refused or host unreachable); is the hub running?"
    assert one_line_error(done) == expected
    with pytest.raises(HubError) as err:
        pull_repo("org/t", endpoint=closed_port)
    assert f"Error: {err.value}" == expected


@pytest.mark.slow
def test_endpoint_that_is_not_a_hub(models, not_a_hub):
    done = run_cli("push", "tiny-gpt2", "--out", str(models), "--repo-id", "org/t", "--force", "--endpoint", not_a_hub)
    assert one_line_error(done).startswith(f"Error: {not_a_hub} does not look like a Hugging Face Hub")
    with pytest.raises(HubError, match=f"^{not_a_hub} does not look like a Hugging Face Hub"):
        pull_repo("org/t", endpoint=not_a_hub)


def test_offline_mode_uses_only_the_cache(models, hub, monkeypatch):
    push_model(models / "tiny-gpt2", repo_id="org/t", endpoint=hub.url, force=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match=r"^org/t is not in the local cache and offline mode is on"):
        pull_repo("org/t", endpoint=hub.url)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    online = pull_repo("org/t", endpoint=hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.stop()
    assert pull_repo("org/t", endpoint=hub.url) == online


def test_pull_honours_hf_endpoint(models, hub, monkeypatch):
    push_model(models / "tiny-gpt2", repo_id="org/t", endpoint=hub.url, force=True)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    assert (pull_repo("org/t") / "config.json").is_file()
