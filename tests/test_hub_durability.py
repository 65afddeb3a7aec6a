"""One writer per root, and what survives kill -9: a second server on a root refuses to start
(naming the first) until the first dies, however it dies; a server killed during commits
restarts with every acknowledged commit and a consistent repo."""

from __future__ import annotations

import hashlib
import inspect
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from huggingface_hub import CommitOperationAdd, hf_hub_download

from hubtool.errors import HubError
from hubtool.hub.client import make_api
from hubtool.hub.server import StagingHub
from tests.hub_fixtures import REPO_ROOT, hf_home, run_cli, start_serve  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def kill(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_a_second_server_on_the_same_root_is_refused_until_the_first_dies(tmp_path):
    root = tmp_path / "root"
    first, url = start_serve(root)
    try:
        make_api(url).create_repo("org/kept")
        done = run_cli("hub", "serve", "--root", str(root), "--port", "0", timeout=60)
        assert done.returncode == 3 and "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines() == [
            f"Error: {root} is already served by another staging hub (pid {first.pid}, {url}); "
            "stop it first or choose another --root"]
        with pytest.raises(HubError, match=rf"already served by another staging hub \(pid {first.pid}, "):
            StagingHub(root)
        assert make_api(url).model_info("org/kept").id == "org/kept"  # the first one was left alone
    finally:
        kill(first)
    second = StagingHub(root, log=lambda line: None).start()  # the kernel dropped the dead one's lock
    try:
        assert make_api(second.url).model_info("org/kept").id == "org/kept"
    finally:
        second.stop()
    third = StagingHub(root, log=lambda line: None).start()  # and a stopped one releases it too
    third.stop()


COMMITTER = """
import random, sys
from huggingface_hub import CommitOperationAdd
from hubtool.hub.client import make_api
api = make_api(sys.argv[1])
for n in range(60):  # bounded: the server is killed long before
    print("SENDING", n, flush=True)
    ops = [CommitOperationAdd(path, data) for path, data in files(n).items()]
    print("ACK", n, api.create_commit("org/busy", ops, commit_message=f"commit {n}").oid, flush=True)
"""


def files(n: int) -> dict[str, bytes]:
    """Commit ``n``'s files: three regular files of 1 MB and one LFS file, reproducible."""
    rng = random.Random(n)
    out = {f"part-{n}-{i}.txt": rng.randbytes(512 * 1024).hex().encode() for i in range(3)}
    out["weights.safetensors"] = rng.randbytes(256 * 1024)
    return out


def commit_until_killed(proc, url: str, *, delay: float) -> list[tuple[str, int]]:
    """Commit from another process until 3 commits are acknowledged, then SIGKILL the server
    ``delay`` seconds into the next one. Returns the acknowledged commits (id, n)."""
    code = "import random\n" + inspect.getsource(files) + COMMITTER
    client = subprocess.Popen([sys.executable, "-c", code, url],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO_ROOT)
    acknowledged: list[tuple[str, int]] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = client.stdout.readline().split()
            if not line:
                raise AssertionError("the committing client stopped")
            if line[0] == "ACK":
                acknowledged.append((line[2], int(line[1])))
            elif len(acknowledged) >= 3:  # SENDING the next one
                time.sleep(delay)
                kill(proc)
                break
        assert len(acknowledged) >= 3, "commits did not get through"
        time.sleep(0.5)  # an answer that left the server before it died is printed by now
    finally:
        kill(client)
    for line in client.stdout.read().splitlines():  # acknowledged while we slept
        if line.startswith("ACK "):
            acknowledged.append((line.split()[2], int(line.split()[1])))
    return acknowledged


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.3], ids=["early", "middle", "late"])
def test_kill_9_during_commits_keeps_every_acknowledged_commit(tmp_path, delay):
    root = tmp_path / "root"
    proc, url = start_serve(root)
    try:
        make_api(url).create_repo("org/busy")
        settled = commit_until_killed(proc, url, delay=delay)
    finally:
        kill(proc)  # already dead, unless the test failed before killing it

    proc, url = start_serve(root)  # same root: the lock died with the process
    try:
        api = make_api(url)
        history = [c.commit_id for c in api.list_repo_commits("org/busy")]
        acked = [oid for oid, _ in settled]
        newest = history.index(acked[-1])
        assert newest in (0, 1), history  # the commit in flight may have landed, unacknowledged
        assert history[newest:] == [*reversed(acked), history[-1]]  # every acknowledged one, then the initial
        assert api.model_info("org/busy").sha == history[0]
        last_oid, last_n = settled[-1]
        for name, data in files(last_n).items():
            got = hf_hub_download("org/busy", name, revision=last_oid, endpoint=url, cache_dir=tmp_path / "cache")
            with open(got, "rb") as fh:
                assert hashlib.sha256(fh.read()).hexdigest() == hashlib.sha256(data).hexdigest(), name
        assert not any((root / "tmp").iterdir()), "work in progress survived the restart"
        more = api.create_commit("org/busy", [CommitOperationAdd("after.txt", b"after\n")], commit_message="after")
        assert api.model_info("org/busy").sha == more.oid
    finally:
        kill(proc)


OLD_SERVER = "c0962e6"  # the last revision with the http.server staging hub


@pytest.mark.skipif(subprocess.run(["git", "-C", str(REPO_ROOT), "cat-file", "-e", f"{OLD_SERVER}^{{commit}}"],
                                   capture_output=True).returncode != 0, reason=f"{OLD_SERVER} is not in this clone")
def test_a_root_written_by_the_previous_server_is_served(tmp_path):
    old_code = tmp_path / "old-code"
    old_code.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", OLD_SERVER, "hubtool"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old_code)], input=archive, check=True)
    root = tmp_path / "root"
    old = subprocess.Popen([sys.executable, "-m", "hubtool", "hub", "serve", "--root", str(root), "--port", "0"],
                           env={**os.environ, "PYTHONPATH": str(old_code)}, cwd=tmp_path, stderr=subprocess.PIPE,
                           stdout=subprocess.DEVNULL, text=True)
    try:
        url = old.stderr.readline().split()[3]
        api = make_api(url)
        api.create_repo("org/old")
        first = api.create_commit("org/old", [CommitOperationAdd("a.txt", b"old\n")], commit_message="old commit")
        api.create_branch("org/old", branch="dev")
        pr = api.create_commit("org/old", [CommitOperationAdd("b.txt", b"proposed\n")], commit_message="Old PR",
                               create_pr=True)
    finally:
        old.terminate()
        old.wait(timeout=30)

    new = StagingHub(root, log=lambda line: None).start()
    try:
        api = make_api(new.url)
        assert api.model_info("org/old").sha == first.oid
        refs = api.list_repo_refs("org/old", include_pull_requests=True)
        assert {b.name for b in refs.branches} == {"main", "dev"} and refs.tags == []
        assert [(p.ref, p.target_commit) for p in refs.pull_requests] == [("refs/pr/1", pr.oid)]
        assert [(d.num, d.status) for d in api.get_repo_discussions("org/old")] == [(1, "open")]
        api.merge_pull_request("org/old", 1)
        assert sorted(api.list_repo_files("org/old")) == ["a.txt", "b.txt"]
        api.create_tag("org/old", tag="v1", revision=first.oid)
        assert api.model_info("org/old", revision="v1").sha == first.oid
    finally:
        new.stop()
