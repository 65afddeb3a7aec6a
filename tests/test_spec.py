"""Specs: derived figures equal DESIGN.md's table; every kind of bad spec is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubtool.errors import SpecError, UsageError
from hubtool.folder.safetensors import file_size as safetensors_file_size
from hubtool.spec.catalog import resolve_spec, resolve_targets, spec_names, spec_path
from hubtool.spec.family import load_family
from hubtool.spec.model import load_spec
from tests.conftest import ALL_NAMES, CONFIGS, REFERENCE


@pytest.mark.parametrize("name", ALL_NAMES)
def test_spec_figures_match_reference(name: str) -> None:
    n_embd, n_layer, n_head, n_inner, params, nbytes = REFERENCE[name]
    spec = resolve_spec(name, CONFIGS)
    assert (spec.config["n_embd"], spec.config["n_layer"], spec.config["n_head"], spec.n_inner) == (
        n_embd, n_layer, n_head, n_inner,
    )
    assert spec.parameters == params
    assert spec.weight_bytes == nbytes
    assert spec.head_dim == n_embd // n_head
    c = spec.config
    assert (c["vocab_size"], c["n_positions"], c["activation_function"]) == (50257, 1024, "gelu_new")
    assert (c["resid_pdrop"], c["embd_pdrop"], c["attn_pdrop"]) == (0.0, 0.0, 0.0)
    assert c["tie_word_embeddings"] is True and spec.dtype == "float32"


def test_all_specs_are_listed_smallest_first() -> None:
    assert sorted(spec_names(CONFIGS)) == sorted(ALL_NAMES)
    assert [s.name for s in resolve_targets([], all_=True, folder=CONFIGS)] == ALL_NAMES


def test_family_metadata() -> None:
    family = load_family(CONFIGS / "family.yaml")
    assert family.namespace == "Crusadersk" and family.license == "mit"
    assert family.repo_id("gpt2-25m") == "Crusadersk/gpt2-25m"
    assert {r["id"] for r in family.reports} >= {"TR117", "TR126", "TR147"}
    assert all(r["role"] for r in family.reports)
    for name in ALL_NAMES:
        assert resolve_spec(name, CONFIGS).role, f"{name} has no design role"


def test_spec_hash_ignores_prose_but_not_architecture(tmp_path: Path) -> None:
    base = (CONFIGS / "tiny-gpt2.yaml").read_text()
    a = tmp_path / "a" / "m.yaml"
    b = tmp_path / "b" / "m.yaml"
    c = tmp_path / "c" / "m.yaml"
    for path, text in ((a, base), (b, base.replace("harness smoke tests", "smoke")), (c, base.replace("seed: 0", "seed: 1"))):
        path.parent.mkdir()
        path.write_text(text)
    assert load_spec(a).spec_hash == load_spec(b).spec_hash
    assert load_spec(a).spec_hash != load_spec(c).spec_hash


def test_untied_and_half_precision_sizes() -> None:
    shapes = {"b": (3,), "a": (2, 2)}
    # header {"__metadata__":{"format":"pt"},"a":...,"b":...} padded to 8, plus 7 floats.
    size = safetensors_file_size(shapes, "float32")
    assert (size - 8 - 7 * 4) % 8 == 0
    assert safetensors_file_size(shapes, "float16") == size - 7 * 2


BAD_SPECS = [
    ("syntax", "n_embd: [1, 2\n", "invalid YAML at line"),
    ("list", "- n_embd: 2\n", "expected a mapping of keys to values, got a list"),
    ("empty", "", "expected a mapping of keys to values, got an empty file"),
    ("typo", "n_embd: 4\nn_layer: 1\nn_head: 2\nn_emdb: 3\n", "unknown key 'n_emdb' (did you mean 'n_embd'?)"),
    ("type", "n_embd: four\nn_layer: 1\nn_head: 2\n", "n_embd must be an integer, got 'four' (str)"),
    ("bool", "n_embd: 4\nn_layer: true\nn_head: 2\n", "n_layer must be an integer, got True (bool)"),
    ("zero", "n_embd: 4\nn_layer: 0\nn_head: 2\n", "n_layer must be positive, got 0"),
    ("negative", "n_embd: 4\nn_layer: 1\nn_head: 2\nn_inner: -8\n", "n_inner must be positive, got -8"),
    ("divisible", "n_embd: 10\nn_layer: 1\nn_head: 3\n", "n_embd (10) is not divisible by n_head (3)"),
    ("missing", "n_embd: 4\nn_head: 2\n", "missing required key 'n_layer'"),
    ("dropout", "n_embd: 4\nn_layer: 1\nn_head: 2\nattn_pdrop: 1.5\n", "attn_pdrop must be in [0, 1), got 1.5"),
    ("dtype", "n_embd: 4\nn_layer: 1\nn_head: 2\ndtype: float8\n", "dtype 'float8' is not one of"),
    ("duplicate", "n_embd: 4\nn_embd: 8\nn_layer: 1\nn_head: 2\n", "duplicate key 'n_embd'"),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_spec_is_refused_naming_file_and_key(tmp_path: Path, case: str, text: str, message: str) -> None:
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}: ") or str(info.value).startswith(f"{path.name}: ")
    assert info.value.exit_code == 2


def test_names_that_escape_or_are_unknown() -> None:
    with pytest.raises(UsageError, match=r"'\.\./x' is not a model name .*valid names: .*gpt2-25m"):
        spec_path("../x", CONFIGS)
    with pytest.raises(UsageError, match=r"unknown model 'gpt2-999m'; valid names: gpt2-100m, gpt2-25m, gpt2-50m, gpt2-5m, tiny-gpt2"):
        spec_path("gpt2-999m", CONFIGS)
    with pytest.raises(UsageError, match="no such spec file: nowhere.yaml"):
        spec_path("nowhere.yaml", CONFIGS)
    with pytest.raises(UsageError, match="not both"):
        resolve_targets(["tiny-gpt2"], all_=True, folder=CONFIGS)
    with pytest.raises(UsageError, match="at least one model name"):
        resolve_targets([], all_=False, folder=CONFIGS)
