"""The staging hub itself: restarts, a client killed mid-upload, malformed requests, private
repos and tokens, and the official `hf upload` / `hf download` commands against it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from hubtool.errors import HubError
from hubtool.hub.pull import pull_repo
from hubtool.hub.push import push_model, repo_files
from tests.hub_fixtures import (  # noqa: F401 - fixtures
    REPO_ROOT,
    hf_cli,
    hf_home,
    hub,
    models,
    run_cli,
    same_files,
    token_hub,
)

pytestmark = pytest.mark.slow


def names(folder: Path) -> list[str]:
    return [p.relative_to(folder).as_posix() for p in repo_files(folder)]


def request(url: str, *, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    """(status, headers, body) of one raw HTTP request; 4xx/5xx are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_restart_keeps_every_commit(models, hub, tmp_path):
    folder = models / "tiny-gpt2"
    first = push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True)
    push_model(folder, repo_id="org/tiny", endpoint=hub.url, revision="dev", force=True)
    hub.restart()
    api = HfApi(endpoint=hub.url)
    assert api.model_info("org/tiny").sha == first.commit_oid
    assert {b.name for b in api.list_repo_refs("org/tiny").branches} == {"main", "dev"}
    assert len(api.list_repo_commits("org/tiny")) == 2
    pulled = pull_repo("org/tiny", endpoint=hub.url)
    assert same_files(folder, pulled, names(folder))
    assert push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True).status == "up-to-date"


@pytest.mark.family  # pushes gpt2-25m
def test_client_killed_during_lfs_upload_leaves_previous_commit(models, hub, monkeypatch):
    tiny = models / "tiny-gpt2"
    first = push_model(tiny, repo_id="org/m", endpoint=hub.url, force=True)
    store = hub.hub.store
    uploading = threading.Event()
    original = store.new_upload

    def slow_upload():
        upload = original()
        write = upload.write

        def slow_write(chunk):  # stretch the 100 MB upload over a few seconds so the client can be killed during it
            uploading.set()
            time.sleep(0.03)
            write(chunk)

        upload.write = slow_write
        return upload

    monkeypatch.setattr(store, "new_upload", slow_upload)
    client = subprocess.Popen(
        [str(Path(sys.executable).with_name("hubtool")), "push", "gpt2-25m", "--out", str(models), "--repo-id", "org/m", "--force", "--endpoint", hub.url],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert uploading.wait(timeout=180), "the LFS upload never started"
        time.sleep(0.3)
        client.kill()
    finally:
        client.wait(timeout=30)
    deadline = time.time() + 20
    while any((store.root / "tmp").iterdir()) and time.time() < deadline:
        time.sleep(0.1)
    assert not any((store.root / "tmp").iterdir()), "the interrupted upload left a temp file"
    big_sha = json.loads((models / "gpt2-25m" / "provenance.json").read_text())["files"]["model.safetensors"]["sha256"]
    assert not store.has_blob(big_sha)
    api = HfApi(endpoint=hub.url)
    assert api.model_info("org/m").sha == first.commit_oid
    assert len(api.list_repo_commits("org/m")) == 2
    assert same_files(tiny, pull_repo("org/m", endpoint=hub.url), names(tiny))
    puts = [line.split() for line in hub.lines if " PUT " in line]
    assert puts and puts[-1][3] in {"400", "499"}  # the cut-off upload, refused


def test_malformed_requests_get_4xx_and_the_server_keeps_serving(hub):
    HfApi(endpoint=hub.url).create_repo("org/x")
    base = hub.url
    cases = [
        ("POST", "/api/models/org/x/commit/main", b"not json\n", 400),
        ("POST", "/api/models/org/x/commit/main",
         b'{"key":"header","value":{"summary":"s"}}\n{"key":"file","value":{"path":"../escape","content":"eA=="}}\n', 400),
        ("POST", "/api/models/org/x/commit/main",
         b'{"key":"header","value":{"summary":"s"}}\n{"key":"lfsFile","value":{"path":"w.bin","oid":"' + b"a" * 64
         + b'","size":3}}\n', 422),
        ("POST", "/api/repos/create", b"[1, 2", 400),
        ("GET", "/api/models/org/x/tree/nope", None, 404),
        ("GET", "/api/models/org/nope", None, 404),
        ("PUT", "/org/x.git/info/lfs/objects/" + "b" * 64, b"abc", 403),
        ("GET", "/no/such/endpoint/at/all", None, 404),
    ]
    for method, path, body, status in cases:
        got, headers, payload = request(base + path, method=method, body=body)
        assert got == status, (method, path, got, payload)
        assert json.loads(payload)["error"]
    assert request(base + "/api/models/org/nope")[1]["X-Error-Code"] == "RepoNotFound"
    assert request(base + "/api/models/org/x/revision/nope")[1]["X-Error-Code"] == "RevisionNotFound"
    assert HfApi(endpoint=hub.url).model_info("org/x").sha  # still serving
    assert len(hub.lines) >= len(cases) + 3
    assert all(line.startswith("127.0.0.1 ") and "?" not in line for line in hub.lines)


def test_private_repo_needs_the_token(models, token_hub):
    folder = models / "tiny-gpt2"
    token = token_hub.token
    with pytest.raises(HubError, match=r"requires a token \(401 Unauthorized\)"):
        push_model(folder, repo_id="org/secret", endpoint=token_hub.url, private=True, force=True)
    pushed = push_model(folder, repo_id="org/secret", endpoint=token_hub.url, private=True, token=token, force=True)
    assert pushed.status == "pushed"
    assert HfApi(endpoint=token_hub.url, token=token).model_info("org/secret").private is True
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=token_hub.url, token=False).model_info("org/secret")
    status, _, _ = request(f"{token_hub.url}/org/secret/resolve/main/config.json")
    assert status == 404
    with pytest.raises(HubError, match=r"^repo 'org/secret' not found at http://127\.0\.0\.1:\d+; if it is private"):
        pull_repo("org/secret", endpoint=token_hub.url)
    assert same_files(folder, pull_repo("org/secret", endpoint=token_hub.url, token=token), names(folder))


def test_token_never_appears_in_output_logs_or_files(models, token_hub, hf_home, tmp_path):
    token = token_hub.token
    env = {"HF_TOKEN": token, "HF_HUB_DISABLE_XET": "1"}
    outputs = []
    for args in (
        ["push", "tiny-gpt2", "--out", str(models), "--repo-id", "org/p", "--force", "--private", "--endpoint", token_hub.url],
        ["push", "tiny-gpt2", "--out", str(models), "--repo-id", "org/p", "--force", "--endpoint", token_hub.url, "--dry-run"],
        ["push", "tiny-gpt2", "--out", str(models), "--repo-id", "org/p", "--force", "--endpoint", token_hub.url],
    ):
        done = run_cli(*args, env=env)
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
    assert "verified 10 remote files" in outputs[0] and "is up to date" in outputs[4]
    down = hf_cli("download", "org/p", "--local-dir", str(tmp_path / "dl"), env={**env, "HF_ENDPOINT": token_hub.url})
    assert down.returncode == 0, down.stderr
    outputs += [down.stdout, down.stderr]
    wrong = run_cli("push", "tiny-gpt2", "--out", str(models), "--repo-id", "org/p", "--force", "--endpoint", token_hub.url,
                    env={"HF_TOKEN": "hf_wrongTOKENvalue999"})
    assert wrong.returncode == 3
    outputs += [wrong.stdout, wrong.stderr]
    assert "hf_wrongTOKENvalue999" not in wrong.stdout + wrong.stderr
    assert not any(token in text for text in outputs)
    assert not any(token in line for line in token_hub.lines)
    for folder in (token_hub.root, hf_home, models, tmp_path / "dl"):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert token.encode() not in path.read_bytes(), path


@pytest.mark.family  # pushes gpt2-25m
def test_hf_upload_and_download_work_against_the_hub(models, hub, tmp_path):
    folder = models / "tiny-gpt2"
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1"}
    up = hf_cli("upload", "org/via-hf", str(folder), ".", "--commit-message", "via hf", env=env)
    assert up.returncode == 0, up.stderr
    assert f"{hub.url}/org/via-hf" in up.stdout
    # hubtool sees exactly what hf uploaded: nothing to push, byte-identical pull
    assert push_model(folder, repo_id="org/via-hf", endpoint=hub.url, force=True).status == "up-to-date"
    assert same_files(folder, pull_repo("org/via-hf", endpoint=hub.url), names(folder))
    # and hf downloads what hubtool pushed
    push_model(models / "gpt2-25m", repo_id="org/by-hubtool", endpoint=hub.url, force=True)
    down = hf_cli("download", "org/by-hubtool", "--local-dir", str(tmp_path / "dl"), env=env)
    assert down.returncode == 0, down.stderr
    assert same_files(models / "gpt2-25m", tmp_path / "dl", names(models / "gpt2-25m"))
    branch = hf_cli("upload", "org/via-hf", str(folder / "config.json"), "config.json", "--revision", "dev", env=env)
    assert branch.returncode == 0, branch.stderr
    assert {b.name for b in HfApi(endpoint=hub.url).list_repo_refs("org/via-hf").branches} == {"main", "dev"}


def test_hub_serve_command_serves_and_stops_cleanly(models, tmp_path):
    serve = subprocess.Popen(
        [str(Path(sys.executable).with_name("hubtool")), "hub", "serve", "--root", str(tmp_path / "root"), "--port", "0"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = serve.stderr.readline()
        assert first.startswith("Staging hub at http://127.0.0.1:"), first
        url = first.split()[3]
        assert push_model(models / "tiny-gpt2", repo_id="org/t", endpoint=url, force=True).status == "pushed"
    finally:
        serve.terminate()
        _, rest = serve.communicate(timeout=30)
    assert serve.returncode == 0
    lines = rest.splitlines()
    assert lines[-1] == "Staging hub stopped."
    assert any(line.startswith("127.0.0.1 POST /api/models/org/t/commit/main 200 ") for line in lines)
    assert (tmp_path / "root" / "repos" / "org" / "t" / "refs.json").is_file()
    missing = run_cli("hub", "serve", "--token-file", str(tmp_path / "absent.txt"))
    assert missing.returncode == 3 and missing.stderr.startswith("Error: cannot read token file ")


def test_lfs_objects_are_scoped_to_their_repo(models, hub):
    folder = models / "tiny-gpt2"
    push_model(folder, repo_id="org/a", endpoint=hub.url, force=True)
    HfApi(endpoint=hub.url).create_repo("org/b")
    oid = json.loads((folder / "provenance.json").read_text())["files"]["model.safetensors"]["sha256"]
    size = (folder / "model.safetensors").stat().st_size
    batch = json.dumps({"operation": "upload", "objects": [{"oid": oid, "size": size}]}).encode()
    for repo, must_upload in (("org/a", False), ("org/b", True)):
        status, _, body = request(f"{hub.url}/{repo}.git/info/lfs/objects/batch", method="POST", body=batch)
        assert status == 200 and ("actions" in json.loads(body)["objects"][0]) is must_upload
    commit = (b'{"key":"header","value":{"summary":"borrow"}}\n{"key":"lfsFile","value":{"path":"w.safetensors",'
              b'"algo":"sha256","oid":"' + oid.encode() + b'","size":' + str(size).encode() + b"}}\n")
    status, _, body = request(f"{hub.url}/api/models/org/b/commit/main", method="POST", body=commit)
    assert status == 422 and b"was not uploaded to org/b" in body
