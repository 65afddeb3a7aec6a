"""Every operation the staging hub serves, driven by the real huggingface_hub client (one
parametrized table) and by the official `hf` CLI (a second table); plus the commit-id
overwrite attempt that pinning by sha must survive."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hubtool.hub.client import make_api
from tests.hub_fixtures import hf_cli, hf_home, hub  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow

WEIGHTS = bytes(range(256)) * 64  # binary: LFS whatever its size


@pytest.fixture
def seeded(hub, tmp_path):
    """org/m with two commits on main: README.md "v1" + w.safetensors, then README.md "v2"."""
    api = make_api(hub.url)
    api.create_repo("org/m")
    first = api.create_commit("org/m", [CommitOperationAdd("README.md", b"v1\n"),
                                        CommitOperationAdd("w.safetensors", WEIGHTS)], commit_message="first")
    second = api.create_commit("org/m", [CommitOperationAdd("README.md", b"v2\n")], commit_message="second")
    return {"api": api, "url": hub.url, "first": first.oid, "second": second.oid, "cache": tmp_path / "cache",
            "hub": hub}


def download(ctx, name: str, revision: str | None = None) -> bytes:
    path = hf_hub_download("org/m", name, revision=revision, endpoint=ctx["url"], cache_dir=ctx["cache"])
    with open(path, "rb") as fh:
        return fh.read()


def op_create_repo(ctx):
    ctx["api"].create_repo("org/new", private=True)
    info = ctx["api"].model_info("org/new")
    assert (info.id, info.private, len(info.sha)) == ("org/new", True, 40)
    with pytest.raises(HfHubHTTPError) as err:
        ctx["api"].create_repo("org/new")
    assert err.value.response.status_code == 409
    assert ctx["api"].create_repo("org/new", exist_ok=True).repo_id == "org/new"


def op_upload_and_download(ctx):
    assert download(ctx, "README.md") == b"v2\n"
    assert download(ctx, "w.safetensors") == WEIGHTS
    sibling = {s.rfilename: s for s in ctx["api"].model_info("org/m", files_metadata=True).siblings}
    assert sibling["w.safetensors"].lfs.size == len(WEIGHTS)
    assert sibling["README.md"].lfs is None and sibling["README.md"].size == 3


def op_delete_file(ctx):
    ctx["api"].create_commit("org/m", [CommitOperationDelete("README.md")], commit_message="drop")
    assert ctx["api"].list_repo_files("org/m") == ["w.safetensors"]
    with pytest.raises(EntryNotFoundError):
        download(ctx, "README.md")


def op_tree_and_paths_info(ctx):
    ctx["api"].upload_file(path_or_fileobj=b"x", path_in_repo="sub/dir/x.txt", repo_id="org/m")
    top = {e.path for e in ctx["api"].list_repo_tree("org/m")}
    assert top == {"README.md", "w.safetensors", "sub"}
    deep = {e.path for e in ctx["api"].list_repo_tree("org/m", recursive=True)}
    assert deep == {"README.md", "w.safetensors", "sub", "sub/dir", "sub/dir/x.txt"}
    info = ctx["api"].get_paths_info("org/m", ["w.safetensors", "sub", "absent"])
    assert [i.path for i in info] == ["w.safetensors", "sub"]


def op_list_commits(ctx):
    commits = ctx["api"].list_repo_commits("org/m")
    assert [c.title for c in commits] == ["second", "first", "initial commit"]
    assert [c.commit_id for c in commits[:2]] == [ctx["second"], ctx["first"]]


def op_download_by_commit(ctx):
    assert download(ctx, "README.md", ctx["first"]) == b"v1\n"
    with pytest.raises(RevisionNotFoundError):
        download(ctx, "README.md", "f" * 40)


def op_branch_create_list_delete(ctx):
    api = ctx["api"]
    api.create_branch("org/m", branch="feature/x", revision=ctx["first"])
    refs = {b.name: b.target_commit for b in api.list_repo_refs("org/m").branches}
    assert refs == {"main": ctx["second"], "feature/x": ctx["first"]}
    assert download(ctx, "README.md", "feature/x") == b"v1\n"
    api.create_branch("org/m", branch="feature/x", exist_ok=True)
    api.delete_branch("org/m", branch="feature/x")
    assert [b.name for b in api.list_repo_refs("org/m").branches] == ["main"]
    with pytest.raises(HfHubHTTPError) as err:
        api.delete_branch("org/m", branch="main")
    assert err.value.response.status_code == 403


def op_tag_download_delete(ctx):
    api = ctx["api"]
    api.create_tag("org/m", tag="v1.0", revision=ctx["first"], tag_message="first release")
    api.upload_file(path_or_fileobj=b"v3\n", path_in_repo="README.md", repo_id="org/m")
    assert download(ctx, "README.md", "v1.0") == b"v1\n"
    assert [(t.name, t.ref, t.target_commit) for t in api.list_repo_refs("org/m").tags] == [
        ("v1.0", "refs/tags/v1.0", ctx["first"])]
    assert api.model_info("org/m", revision="v1.0").sha == ctx["first"]
    with pytest.raises(HfHubHTTPError) as err:
        api.create_tag("org/m", tag="v1.0")
    assert err.value.response.status_code == 409
    api.delete_tag("org/m", tag="v1.0")
    assert api.list_repo_refs("org/m").tags == []
    with pytest.raises(RevisionNotFoundError):
        api.model_info("org/m", revision="v1.0")


def op_pull_request_open_list_details(ctx):
    api = ctx["api"]
    pr = api.create_commit("org/m", [CommitOperationAdd("extra.txt", b"proposed\n")], commit_message="Add extra",
                           create_pr=True)
    assert (pr.pr_num, pr.pr_revision) == (1, "refs/pr/1")
    assert api.model_info("org/m").sha == ctx["second"]  # main untouched
    prs = api.list_repo_refs("org/m", include_pull_requests=True).pull_requests
    assert [(p.ref, p.target_commit) for p in prs] == [("refs/pr/1", pr.oid)]
    listed = list(api.get_repo_discussions("org/m"))
    assert [(d.num, d.title, d.status, d.is_pull_request, d.author) for d in listed] == [
        (1, "Add extra", "open", True, "staging")]
    details = api.get_discussion_details("org/m", 1)
    assert (details.target_branch, details.merge_commit_oid, details.conflicting_files) == ("refs/heads/main", None, [])
    assert [(e.type, e.oid) for e in details.events] == [("commit", pr.oid)]
    assert download(ctx, "extra.txt", "refs/pr/1") == b"proposed\n"


def op_pull_request_commit_and_merge(ctx):
    api = ctx["api"]
    api.create_commit("org/m", [CommitOperationAdd("extra.txt", b"one\n")], commit_message="Add extra", create_pr=True)
    api.create_commit("org/m", [CommitOperationAdd("more.txt", b"two\n")], commit_message="More", revision="refs/pr/1")
    api.upload_file(path_or_fileobj=b"main moved\n", path_in_repo="main.txt", repo_id="org/m")
    api.merge_pull_request("org/m", 1)
    details = api.get_discussion_details("org/m", 1)
    assert details.status == "merged"
    assert details.merge_commit_oid == api.model_info("org/m").sha
    assert sorted(api.list_repo_files("org/m")) == ["README.md", "extra.txt", "main.txt", "more.txt", "w.safetensors"]
    assert [p.ref for p in api.list_repo_refs("org/m", include_pull_requests=True).pull_requests] == ["refs/pr/1"]
    with pytest.raises(HfHubHTTPError) as err:
        api.merge_pull_request("org/m", 1)
    assert err.value.response.status_code == 403


def op_pull_request_conflict_and_close(ctx):
    api = ctx["api"]
    api.create_commit("org/m", [CommitOperationAdd("README.md", b"from the PR\n")], commit_message="PR", create_pr=True)
    api.upload_file(path_or_fileobj=b"from main\n", path_in_repo="README.md", repo_id="org/m")
    assert api.get_discussion_details("org/m", 1).conflicting_files == ["README.md"]
    head = api.model_info("org/m").sha
    with pytest.raises(HfHubHTTPError) as err:
        api.merge_pull_request("org/m", 1)
    assert err.value.response.status_code == 409 and api.model_info("org/m").sha == head
    api.change_discussion_status("org/m", 1, new_status="closed")
    assert [d.status for d in api.get_repo_discussions("org/m")] == ["closed"]


def op_parent_commit(ctx):
    api = ctx["api"]
    ok = api.create_commit("org/m", [CommitOperationAdd("a.txt", b"a")], commit_message="a", parent_commit=ctx["second"])
    for stale, status in ((ctx["second"], 412), (ok.oid[:5], 400), (ok.oid[:12], 400)):
        with pytest.raises(HfHubHTTPError) as err:
            api.create_commit("org/m", [CommitOperationAdd("b.txt", b"b")], commit_message="b", parent_commit=stale)
        assert err.value.response.status_code == status, stale
    assert api.model_info("org/m").sha == ok.oid
    one_char = b'{"key":"header","value":{"summary":"s","parentCommit":"%s"}}\n' % ok.oid[:1].encode()
    status, _ = raw_post(ctx["url"] + "/api/models/org/m/commit/main", one_char)
    assert status == 400 and api.model_info("org/m").sha == ok.oid


def raw_post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def op_delete_repo(ctx):
    api = ctx["api"]
    api.delete_repo("org/m")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/m")
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo("org/m")
    api.delete_repo("org/m", missing_ok=True)
    api.create_repo("org/m")  # the name is free again, with a fresh history
    assert len(api.list_repo_commits("org/m")) == 1


def op_private_toggle(ctx):
    api = ctx["api"]
    api.update_repo_settings("org/m", private=True)
    assert api.model_info("org/m").private is True
    api.update_repo_settings("org/m", private=False)
    assert api.model_info("org/m").private is False


def op_move_repo(ctx):
    api = ctx["api"]
    api.move_repo("org/m", "other/renamed")
    assert api.model_info("other/renamed").sha == ctx["second"]
    assert [c.commit_id for c in api.list_repo_commits("other/renamed")][:2] == [ctx["second"], ctx["first"]]
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/m")
    api.create_repo("org/m")
    with pytest.raises(HfHubHTTPError) as err:
        api.move_repo("org/m", "other/renamed")
    assert err.value.response.status_code == 409


def op_list_models(ctx):
    api = ctx["api"]
    api.create_repo("org/second")
    api.create_repo("elsewhere/third")
    assert sorted(m.id for m in api.list_models(author="org")) == ["org/m", "org/second"]
    assert [m.id for m in api.list_models(search="third")] == ["elsewhere/third"]
    assert {m.id: m.sha for m in api.list_models(author="org")}["org/m"] == ctx["second"]


def op_whoami(ctx):
    me = make_api(ctx["url"], "any-token-at-all").whoami()
    assert (me["name"], me["type"], me["orgs"]) == ("staging", "user", [])


def op_snapshot_download(ctx):
    folder = snapshot_download("org/m", endpoint=ctx["url"], cache_dir=ctx["cache"], revision=ctx["first"])
    with open(f"{folder}/README.md", "rb") as fh:
        assert fh.read() == b"v1\n"


def op_exists_checks(ctx):
    api = ctx["api"]
    assert api.repo_exists("org/m") and not api.repo_exists("org/none")
    assert api.file_exists("org/m", "w.safetensors") and not api.file_exists("org/m", "nope.txt")
    assert api.revision_exists("org/m", ctx["first"]) and not api.revision_exists("org/m", "nope")


OPERATIONS: list[tuple[str, Callable]] = [
    ("create_repo", op_create_repo),
    ("upload+download", op_upload_and_download),
    ("delete_file", op_delete_file),
    ("tree+paths_info", op_tree_and_paths_info),
    ("list_repo_commits", op_list_commits),
    ("download_by_commit", op_download_by_commit),
    ("branch", op_branch_create_list_delete),
    ("tag", op_tag_download_delete),
    ("pr_open_list_details", op_pull_request_open_list_details),
    ("pr_commit_merge", op_pull_request_commit_and_merge),
    ("pr_conflict_close", op_pull_request_conflict_and_close),
    ("parent_commit", op_parent_commit),
    ("delete_repo", op_delete_repo),
    ("private_toggle", op_private_toggle),
    ("move_repo", op_move_repo),
    ("list_models", op_list_models),
    ("whoami", op_whoami),
    ("snapshot_download", op_snapshot_download),
    ("exists", op_exists_checks),
]


@pytest.mark.parametrize("operation", [op for _, op in OPERATIONS], ids=[name for name, _ in OPERATIONS])
def test_operation_with_the_client(seeded, operation):
    operation(seeded)


def test_a_commit_id_cannot_be_overwritten(seeded):
    """Committing (or branching) to revision=<a commit sha> is refused; pinning that sha still
    returns the original bytes."""
    api, first = seeded["api"], seeded["first"]
    with pytest.raises(BadRequestError, match="is a commit id"):
        api.create_commit("org/m", [CommitOperationAdd("README.md", b"attacker\n")], commit_message="x", revision=first)
    with pytest.raises(BadRequestError, match="a 40-hex name is a commit id"):
        api.create_branch("org/m", branch=first)
    with pytest.raises(BadRequestError):
        api.create_tag("org/m", tag="a" * 40)
    commit = b'{"key":"header","value":{"summary":"s"}}\n{"key":"file","value":{"path":"README.md","content":"eA=="}}\n'
    for revision in (first, "a" * 40):  # an unknown 40-hex is no branch name either
        status, body = raw_post(f"{seeded['url']}/api/models/org/m/commit/{revision}", commit)
        assert status == 400 and b"is a commit id" in body
    payload = seeded["cache"].parent / "payload.txt"
    payload.write_text("attacker\n")
    up = hf_cli("upload", "org/m", str(payload), "README.md", "--revision", first, "--commit-message", "x",
                env={"HF_ENDPOINT": seeded["url"], "HF_HUB_DISABLE_XET": "1"})
    assert up.returncode != 0
    assert download(seeded, "README.md", first) == b"v1\n"
    assert {b.name for b in api.list_repo_refs("org/m").branches} == {"main"}
    assert api.model_info("org/m", revision=first).sha == first


def _hf(ctx, *args: str, token: str = "hf_anyTOKEN") -> str:
    done = hf_cli(*args, env={"HF_ENDPOINT": ctx["url"], "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": token,
                              "HF_HUB_DISABLE_PROGRESS_BARS": "1", "NO_COLOR": "1"})
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def cli_tag(ctx):
    _hf(ctx, "repos", "tag", "create", "org/m", "v2", "--revision", ctx["first"])
    listed = _hf(ctx, "repos", "tag", "list", "org/m", "--json")
    assert [t["name"] for t in json.loads(listed)] == ["v2"]
    assert ctx["api"].model_info("org/m", revision="v2").sha == ctx["first"]
    _hf(ctx, "repos", "tag", "delete", "org/m", "v2", "--yes")
    assert ctx["api"].list_repo_refs("org/m").tags == []


def cli_branch(ctx):
    _hf(ctx, "repos", "branch", "create", "org/m", "dev", "--revision", ctx["first"])
    assert {b.name: b.target_commit for b in ctx["api"].list_repo_refs("org/m").branches}["dev"] == ctx["first"]
    _hf(ctx, "repos", "branch", "delete", "org/m", "dev")
    assert [b.name for b in ctx["api"].list_repo_refs("org/m").branches] == ["main"]


def cli_settings_move_delete(ctx):
    _hf(ctx, "repos", "settings", "org/m", "--private")
    assert ctx["api"].model_info("org/m").private is True
    _hf(ctx, "repos", "move", "org/m", "other/m")
    assert ctx["api"].model_info("other/m").sha == ctx["second"]
    _hf(ctx, "repos", "delete", "other/m", "--yes")
    assert not ctx["api"].repo_exists("other/m")


def cli_upload_download(ctx):
    (ctx["cache"].parent / "up").mkdir()
    (ctx["cache"].parent / "up" / "notes.md").write_text("via hf\n")
    _hf(ctx, "upload", "org/m", str(ctx["cache"].parent / "up"), ".", "--commit-message", "via hf")
    _hf(ctx, "download", "org/m", "--local-dir", str(ctx["cache"].parent / "down"))
    assert (ctx["cache"].parent / "down" / "notes.md").read_text() == "via hf\n"
    assert (ctx["cache"].parent / "down" / "w.safetensors").read_bytes() == WEIGHTS


def cli_whoami_and_models(ctx):
    assert "staging" in _hf(ctx, "auth", "whoami")
    listed = json.loads(_hf(ctx, "models", "ls", "--author", "org", "--json"))
    assert [m["id"] for m in listed] == ["org/m"]


def cli_pull_request(ctx):
    (ctx["cache"].parent / "pr.txt").write_text("proposal\n")
    _hf(ctx, "upload", "org/m", str(ctx["cache"].parent / "pr.txt"), "pr.txt", "--create-pr", "--commit-message", "P")
    listed = json.loads(_hf(ctx, "discussions", "list", "org/m", "--json"))
    assert [(d["num"], d["title"], d["status"]) for d in listed] == [(1, "P", "open")]
    _hf(ctx, "discussions", "merge", "org/m", "1", "--yes")
    assert "pr.txt" in ctx["api"].list_repo_files("org/m")


CLI_OPERATIONS = [cli_tag, cli_branch, cli_settings_move_delete, cli_upload_download, cli_whoami_and_models,
                  cli_pull_request]


@pytest.mark.parametrize("operation", CLI_OPERATIONS, ids=[op.__name__[4:] for op in CLI_OPERATIONS])
def test_operation_with_the_hf_cli(seeded, operation):
    operation(seeded)
