"""hubtool verify ORG/NAME[@REV]: pulled from a real staging hub on 127.0.0.1 at one resolved commit,
never silently from a cached copy."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from hubtool.cli.main import cli
from hubtool.errors import HubError
from hubtool.evidence.verification import Verification
from hubtool.hub.push import push_model
from hubtool.verify.run import verify_target
from tests.hub_fixtures import hf_home, hub, models  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def test_repo_id_is_pulled_and_verified(models, hub, tmp_path):
    pushed = push_model(models / "tiny-gpt2", repo_id="org/tiny", endpoint=hub.url, force=True)
    report, path = verify_target("org/tiny", backends="eager,sdpa", endpoint=hub.url,
                                 output=tmp_path / "r.json", cache_dir=tmp_path / "cache")
    src = report.source
    assert (src.kind, src.repo_id, src.revision, src.commit) == ("hub", "org/tiny", None, pushed.commit_oid)
    assert src.endpoint == hub.url and src.hub_reached is True and src.offline is False
    assert report.target == "org/tiny"
    checks = {c.name: c.status for c in report.checks}
    assert checks["bit-identical to build"] == "passed"  # provenance travels with the repo
    assert checks["files match provenance"] == "passed" and checks["config matches spec"] == "passed"
    assert {b: v.status for b, v in report.backends.items()} == {"eager": "passed", "sdpa": "passed"}
    assert Verification.from_file(path).status == "passed"


def test_revision_is_honoured_and_missing_repo_is_a_hub_error(models, hub, tmp_path):
    push_model(models / "tiny-gpt2", repo_id="org/tiny", endpoint=hub.url, force=True)
    dev = push_model(models / "tiny-gpt2", repo_id="org/tiny", endpoint=hub.url, revision="dev", force=True)
    report, _ = verify_target("org/tiny@dev", backends="eager", endpoint=hub.url,
                              output=tmp_path / "r.json", cache_dir=tmp_path / "cache")
    assert (report.source.repo_id, report.source.revision, report.status) == ("org/tiny", "dev", "passed")
    assert report.source.commit == (dev.commit_oid or report.source.commit) and len(report.source.commit) == 40
    with pytest.raises(HubError, match="org/absent"):
        verify_target("org/absent", backends="eager", endpoint=hub.url, cache_dir=tmp_path / "cache")


def test_pulled_repo_report_goes_under_the_artifacts_root_not_the_cache(models, hub, tmp_path, hf_home):
    push_model(models / "tiny-gpt2", repo_id="org/tiny", endpoint=hub.url, force=True)
    report, path = verify_target("org/tiny", backends="eager", endpoint=hub.url, out=tmp_path / "art",
                                 cache_dir=tmp_path / "cache")
    assert path == tmp_path / "art" / "pulled" / "org--tiny" / "verification.json"
    assert json.loads(path.read_text())["status"] == "passed"
    assert not list(hf_home.rglob("verification.json"))


def test_an_unreachable_hub_is_an_error_unless_offline_is_asked(models, hub, tmp_path, monkeypatch):
    pushed = push_model(models / "tiny-gpt2", repo_id="Crusadersk/tiny-gpt2", endpoint=hub.url)
    runner = CliRunner()
    common = ["--backend", "eager", "--endpoint", hub.url, "--out", str(tmp_path / "art")]
    monkeypatch.setenv("HUBTOOL_CACHE", str(tmp_path / "cache"))
    first = runner.invoke(cli, ["verify", "Crusadersk/tiny-gpt2", *common])
    assert first.exit_code == 0, first.output
    assert f"Crusadersk/tiny-gpt2: commit {pushed.commit_oid} from {hub.url}" in first.output
    hub.stop()
    down = runner.invoke(cli, ["verify", "Crusadersk/tiny-gpt2", *common])
    assert down.exit_code == 3
    lines = down.output.strip().splitlines()
    assert lines[-1] == (f"Error: cannot connect to {hub.url} (connection refused or host unreachable); "
                         "is the hub running?")
    assert [re.sub(r"^\d\d:\d\d:\d\d | [\d.]+ s$", "", line) for line in lines[:-1]] == [
        "Crusadersk/tiny-gpt2: fetch files started", "Crusadersk/tiny-gpt2: fetch files failed after"]
    cached = runner.invoke(cli, ["verify", "Crusadersk/tiny-gpt2", *common, "--offline"])
    assert cached.exit_code == 0, cached.output
    assert (f"Crusadersk/tiny-gpt2: cached copy at commit {pushed.commit_oid}, hub not contacted (offline)"
            in cached.output)
    report = Verification.from_file(tmp_path / "art" / "pulled" / "Crusadersk--tiny-gpt2" / "verification.json")
    assert report.source.hub_reached is False and report.source.offline is True
    assert report.source.commit == pushed.commit_oid
