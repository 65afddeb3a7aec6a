"""Branch and tag names on the staging hub follow git's own rules (checked against
`git check-ref-format`), plus the Hub's: a 40-hex name is a commit id, refs/ is reserved."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hubtool.hub.store.names import ref_name_problem

NAMES = [
    "main", "dev", "feature/x", "v1.0", "release-2024.01", "a_b", "x@y", "ünïcode", "a.b/c-d",
    "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b", "x.lock", "a/x.lock/b", ".hidden", "a/.b",
    "trailing/", "/leading", "dots.", "a//b", "a@{1}", "tab\tname", "nl\nname", "del\x7fname",
]
HUB_ONLY = {"0" * 40: "a 40-hex name is a commit id", "refs/heads/main": "reserved", "HEAD": "reserved", "@": "reserved",
            "-dash": "starts with"}


def git_accepts(name: str) -> bool:
    done = subprocess.run(["git", "check-ref-format", "--allow-onelevel", f"refs/heads/{name}"], capture_output=True)
    return done.returncode == 0


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("name", NAMES, ids=[repr(n) for n in NAMES])
def test_ref_names_follow_git(name):
    assert (ref_name_problem(name) is None) is git_accepts(name)


@pytest.mark.parametrize("name", list(HUB_ONLY), ids=list(HUB_ONLY))
def test_ref_names_the_hub_reserves(name):
    assert HUB_ONLY[name] in ref_name_problem(name)
