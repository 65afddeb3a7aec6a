"""``hubtool init``: a new family folder that loads, explains itself, and publishes under its namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubtool.cli.main import cli
from hubtool.spec.catalog import resolve_targets
from hubtool.spec.family import load_family
from hubtool.spec.model import ARCH_KEYS, BUILD_KEYS, load_spec
from hubtool.spec.scaffold import check_namespace
from tests.conftest import run_hubtool
from tests.hub_fixtures import hf_home, hub  # noqa: F401 - fixtures


def _init(folder: Path, *args: str):
    return CliRunner().invoke(cli, ["init", str(folder), *args])


def test_init_writes_a_family_that_loads(tmp_path: Path) -> None:
    folder = tmp_path / "my-family"
    result = _init(folder, "--namespace", "my-lab", "--author", "Ada Lovelace", "--license", "apache-2.0")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["family.yaml", "gpt2-deep.yaml", "gpt2-wide.yaml"]
    family = load_family(folder / "family.yaml")
    assert (family.namespace, family.author, family.license) == ("my-lab", "Ada Lovelace", "apache-2.0")
    assert family.repo_id("gpt2-wide") == "my-lab/gpt2-wide"
    assert family.name.startswith("TODO:") and family.summary.startswith("TODO:")
    assert family.citation["title"].startswith("TODO:") and family.citation["author"] == "Ada Lovelace"
    assert family.citation["howpublished"] == "Hugging Face Hub, https://huggingface.co/my-lab"
    assert family.citation["key"] == "my_lab_family"
    specs = {s.name: s for s in resolve_targets([], all_=True, folder=folder)}
    assert {n: (s.config["n_layer"], s.config["n_embd"], s.parameters) for n, s in specs.items()} == {
        "gpt2-deep": (8, 64, 3_681_984), "gpt2-wide": (2, 128, 6_960_768),
    }
    lines = result.output.splitlines()
    assert lines[:3] == [f"wrote {folder / n}" for n in ("family.yaml", "gpt2-wide.yaml", "gpt2-deep.yaml")]
    commands = [line.strip() for line in lines if line.startswith("  ")]
    assert commands == [
        f"export HUBTOOL_CONFIGS={folder.resolve()}", "hubtool list", "hubtool build --all", "hubtool verify --all",
        "hubtool bench --all --quick", "hubtool card --all", "hubtool push --all --dry-run",
        "HF_TOKEN=hf_... hubtool push --all",
    ]


def test_every_spec_key_is_explained_where_it_is_written(tmp_path: Path) -> None:
    import yaml

    assert _init(tmp_path / "f", "--namespace", "my-lab").exit_code == 0
    for name in ("gpt2-wide", "gpt2-deep"):
        text = (tmp_path / "f" / f"{name}.yaml").read_text()
        explained = {}
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            match = re.match(r"^([a-z_]+): .+?  # (.{12,})$", line)
            assert match, f"{name}: a key without an explanation: {line!r}"
            explained[match.group(1)] = match.group(2)
        assert set(explained) == set(yaml.safe_load(text))
        assert {"n_embd", "n_layer", "n_head", "n_inner", "n_positions", "seed", "dtype", "tokenizer"} <= set(explained)
        assert set(explained) <= set(ARCH_KEYS) | set(BUILD_KEYS)
        load_spec(tmp_path / "f" / f"{name}.yaml")
        for other in ("tie_word_embeddings", "layer_norm_epsilon", "initializer_range"):
            assert other in text.split("# Also accepted")[1]


def test_non_empty_folder_is_refused_unless_forced(tmp_path: Path) -> None:
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    refused = _init(folder, "--namespace", "my-lab")
    assert refused.exit_code == 2
    assert refused.output == f"Error: {folder} is not empty; choose a new folder, or --force to write into it\n"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    forced = _init(folder, "--namespace", "my-lab", "--force")
    assert forced.exit_code == 0
    assert sorted(p.name for p in folder.iterdir()) == ["family.yaml", "gpt2-deep.yaml", "gpt2-wide.yaml", "notes.txt"]
    assert (folder / "notes.txt").read_text() == "mine\n"


@pytest.mark.parametrize("namespace", ["my lab", "-lab", "lab-", "a--b", "a..b", "x" * 97, "ünï", "org/name", ""])
def test_bad_namespace_is_a_one_line_error(tmp_path: Path, namespace: str) -> None:
    result = _init(tmp_path / "f", "--namespace", namespace)
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: '{namespace}' is not a Hub namespace")
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("namespace", ["Crusadersk", "my-lab", "a", "lab_2.0", "x" * 96])
def test_good_namespaces(namespace: str) -> None:
    assert check_namespace(namespace) == namespace


def test_bad_license_and_real_process_errors(tmp_path: Path) -> None:
    result = _init(tmp_path / "f", "--namespace", "my-lab", "--license", "MIT License")
    assert result.exit_code == 2 and "'MIT License' is not a Hub license id" in result.output
    (tmp_path / "file").write_text("x")
    done = run_hubtool("init", str(tmp_path / "file"), "--namespace", "my-lab")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"Error: {tmp_path / 'file'} exists and is not a folder\n"


@pytest.mark.slow
def test_init_build_card_push_under_the_new_namespace(tmp_path: Path, hub, monkeypatch) -> None:
    from huggingface_hub import HfApi, hf_hub_download

    folder = tmp_path / "family"
    assert _init(folder, "--namespace", "my-lab", "--author", "Ada Lovelace").exit_code == 0
    family = folder / "family.yaml"
    family.write_text(family.read_text()
                      .replace('"TODO: a short name for the family"', '"Ada\'s depth study"')
                      .replace('"TODO: the family\'s title"', '"Depth or width?"')
                      .replace("TODO: one paragraph", "Two GPT-2s, one deep and one wide, to time"))
    monkeypatch.setenv("HUBTOOL_CONFIGS", str(folder))
    runner = CliRunner()
    out = ["--out", str(tmp_path / "artifacts")]
    for args in (["build", "--all", *out], ["card", "--all", *out], ["push", "--all", "--endpoint", hub.url, *out]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
    api = HfApi(endpoint=hub.url)
    for name in ("gpt2-wide", "gpt2-deep"):
        repo = f"my-lab/{name}"
        assert api.model_info(repo).id == repo
        card = Path(hf_hub_download(repo, "README.md", endpoint=hub.url)).read_text()
        assert f'from_pretrained("{repo}")' in card
        assert "Crusadersk" not in card and "TODO" not in card
        assert "Two GPT-2s, one deep and one wide, to time" in card
        assert "howpublished = {Hugging Face Hub, https://huggingface.co/my-lab}" in card
        assert "title = {Depth or width?}" in card and "author = {Ada Lovelace}" in card
