"""``verify --claims-only``: a card audited against config.json and safetensors headers, weights unread.

Every test talks to a real staging hub on 127.0.0.1 through huggingface_hub, and checks in
the hub's request log that no weight file was fetched whole (a GET of a .safetensors path
must be a ranged 206, never a 200).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubtool.build.folder import build_model
from hubtool.cli.main import cli
from hubtool.hub.client import make_api
from hubtool.spec.catalog import resolve_spec
from hubtool.verify.claims import check_claims
from tests.conftest import CONFIGS, REFERENCE
from tests.hub_fixtures import hf_home, hub  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow

_LOG = re.compile(r"^\S+ (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3})\b")

FALSE_CARD = """\
---
license: mit
---
# gpt2-100m

| Property | Value |
|---|---|
| Parameters | 4.6M |
| Layers | 12 |
| Hidden size | 768 |
| Attention heads | 12 |
| Context length | 2048 |
| Vocabulary size | 50,257 |
| Precision | fp16 |
| Model size | 384 MB |

Trained on OpenWebText for 10k steps.
"""


def weight_requests(lines: list[str]) -> list[tuple[str, str, int]]:
    """(method, path, status) of every request for a .safetensors file."""
    found = []
    for line in lines:
        match = _LOG.match(line)
        if match and match["path"].endswith(".safetensors"):
            found.append((match["method"], match["path"], int(match["status"])))
    return found


def assert_no_weight_download(lines: list[str]) -> None:
    requests = weight_requests(lines)
    gets = [r for r in requests if r[0] == "GET"]
    assert gets, "no safetensors header was read"
    assert all(status == 206 for _, _, status in gets), gets  # ranged reads only


def upload(hub_url: str, folder: Path, repo_id: str) -> str:
    api = make_api(hub_url)
    api.create_repo(repo_id, exist_ok=True)
    return api.upload_folder(folder_path=str(folder), repo_id=repo_id).oid


@pytest.fixture(scope="module")
def built_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built")
    for name in ("tiny-gpt2", "gpt2-100m"):
        build_model(resolve_spec(name, CONFIGS), root=root)
    return root


@pytest.fixture(scope="module")
def gpt2_100m(built_root: Path) -> Path:
    return built_root / "gpt2-100m"


@pytest.fixture(scope="module")
def tiny(built_root: Path) -> Path:
    return built_root / "tiny-gpt2"


def test_false_card_is_caught_without_downloading_weights(gpt2_100m: Path, hub, tmp_path: Path) -> None:
    folder = tmp_path / "gpt2-100m"
    shutil.copytree(gpt2_100m, folder, copy_function=os.link)
    (folder / "README.md").write_text(FALSE_CARD)
    commit = upload(hub.url, folder, "Crusadersk/gpt2-100m")
    hub.lines.clear()

    report_path = tmp_path / "claims.json"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "hubtool", "verify", "Crusadersk/gpt2-100m", "--claims-only", "--endpoint", hub.url,
         "--output", str(report_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HOME": str(tmp_path / "fresh-home")},
    )
    wall = time.perf_counter() - start
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert_no_weight_download(hub.lines)

    report = json.loads(report_path.read_text())
    assert (report["endpoint"], report["repo"], report["revision"], report["commit"]) == (
        hub.url, "Crusadersk/gpt2-100m", "main", commit)
    assert report["status"] == "failed" and report["seconds"] < 10 and wall < 30
    print(f"claims-only against the staging hub, gpt2-100m: {report['seconds']:.2f}s in-command, {wall:.2f}s wall")
    assert report["files_read"]["model.safetensors"] == "header only (HTTP range read)"
    assert report["facts"]["parameters"] == REFERENCE["gpt2-100m"][4]
    assert report["facts"]["weights"]["bytes"] == REFERENCE["gpt2-100m"][5]
    verdicts = {c["claim"]: (c["status"], c["stated"]) for c in report["claims"]["claims"]}
    assert verdicts == {
        "parameters": ("contradiction", "4.6M"),
        "n_layer": ("contradiction", "12"),
        "n_embd": ("ok", "768"),
        "n_head": ("contradiction", "12"),
        "n_positions": ("contradiction", "2048"),
        "vocab_size": ("ok", "50,257"),
        "precision": ("contradiction", "fp16"),
        "model_size": ("ok", "384 MB"),
        "trained": ("contradiction", "yes"),  # provenance.json records these exact weights, untrained
    }
    where = f"Crusadersk/gpt2-100m@{commit[:12]}"
    assert f"{where}: card: README.md:8: parameters '4.6M' contradicts the files: measured 96,088,320 parameters" in done.stderr
    assert f"{where}: card: README.md:14: precision 'fp16' contradicts the files: the weight files store float32" in done.stderr
    assert done.stdout.startswith(f"{where}: card audit failed: 6 of 9 checked claims contradict the files; ")


def test_sharded_checkpoint(tiny: Path, hub, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "sharded"
    model = AutoModelForCausalLM.from_pretrained(tiny)
    model.save_pretrained(folder, max_shard_size="150KB")
    shards = sorted(p.name for p in folder.glob("*.safetensors"))
    assert len(shards) >= 2 and (folder / "model.safetensors.index.json").is_file()
    total = sum((folder / s).stat().st_size for s in shards)
    (folder / "README.md").write_text(
        f"# sharded\n\n- Parameters: 102,714\n- Model size: {total:,} bytes\n- Layers: 3\n- Precision: float32\n"
        "- Randomly initialised weights.\n"
    )
    upload(hub.url, folder, "someone/sharded")
    hub.lines.clear()

    report = check_claims("someone/sharded", endpoint=hub.url, out_json=tmp_path / "r.json")
    assert_no_weight_download(hub.lines)
    assert sorted(report["facts"]["weights"]["files"]) == shards
    assert report["facts"]["weights"]["bytes"] == total
    assert report["facts"]["parameters"] == REFERENCE["tiny-gpt2"][4]
    assert {f for f, how in report["files_read"].items() if how == "header only (HTTP range read)"} == set(shards)
    verdicts = {c["claim"]: c["status"] for c in report["claims"]["claims"]}
    assert verdicts == {"parameters": "ok", "model_size": "ok", "n_layer": "contradiction", "precision": "ok",
                        "trained": "unchecked"}  # no provenance: weights unread, so not known
    assert report["status"] == "failed" and report["claims"]["contradictions"] == 1


def test_another_architecture_through_generic_config_keys(hub, tmp_path: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2, vocab_size=1000,
                                         max_position_embeddings=256))
    folder = tmp_path / "llama"
    model.save_pretrained(folder)
    params = model.num_parameters()
    (folder / "README.md").write_text(
        f"| Parameters | {params:,} |\n|---|---|\n| Hidden size | 16 |\n| Layers | 4 |\n| Context length | 512 |\n"
        "| Vocabulary size | 1,000 |\n| Attention heads | 2 |\n| Intermediate size | 32 |\n| Precision | fp32 |\n"
    )
    upload(hub.url, folder, "someone/tiny-llama")
    hub.lines.clear()
    result = CliRunner().invoke(cli, ["verify", "someone/tiny-llama", "--claims-only", "--endpoint", hub.url,
                                      "--output", str(tmp_path / "r.json")])
    assert result.exit_code == 1, result.output
    assert_no_weight_download(hub.lines)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["facts"]["parameters"] == params and report["facts"]["model_type"] == "llama"
    verdicts = {c["claim"]: c["status"] for c in report["claims"]["claims"]}
    assert verdicts == {"parameters": "ok", "n_embd": "ok", "n_layer": "contradiction", "n_positions": "contradiction",
                        "vocab_size": "ok", "n_head": "ok", "n_inner": "ok", "precision": "ok"}


def test_errors_are_one_line(hub, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["verify", "nobody/nothing", "--claims-only", "--endpoint", hub.url])
    assert missing.exit_code == 3
    assert missing.output == f"Error: repo 'nobody/nothing' not found at {hub.url}; if it is private, set HF_TOKEN or run `hf auth login`\n"

    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "gpt2", "n_layer": 2}')
    (folder / "pytorch_model.bin").write_bytes(b"not read")
    upload(hub.url, folder, "someone/pickled")
    pickled = runner.invoke(cli, ["verify", "someone/pickled", "--claims-only", "--endpoint", hub.url])
    assert pickled.exit_code == 3 and len(pickled.output.strip().splitlines()) == 1
    assert "someone/pickled@" in pickled.output and "has no safetensors weights" in pickled.output


def test_local_folder_and_default_report_path(tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    shutil.copytree(tiny, root / "tiny-gpt2")
    (root / "tiny-gpt2" / "README.md").write_text("# tiny\n\nParameters: 102,714\nLayers: 2\n")
    result = CliRunner().invoke(cli, ["verify", "tiny-gpt2", "--claims-only", "--out", str(root)])
    assert result.exit_code == 0, result.output
    report = json.loads((root / "claims" / "tiny-gpt2.json").read_text())
    assert report["status"] == "passed" and report["claims"]["checked"] == 2 and report["repo"] is None
    assert result.output.startswith("tiny-gpt2: card audit passed: 2 claims checked, none contradicted;")
