"""A spec may take its tokenizer from a Hub repo id, fetched through huggingface_hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubtool.build.folder import build_model
from hubtool.errors import TokenizerError
from hubtool.spec.model import load_spec
from tests.conftest import CONFIGS
from tests.hub_fixtures import hf_home, hub  # noqa: F401  (fixtures)


def _spec(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "hub-tok.yaml"
    path.write_text((CONFIGS / "tiny-gpt2.yaml").read_text().replace("tokenizer: gpt2", f"tokenizer: {source}"))
    return path


def test_tokenizer_from_a_hub_repo(hub, tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi
    from transformers import AutoTokenizer

    api = HfApi(endpoint=hub.url, token="hf_test")
    api.create_repo("toolsmith/gpt2-tokenizer")
    api.upload_folder(repo_id="toolsmith/gpt2-tokenizer", folder_path=tiny_dir,
                      allow_patterns=["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"])
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    result = build_model(load_spec(_spec(tmp_path, "toolsmith/gpt2-tokenizer")), root=tmp_path / "out")
    assert AutoTokenizer.from_pretrained(result.path)("Hello world")["input_ids"] == [15496, 995]
    assert (result.path / "merges.txt").read_bytes() == (tiny_dir / "merges.txt").read_bytes()
    assert any("gpt2-tokenizer" in line for line in hub.lines)

    with pytest.raises(TokenizerError, match="cannot fetch the tokenizer of toolsmith/missing: .*not found"):
        build_model(load_spec(_spec(tmp_path, "toolsmith/missing")), root=tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
