"""hubtool push against a staging hub on 127.0.0.1: byte-identical round trips, no empty
commits, one-file commits, exact dry-run output, branches, pull requests, the card gate."""

from __future__ import annotations

import os
import time

import pytest
from click.testing import CliRunner
from huggingface_hub import HfApi, snapshot_download

from hubtool.cli.main import cli
from hubtool.errors import HubError
from hubtool.hub.pull import pull_repo
from hubtool.hub.push import push_model, repo_files
from tests.conftest import REFERENCE
from tests.hub_fixtures import hf_home, hub, models, same_files  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def names(folder) -> list[str]:
    return [p.relative_to(folder).as_posix() for p in repo_files(folder)]


@pytest.mark.family  # pushes gpt2-25m
def test_push_then_download_is_byte_identical(models, hub, tmp_path):
    for model in ("tiny-gpt2", "gpt2-25m"):
        folder = models / model
        result = push_model(folder, repo_id=f"org/{model}", endpoint=hub.url, force=True)
        assert result.status == "pushed"
        assert sorted(result.verified) == sorted(names(folder))
        assert result.commit_url == f"{hub.url}/org/{model}/commit/{result.commit_oid}"
        fresh = tmp_path / f"fresh-{model}"
        snapshot_download(f"org/{model}", endpoint=hub.url, local_dir=fresh)
        downloaded = sorted(p.name for p in fresh.iterdir() if p.is_file())
        assert downloaded == sorted(names(folder))
        assert same_files(folder, fresh, names(folder))
    assert (models / "gpt2-25m" / "model.safetensors").stat().st_size == REFERENCE["gpt2-25m"][5]
    # pulled by id, through the cache
    pulled = pull_repo("org/tiny-gpt2", endpoint=hub.url)
    assert same_files(models / "tiny-gpt2", pulled, names(models / "tiny-gpt2"))


def test_repush_makes_no_commit_and_one_change_makes_one_commit(models, hub):
    folder = models / "tiny-gpt2"
    api = HfApi(endpoint=hub.url)
    first = push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True)
    commits = api.list_repo_commits("org/tiny")
    assert len(commits) == 2  # the repo's empty initial commit + the push
    assert commits[0].title.startswith("Upload tiny-gpt2 with hubtool ") and "spec sha256 " in commits[0].title

    hub.lines.clear()
    again = push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True)
    assert again.status == "up-to-date" and again.commit_oid == first.commit_oid
    assert len(api.list_repo_commits("org/tiny")) == 2
    assert not [line for line in hub.lines if " PUT " in line or "/commit/" in line]

    before = {f.path: f.blob_id for f in api.list_repo_tree("org/tiny", recursive=True)}
    config = folder / "generation_config.json"
    config.write_text(config.read_text().replace("}", ', "note": "changed"}', 1))
    os.utime(folder / "README.md")  # keep the card newer than the measurements
    hub.lines.clear()
    changed = push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True)
    assert [(c.path, c.action) for c in changed.changes if c.action != "unchanged"] == [
        ("generation_config.json", "update")
    ]
    assert len(api.list_repo_commits("org/tiny")) == 3
    after = {f.path: f.blob_id for f in api.list_repo_tree("org/tiny", recursive=True)}
    assert {p for p in after if after[p] != before[p]} == {"generation_config.json"}
    assert set(after) == set(before)
    assert not [line for line in hub.lines if " PUT " in line]  # no LFS re-upload


def test_dry_run_output_is_exact_and_changes_nothing(models, hub):
    folder = models / "tiny-gpt2"
    push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True)
    api = HfApi(endpoint=hub.url)
    api.upload_file(path_or_fileobj=b"kept remotely\n", path_in_repo="notes.md", repo_id="org/tiny")
    head = api.model_info("org/tiny").sha
    (folder / "extra.json").write_text('{"a": 1}\n')
    weights = folder / "model.safetensors"
    old_size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes() + b" ")
    os.utime(folder / "README.md", (time.time() + 5, time.time() + 5))

    runner = CliRunner()
    result = runner.invoke(cli, ["push", "tiny-gpt2", "--out", str(models), "--repo-id", "org/tiny", "--force",
                                 "--endpoint", hub.url, "--dry-run"])
    assert result.exit_code == 0, result.output
    size = {n: (folder / n).stat().st_size for n in names(folder)}
    rows = [("add", "extra.json"), *[("unchanged", n) for n in ("README.md", "config.json",
            "generation_config.json", "measurements.json", "merges.txt")], ("update", "model.safetensors"),
            *[("unchanged", n) for n in ("provenance.json", "tokenizer.json", "tokenizer_config.json", "vocab.json")]]
    rows.sort(key=lambda r: r[1])
    width = len("generation_config.json")
    expected = [f"tiny-gpt2 -> org/tiny@main at {hub.url} (dry run)"]
    for action, name in rows:
        line = f"  {action:<11} {name:<{width}}  {size[name]:>13,} bytes"
        expected.append(line + (f" (remote {old_size:,})" if action == "update" else ""))
    expected.append(f"  {'remote-only':<11} {'notes.md':<{width}}  {14:>13,} bytes")
    expected.append("tiny-gpt2: 1 to add, 1 to update, 9 unchanged, 1 remote-only; nothing was changed")
    assert result.output.splitlines() == expected
    assert api.model_info("org/tiny").sha == head


def test_revision_creates_a_branch_and_leaves_main(models, hub):
    folder = models / "tiny-gpt2"
    first = push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True)
    (folder / "extra.txt").write_text("on the branch only\n")
    result = push_model(folder, repo_id="org/tiny", endpoint=hub.url, revision="staging", force=True)
    assert result.status == "pushed" and result.revision == "staging"
    api = HfApi(endpoint=hub.url)
    refs = {b.name: b.target_commit for b in api.list_repo_refs("org/tiny").branches}
    assert refs == {"main": first.commit_oid, "staging": result.commit_oid}
    assert "extra.txt" in api.list_repo_files("org/tiny", revision="staging")
    assert "extra.txt" not in api.list_repo_files("org/tiny")
    assert (pull_repo("org/tiny@staging", endpoint=hub.url) / "extra.txt").read_text() == "on the branch only\n"


def test_create_pr_opens_a_pull_request(models, hub):
    folder = models / "tiny-gpt2"
    first = push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True)
    (folder / "extra.txt").write_text("proposed\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["push", "tiny-gpt2", "--out", str(models), "--repo-id", "org/tiny", "--force",
                                 "--endpoint", hub.url, "--create-pr", "--commit-message", "Propose extra.txt"])
    assert result.exit_code == 0, result.output
    assert f"  pull request: {hub.url}/org/tiny/discussions/1" in result.output.splitlines()
    api = HfApi(endpoint=hub.url)
    assert api.model_info("org/tiny").sha == first.commit_oid  # main untouched
    pr = api.list_repo_refs("org/tiny", include_pull_requests=True).pull_requests
    assert [p.ref for p in pr] == ["refs/pr/1"]
    assert api.list_repo_commits("org/tiny", revision="refs/pr/1")[0].title == "Propose extra.txt"
    assert (pull_repo("org/tiny@refs/pr/1", endpoint=hub.url) / "extra.txt").read_text() == "proposed\n"


def test_card_gate_refuses_a_card_not_rendered_for_these_files(models, hub):
    """push's gate compares hashes (card, model files, reports, repo named), never file times."""
    from hubtool.card.render import card_command
    from hubtool.errors import FoundWrong
    from hubtool.spec.catalog import resolve_spec

    folder = models / "tiny-gpt2"
    runner = CliRunner()
    args = ["push", "tiny-gpt2", "--out", str(models), "--endpoint", hub.url]
    (folder / "measurements.json").unlink()
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# tiny-gpt2\n\nWritten by hand.\n")
    hand_written = runner.invoke(cli, args)
    assert hand_written.exit_code == 1
    assert hand_written.output.strip().splitlines() == [
        f"Error: {folder}: README.md has no measurements.json beside it, so nothing binds it to the files; "
        "run `hubtool card tiny-gpt2` (or push with --force)"]
    card_command(resolve_spec("tiny-gpt2"), root=models)
    os.utime(folder / "README.md", (1, 1))  # older than every file: times play no part
    assert runner.invoke(cli, ["push", "tiny-gpt2", "--out", str(models), "--endpoint", hub.url, "--dry-run"]).exit_code == 0
    hub.lines.clear()
    with pytest.raises(FoundWrong, match="README.md names Crusadersk/tiny-gpt2 but the push goes to org/tiny"):
        push_model(folder, repo_id="org/tiny", endpoint=hub.url)
    config = folder / "config.json"
    config.write_text(config.read_text().replace('"n_layer": 2', '"n_layer": 2 '))  # one byte, same meaning
    stale = runner.invoke(cli, args)
    assert stale.exit_code == 1
    assert "README.md was rendered for other files (config.json changed); run `hubtool card tiny-gpt2`" in stale.output
    assert not any("/api/" in line for line in hub.lines)  # refused before talking to the hub
    card_command(resolve_spec("tiny-gpt2"), root=models)
    pushed = runner.invoke(cli, args)
    assert pushed.exit_code == 0, pushed.output
    assert "README.md" in HfApi(endpoint=hub.url).list_repo_files("Crusadersk/tiny-gpt2")


def test_dotfiles_and_temp_files_are_not_pushed(models, hub):
    folder = models / "tiny-gpt2"
    (folder / ".hidden").write_text("x")
    (folder / "weights.tmp").write_text("x")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "a").write_text("x")
    result = push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True)
    remote = sorted(HfApi(endpoint=hub.url).list_repo_files("org/tiny"))
    assert remote == sorted(result.verified) and ".hidden" not in remote and "weights.tmp" not in remote


def test_tag_names_the_pushed_commit_or_the_unchanged_head(models, hub):
    folder = models / "tiny-gpt2"
    api = HfApi(endpoint=hub.url)
    runner = CliRunner()
    args = ["push", "tiny-gpt2", "--out", str(models), "--repo-id", "org/tiny", "--force", "--endpoint", hub.url]
    first = runner.invoke(cli, [*args, "--tag", "v1.0"])
    assert first.exit_code == 0, first.output
    head = api.model_info("org/tiny").sha
    assert f"  tag: v1.0 -> {head}" in first.output.splitlines()
    again = push_model(folder, repo_id="org/tiny", endpoint=hub.url, tag="v1.0", force=True)  # same commit: fine
    assert again.status == "up-to-date" and again.tag == "v1.0"
    unchanged = push_model(folder, repo_id="org/tiny", endpoint=hub.url, tag="stable", force=True)
    assert unchanged.status == "up-to-date" and unchanged.commit_oid == head
    (folder / "extra.txt").write_text("second release\n")
    second = push_model(folder, repo_id="org/tiny", endpoint=hub.url, tag="v2.0", force=True)
    tags = {t.name: t.target_commit for t in api.list_repo_refs("org/tiny").tags}
    assert tags == {"v1.0": head, "stable": head, "v2.0": second.commit_oid}
    assert "extra.txt" not in api.list_repo_files("org/tiny", revision="v1.0")
    assert (pull_repo("org/tiny@v2.0", endpoint=hub.url) / "extra.txt").read_text() == "second release\n"
    moved = runner.invoke(cli, [*args, "--tag", "v1.0"])
    assert moved.exit_code == 3
    assert moved.output.strip().splitlines()[-1] == (
        f"Error: tag 'v1.0' already exists on org/tiny at commit {head[:12]}; a tag does not move")


def test_tag_refusals_come_before_any_request(models, hub):
    folder = models / "tiny-gpt2"
    with pytest.raises(HubError, match=r"^a tag names a commit of a branch: give --tag or --create-pr, not both$"):
        push_model(folder, repo_id="org/tiny", endpoint=hub.url, tag="v1", create_pr=True, force=True)
    for bad in ("a..b", "0" * 40, "v1.lock", "has space"):
        with pytest.raises(HubError, match=f"^'{bad}' is not a tag name: "):
            push_model(folder, repo_id="org/tiny", endpoint=hub.url, tag=bad, force=True)
    assert not [line for line in hub.lines if "/api/" in line]


def test_a_pushed_pull_request_can_be_merged(models, hub):
    folder = models / "tiny-gpt2"
    push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True)
    (folder / "extra.txt").write_text("proposed\n")
    proposed = push_model(folder, repo_id="org/tiny", endpoint=hub.url, create_pr=True, commit_message="Propose", force=True)
    api = HfApi(endpoint=hub.url)
    assert [(d.num, d.title, d.status) for d in api.get_repo_discussions("org/tiny")] == [(1, "Propose", "open")]
    api.merge_pull_request("org/tiny", 1)
    assert (pull_repo("org/tiny", endpoint=hub.url) / "extra.txt").read_text() == "proposed\n"
    assert api.get_discussion_details("org/tiny", 1).merge_commit_oid == api.model_info("org/tiny").sha
    assert api.list_repo_refs("org/tiny", include_pull_requests=True).pull_requests[0].target_commit == \
        proposed.commit_oid
    assert push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True).status == "up-to-date"
