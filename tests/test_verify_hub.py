"""hubtool verify ORG/NAME[@REV]: pulled from a real staging hub on 127.0.0.1, then verified."""

from __future__ import annotations

import json

import pytest

from hubtool.errors import HubError
from hubtool.hub.push import push_model
from hubtool.verify.run import verify_target
from tests.hub_fixtures import hf_home, hub, models  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def test_repo_id_is_pulled_and_verified(models, hub, tmp_path):
    pushed = push_model(models / "tiny-gpt2", repo_id="org/tiny", endpoint=hub.url)
    report = verify_target("org/tiny", backends="eager,sdpa", endpoint=hub.url,
                           out_json=tmp_path / "r.json", cache_dir=tmp_path / "cache")
    assert report["repo_id"] == "org/tiny"
    assert report["revision"] == pushed.commit_oid
    assert report["target"] == "org/tiny"
    checks = {c["name"]: c["status"] for c in report["weights"]["checks"]}
    assert checks["bit-identical to build"] == "passed"  # provenance travels with the repo
    assert checks["config matches spec"] == "passed"
    assert {b: c["status"] for b, c in report["backends"].items()} == {"eager": "passed", "sdpa": "passed"}
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "passed"


def test_revision_is_honoured_and_missing_repo_is_a_hub_error(models, hub, tmp_path):
    push_model(models / "tiny-gpt2", repo_id="org/tiny", endpoint=hub.url)
    push_model(models / "tiny-gpt2", repo_id="org/tiny", endpoint=hub.url, revision="dev")
    report = verify_target("org/tiny@dev", backends="eager", endpoint=hub.url,
                           out_json=tmp_path / "r.json", cache_dir=tmp_path / "cache")
    assert (report["repo_id"], report["revision"], report["status"]) == ("org/tiny", "dev", "passed")
    with pytest.raises(HubError, match="org/absent"):
        verify_target("org/absent", backends="eager", endpoint=hub.url, cache_dir=tmp_path / "cache")


def test_pulled_repo_report_goes_under_the_artifacts_root_not_the_cache(models, hub, tmp_path, hf_home):
    push_model(models / "tiny-gpt2", repo_id="org/tiny", endpoint=hub.url)
    report = verify_target("org/tiny", backends="eager", endpoint=hub.url, out=tmp_path / "art",
                           cache_dir=tmp_path / "cache")
    assert report["report_path"] == str(tmp_path / "art" / "pulled" / "org--tiny" / "verification.json")
    assert json.loads((tmp_path / "art" / "pulled" / "org--tiny" / "verification.json").read_text())["status"] == "passed"
    assert not list(hf_home.rglob("verification.json"))
