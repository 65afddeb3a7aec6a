"""Who may do what on a staging hub with a token file: namespaces, private repos, anonymous
clients, whoami; the token file format; an open hub (no token file) on loopback only."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from huggingface_hub import CommitOperationAdd, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from hubtool.errors import HubError
from hubtool.hub.client import make_api
from hubtool.hub.server import StagingHub, load_access
from tests.hub_fixtures import USERS, hf_cli, hf_home, run_cli, users_hub  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def api_for(hub, user: str | None):
    return make_api(hub.url, hub.tokens[user] if user else False)


def status_of(call) -> int:
    """The HTTP status a client call fails with (0 when it succeeds)."""
    try:
        call()
    except HfHubHTTPError as err:
        return err.response.status_code
    return 0


# (who, what they try, expected status): 0 is success, 401 no token, 403 outside the
# namespace, 404 a private repo they may not see.
WRITES = [
    ("alice", "create alice/new", 0),
    ("alice", "create research/new", 0),
    ("carol", "create shared/new", 0),
    ("bob", "create alice/new", 403),
    ("bob", "create huggingface/official", 403),
    ("admin", "create anyone/new", 0),
    (None, "create alice/new", 401),
    ("bob", "commit to alice/public", 403),
    ("bob", "branch on alice/public", 403),
    ("bob", "tag on alice/public", 403),
    ("bob", "delete alice/public", 403),
    ("bob", "make alice/public private", 403),
    ("bob", "move alice/public to bob/taken", 403),
    ("alice", "move alice/public to bob/taken", 403),
    ("bob", "commit to alice/private", 404),
    (None, "commit to alice/public", 401),
    ("alice", "commit to alice/public", 0),
    ("carol", "commit to shared/team", 0),
    ("bob", "commit to shared/team", 403),
]


def attempt(hub, user: str | None, what: str) -> int:
    api = api_for(hub, user)
    verb, *rest = what.split()
    target = rest[-1] if verb != "move" else rest[0]
    ops = [CommitOperationAdd("note.txt", b"hello\n")]
    calls = {
        "create": lambda: api.create_repo(target),
        "commit": lambda: api.create_commit(target, ops, commit_message="note"),
        "branch": lambda: api.create_branch(target, branch="b"),
        "tag": lambda: api.create_tag(target, tag="t"),
        "delete": lambda: api.delete_repo(target),
        "make": lambda: api.update_repo_settings(rest[0], private=True),
        "move": lambda: api.move_repo(rest[0], rest[2]),
    }
    return status_of(calls[verb])


@pytest.fixture
def populated(users_hub):
    alice = api_for(users_hub, "alice")
    alice.create_repo("alice/public")
    alice.create_repo("alice/private", private=True)
    alice.upload_file(path_or_fileobj=b"secret\n", path_in_repo="s.txt", repo_id="alice/private")
    api_for(users_hub, "carol").create_repo("shared/team")
    return users_hub


@pytest.mark.parametrize(("user", "what", "expected"), WRITES, ids=[f"{u or 'anonymous'}: {w}" for u, w, _ in WRITES])
def test_namespace_rules_per_token(populated, user, what, expected):
    assert attempt(populated, user, what) == expected
    if "alice/public" in what and expected:
        assert [c.title for c in api_for(populated, "alice").list_repo_commits("alice/public")] == ["initial commit"]


def test_private_repos_are_visible_to_their_namespace_only(populated, tmp_path):
    for user, sees in (("alice", True), ("admin", True), ("bob", False), ("carol", False), (None, False)):
        api = api_for(populated, user)
        assert api.repo_exists("alice/private") is sees, user
        listed = {m.id for m in api.list_models(author="alice")}
        assert listed == ({"alice/public", "alice/private"} if sees else {"alice/public"}), user
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/private", "s.txt", endpoint=populated.url, token=populated.tokens["bob"],
                        cache_dir=tmp_path / "bob")
    path = hf_hub_download("alice/private", "s.txt", endpoint=populated.url, token=populated.tokens["alice"],
                           cache_dir=tmp_path / "alice")
    assert open(path).read() == "secret\n"
    raw = urllib.request.Request(f"{populated.url}/alice/private/resolve/main/s.txt")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(raw, timeout=30)
    assert err.value.code == 404 and err.value.headers["X-Error-Code"] == "RepoNotFound"


def test_pull_requests_from_outside_the_namespace(populated):
    bob, alice = api_for(populated, "bob"), api_for(populated, "alice")
    pr = bob.create_commit("alice/public", [CommitOperationAdd("idea.txt", b"bob's\n")], commit_message="Idea",
                           create_pr=True)
    bob.create_commit("alice/public", [CommitOperationAdd("more.txt", b"more\n")], commit_message="More",
                      revision=pr.pr_revision)
    assert status_of(lambda: api_for(populated, "carol").create_commit(
        "alice/public", [CommitOperationAdd("x", b"x")], commit_message="x", revision=pr.pr_revision)) == 403
    assert status_of(lambda: bob.merge_pull_request("alice/public", pr.pr_num)) == 403
    assert status_of(lambda: bob.create_commit("alice/private", [CommitOperationAdd("x", b"x")], commit_message="x",
                                               create_pr=True)) == 404
    alice.merge_pull_request("alice/public", pr.pr_num)
    assert sorted(alice.list_repo_files("alice/public")) == ["idea.txt", "more.txt"]
    assert [(d.author, d.status) for d in alice.get_repo_discussions("alice/public")] == [("bob", "merged")]


def test_whoami_answers_per_token(users_hub):
    for user, (token, orgs) in USERS.items():
        me = make_api(users_hub.url, token).whoami()
        expected = sorted(o for o in orgs.split(",") if o and o != "*")
        assert (me["name"], sorted(o["name"] for o in me["orgs"])) == (user, expected)
    with pytest.raises(HfHubHTTPError) as err:
        make_api(users_hub.url, "hf_notAKnownToken").whoami()
    assert err.value.response.status_code == 401
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{users_hub.url}/api/whoami-v2", timeout=30)
    assert anonymous.value.code == 401
    done = hf_cli("auth", "whoami", env={"HF_ENDPOINT": users_hub.url, "HF_TOKEN": USERS["carol"][0], "NO_COLOR": "1"})
    assert done.returncode == 0 and "carol" in done.stdout, done.stderr


def test_an_unknown_token_is_refused_even_for_reads(populated):
    assert status_of(lambda: make_api(populated.url, "hf_notAKnownToken").model_info("alice/public")) == 401
    assert api_for(populated, None).model_info("alice/public").id == "alice/public"


def test_token_file_format(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("# comment line\n\ntokA alice org1,org2   # trailing comment\ntokB bob\ntokC ci *\nlegacyTok\n")
    access = load_access(good)
    assert access.open is False
    users = {u.name: u for u in (access.identify(f"Bearer {t}") for t in ("tokA", "tokB", "tokC", "legacyTok"))}
    assert users["alice"].orgs == ("org1", "org2") and users["alice"].owns("org2") and not users["alice"].owns("bob")
    assert users["bob"].owns("bob") and not users["bob"].owns("alice")
    assert users["ci"].everywhere and users["staging"].everywhere
    assert access.identify(None) is None
    cases = {
        "tokA alice org1 extra\n": "good-ish.txt:1: expected 'TOKEN USER [ORG1,ORG2]', got 4 fields",
        "tokA al/ice\n": "is not a user name",
        "tokA alice bad/org\n": "is not an organisation name",
        "tokA alice\ntokA bob\n": ":2: this token already appears on an earlier line",
        "# nothing\n": "holds no token",
    }
    for text, message in cases.items():
        path = tmp_path / "good-ish.txt"
        path.write_text(text)
        with pytest.raises(HubError) as err:
            load_access(path)
        assert message in str(err.value) and "tokA" not in str(err.value)


def test_an_open_hub_listens_on_loopback_only(tmp_path):
    with pytest.raises(HubError, match="refusing to listen on 0.0.0.0 without --token-file"):
        StagingHub(tmp_path / "root", host="0.0.0.0")
    done = run_cli("hub", "serve", "--root", str(tmp_path / "root"), "--host", "0.0.0.0", "--port", "0")
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "Error: refusing to listen on 0.0.0.0 without --token-file: an open hub lets anyone write; "
        "give a token file or listen on 127.0.0.1"]
    assert not (tmp_path / "root").exists()  # refused before touching the root
