"""Built folders: exact sizes, determinism across processes, offline reload, tokenizer ids."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hubtool.build.folder import build_model
from hubtool.build.tokenizer import BUNDLED_SHA256, bundled_files
from hubtool.errors import TokenizerError
from hubtool.evidence.provenance import read_provenance as _read_provenance
from hubtool.folder.hashing import sha256_file
from hubtool.folder.names import PROVENANCE_FILE
from hubtool.folder.safetensors import tensor_digests as safetensors_digests
from hubtool.spec.catalog import resolve_spec
from hubtool.spec.model import load_spec
from tests.conftest import CONFIGS, MODEL_PARAMS, REFERENCE, run_hubtool


def read_provenance(folder):
    return _read_provenance(folder).to_dict()


EXPECTED_FILES = {
    "config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
    "tokenizer_config.json", "vocab.json", "merges.txt", PROVENANCE_FILE,
}


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_built_folder_matches_spec_and_reference(built, name: str) -> None:
    folder = built(name)
    spec = resolve_spec(name, CONFIGS)
    assert {p.name for p in folder.iterdir()} == EXPECTED_FILES
    assert (folder / "model.safetensors").stat().st_size == spec.weight_bytes == REFERENCE[name][5]
    prov = read_provenance(folder)
    assert prov["parameters"] == spec.parameters == REFERENCE[name][4]
    assert prov["spec"]["sha256"] == spec.spec_hash and prov["seed"] == 0
    assert prov["libraries"]["torch"] and prov["libraries"]["transformers"]
    assert "version" in prov["hubtool"] and "git_commit" in prov["hubtool"]
    for fname, meta in prov["files"].items():
        assert sha256_file(folder / fname) == meta["sha256"]
        assert (folder / fname).stat().st_size == meta["size"]
    assert set(prov["files"]) == EXPECTED_FILES - {PROVENANCE_FILE}
    config = json.loads((folder / "config.json").read_text())
    for key, value in spec.config.items():
        assert config[key] == value, key


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_transformers_reload_is_bit_identical(built, name: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    folder = built(name)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.num_parameters() == REFERENCE[name][4]
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    import hashlib

    recorded = read_provenance(folder)["tensors"]
    state = model.state_dict()
    for tensor_name, meta in recorded.items():
        tensor = state[tensor_name]
        assert tensor.dtype == torch.float32
        digest = hashlib.sha256(tensor.detach().contiguous().numpy().tobytes()).hexdigest()
        assert digest == meta["sha256"], tensor_name
    assert set(recorded) == set(state) - {"lm_head.weight"}


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_tokenizer_loads_offline_and_encodes_gpt2(built, name: str) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built(name))
    assert tok("Hello world")["input_ids"] == [15496, 995]
    assert len(tok) == 50257 and tok.eos_token == "<|endoftext|>"
    assert tok.decode([15496, 995]) == "Hello world"


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_build_in_another_process_is_byte_identical(built, tmp_path: Path, name: str) -> None:
    family_dir = built(name).parent
    done = run_hubtool("build", name, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"{name}: built in" in done.stdout
    assert sha256_file(tmp_path / name / "model.safetensors") == sha256_file(family_dir / name / "model.safetensors")
    assert safetensors_digests(tmp_path / name / "model.safetensors") == read_provenance(family_dir / name)["tensors"]


def test_rebuild_is_a_noop_unless_forced(tmp_path: Path) -> None:
    spec = resolve_spec("tiny-gpt2", CONFIGS)
    first = build_model(spec, root=tmp_path)
    assert first.status == "built"
    weights = tmp_path / "tiny-gpt2" / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    assert build_model(spec, root=tmp_path).status == "up-to-date"
    assert weights.stat().st_mtime_ns == mtime
    forced = build_model(spec, root=tmp_path, force=True)
    assert forced.status == "rebuilt" and weights.stat().st_mtime_ns != mtime
    # A damaged folder is not "up to date".
    weights.write_bytes(b"")
    assert build_model(spec, root=tmp_path).status == "rebuilt"
    assert weights.stat().st_size == spec.weight_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-gpt2"]


def test_tokenizer_from_a_local_folder(tiny_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tok_src = tmp_path / "my-tokenizer"
    shutil.copytree(tiny_dir, tok_src)
    spec_file = tmp_path / "local-tok.yaml"
    spec_file.write_text((CONFIGS / "tiny-gpt2.yaml").read_text().replace("tokenizer: gpt2", "tokenizer: ./my-tokenizer"))
    result = build_model(load_spec(spec_file), root=tmp_path / "out")
    assert AutoTokenizer.from_pretrained(result.path)("Hello world")["input_ids"] == [15496, 995]
    assert (result.path / "vocab.json").read_bytes() == (tiny_dir / "vocab.json").read_bytes()


def test_bad_tokenizer_source_leaves_nothing(tmp_path: Path) -> None:
    spec_file = tmp_path / "bad-tok.yaml"
    spec_file.write_text((CONFIGS / "tiny-gpt2.yaml").read_text().replace("tokenizer: gpt2", "tokenizer: ./missing"))
    with pytest.raises(TokenizerError, match="tokenizer folder .*missing does not exist"):
        build_model(load_spec(spec_file), root=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tokenizer_files_are_checked_by_sha256(tmp_path: Path) -> None:
    real = bundled_files()
    assert {name: sha256_file(p) for name, p in real.items()} == BUNDLED_SHA256
    for name, path in real.items():
        shutil.copyfile(path, tmp_path / name)
    with open(tmp_path / "vocab.bpe", "a") as fh:
        fh.write("x y\n")
    with pytest.raises(TokenizerError, match=r"vocab\.bpe: sha256 .* does not match"):
        bundled_files(tmp_path)


# DESIGN.md's model.safetensors sizes, measured when the header held only {"format": "pt"}.
DESIGN_TABLE_BYTES = {"tiny-gpt2": 413_296, "gpt2-25m": 100_068_208, "gpt2-50m": 205_913_840, "gpt2-100m": 384_363_352}


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_weights_metadata_names_version_spec_and_seed(built, name: str) -> None:
    from safetensors import safe_open

    from hubtool.runtime.environment import hubtool_version

    spec = resolve_spec(name, CONFIGS)
    with safe_open(str(built(name) / "model.safetensors"), framework="pt") as fh:
        metadata = fh.metadata()
    assert metadata == {"format": "pt", "hubtool_version": hubtool_version(), "seed": "0",
                        "spec_sha256": spec.spec_hash}
    assert len(metadata["spec_sha256"]) == 64


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_size_growth_is_exactly_the_metadata_header(built, name: str) -> None:
    """New sizes = DESIGN.md's sizes + the header growth from the metadata, to the byte."""
    from hubtool.folder.safetensors import file_size, read_header

    spec = resolve_spec(name, CONFIGS)
    path = built(name) / "model.safetensors"
    header = read_header(path)
    plain = file_size(spec.tensor_shapes(), spec.dtype)  # {"format": "pt"} only, as transformers writes
    data = sum(t.end - t.start for t in header.tensors.values())
    plain_header_len = plain - 8 - data
    assert path.stat().st_size == REFERENCE[name][5] == spec.weight_bytes
    assert path.stat().st_size - plain == header.header_len - plain_header_len > 0
    assert header.header_len % 8 == 0 and plain_header_len % 8 == 0
    if name in DESIGN_TABLE_BYTES:
        assert plain == DESIGN_TABLE_BYTES[name]


def test_metadata_keys_are_written_in_sorted_order(tiny_dir: Path) -> None:
    """Sorted keys make rebuilds byte-identical (the safetensors library uses hash order)."""
    raw = (tiny_dir / "model.safetensors").read_bytes()
    header = raw[8 : 8 + int.from_bytes(raw[:8], "little")]
    assert header.startswith(b'{"__metadata__":{"format":"pt","hubtool_version":"')
    assert b'","seed":"0","spec_sha256":"' in header


@pytest.mark.parametrize("name", ["tiny-gpt2", "gpt2-5m"])
def test_tokenizer_truncates_at_the_model_context(family_dir: Path, name: str) -> None:
    import logging

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(family_dir / name)
    assert tok.model_max_length == 1024
    assert json.loads((family_dir / name / "tokenizer_config.json").read_text())["model_max_length"] == 1024
    text = "hello" + " hello" * 1999
    assert len(tok(text, truncation=False, verbose=False)["input_ids"]) == 2000
    assert len(tok(text, truncation=True)["input_ids"]) == 1024

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("transformers.tokenization_utils_base")
    logger.addHandler(handler)
    try:
        ids = AutoTokenizer.from_pretrained(family_dir / name)(text)["input_ids"]
    finally:
        logger.removeHandler(handler)
    assert len(ids) == 2000
    assert any("longer than the specified maximum sequence length for this model (2000 > 1024)" in m for m in seen), seen


def test_a_swallowed_ctrl_c_still_stops_the_build_before_it_publishes(tmp_path: Path) -> None:
    """A Ctrl-C that lands in a library's import code can be swallowed there; the signal handler has
    recorded it, and the build checks before its rename into place (exit 130 from the CLI)."""
    from hubtool.runtime import interrupt

    interrupt._REQUESTED.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            build_model(resolve_spec("tiny-gpt2", CONFIGS), root=tmp_path)
    finally:
        interrupt._REQUESTED.clear()
    assert [p.name for p in tmp_path.iterdir()] == [] or not (tmp_path / "tiny-gpt2").exists()
    assert not list(tmp_path.glob(".tiny-gpt2.tmp-*"))
