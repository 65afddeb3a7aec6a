"""verify audits the folder's card: contradictions fail it and are listed with their line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubtool.cli.main import cli
from tests.test_card import HAND_WRITTEN


def test_verify_fails_on_a_card_that_contradicts_the_files(tiny_dir: Path, verify_cache: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HUBTOOL_CACHE", str(verify_cache))
    folder = shutil.copytree(tiny_dir, tmp_path / "tiny-gpt2")
    (folder / "README.md").write_text(HAND_WRITTEN)
    result = CliRunner().invoke(cli, ["verify", str(folder), "--backend", "eager"])
    assert result.exit_code == 1, result.output
    assert "README.md:12: parameters '4.6M' contradicts the files: measured 102,714 parameters" in result.output
    assert "README.md:13: n_layer '12' contradicts the files: config.json has n_layer = 2" in result.output
    # vLLM was not run by this verification: its "Yes" on the card contradicts the evidence.
    assert "README.md:21: backend:vllm 'yes' contradicts the files: the verification never ran vllm" in result.output
    assert "card audit failed: 6 of" in result.output
    assert "eager" in result.output and "passed" in result.output


@pytest.mark.slow  # two verify runs of two backends each, and a card: about a minute under load
def test_verify_passes_hubtool_s_own_card(tiny_dir: Path, verify_cache: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HUBTOOL_CACHE", str(verify_cache))
    root = tmp_path / "artifacts"
    shutil.copytree(tiny_dir, root / "tiny-gpt2")
    runner = CliRunner()
    first = runner.invoke(cli, ["verify", "tiny-gpt2", "--out", str(root), "--backend", "eager,sdpa"])
    assert first.exit_code == 0, first.output
    assert "card audit: no README.md to audit" in first.output
    assert runner.invoke(cli, ["card", "tiny-gpt2", "--out", str(root)]).exit_code == 0
    second = runner.invoke(cli, ["verify", "tiny-gpt2", "--out", str(root), "--backend", "eager,sdpa"])
    assert second.exit_code == 0, second.output
    assert "card audit passed: " in second.output and "none contradicted" in second.output
