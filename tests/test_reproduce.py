"""The "Reproduce" data: its commands and its two transformers lines really give the same weights."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hubtool.build.folder import build_model
from hubtool.build.reproduce import reproduction, transformers_lines
from hubtool.errors import ArtifactError
from hubtool.folder.hashing import sha256_file
from hubtool.folder.safetensors import read_header, tensor_digests
from hubtool.runtime.environment import hubtool_version
from hubtool.spec.catalog import resolve_spec
from hubtool.spec.model import load_spec
from tests.conftest import CONFIGS

LINE_MODELS = ["tiny-gpt2", "gpt2-5m", "half-tiny"]
# Runs each model's snippet (imports + the two lines) in a fresh namespace and prints every
# tensor's sha256; one interpreter for all of them (torch starts once). Never imports hubtool.
_RUNNER = """
import hashlib, json, sys
out = {}
for name, code in json.loads(sys.argv[1]).items():
    scope = {}
    exec(code, scope)
    out[name] = {k: hashlib.sha256(v.detach().contiguous().view(scope["torch"].uint8).numpy().tobytes()).hexdigest()
                 for k, v in scope["model"].state_dict().items()}
assert not [m for m in sys.modules if m.split(".")[0] == "hubtool"]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reproduce")
    specs = tmp_path_factory.mktemp("specs")
    (specs / "half-tiny.yaml").write_text("n_embd: 4\nn_layer: 1\nn_head: 2\nseed: 7\ndtype: float16\n")
    for spec in (resolve_spec("tiny-gpt2", CONFIGS), resolve_spec("gpt2-5m", CONFIGS), load_spec(specs / "half-tiny.yaml")):
        build_model(spec, root=root)
    (root / "specs").symlink_to(specs)
    return root


def _spec(root: Path, name: str):
    return load_spec(root / "specs" / f"{name}.yaml") if name == "half-tiny" else resolve_spec(name, CONFIGS)


@pytest.fixture(scope="module")
def produced(root: Path) -> dict[str, dict[str, str]]:
    """Tensor sha256s from running each model's Reproduce snippet in a plain interpreter."""
    snippets = {name: reproduction(root / name, spec=_spec(root, name)).python for name in LINE_MODELS}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(snippets)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("name", LINE_MODELS)
def test_two_transformers_lines_give_the_built_tensors(root: Path, produced: dict, name: str) -> None:
    spec = _spec(root, name)
    rep = reproduction(root / name, spec=spec)
    assert rep.transformers_lines[0] == f"torch.manual_seed({spec.seed})"
    assert rep.transformers_lines[1].startswith("model = GPT2LMHeadModel(GPT2Config(activation_function='gelu_new', ")
    assert f"n_embd={spec.config['n_embd']}, " in rep.transformers_lines[1]
    assert rep.transformers_lines[1].endswith(".to(torch.float16)") == (name == "half-tiny")
    assert rep.python == f"{rep.imports}\n{rep.transformers_lines[0]}\n{rep.transformers_lines[1]}\n"
    built = tensor_digests(root / name / "model.safetensors")
    mine = produced[name]
    assert {k: v["sha256"] for k, v in built.items()} == {k: v for k, v in mine.items() if k != "lm_head.weight"}
    assert mine["lm_head.weight"] == built["transformer.wte.weight"]["sha256"]  # tied


def test_record_names_spec_hash_version_and_commands(root: Path) -> None:
    spec = resolve_spec("tiny-gpt2", CONFIGS)
    rep = reproduction(root / "tiny-gpt2", spec=spec)
    metadata = read_header(root / "tiny-gpt2" / "model.safetensors").metadata
    assert rep.build_command == "hubtool build tiny-gpt2"
    assert rep.spec_sha256 == spec.spec_hash == metadata["spec_sha256"]
    assert (rep.spec_source, rep.spec_file, rep.seed, rep.weights) == ("bundled", "tiny-gpt2.yaml", 0, "random")
    assert rep.train_commands == [] and rep.corpus is None and rep.notes == []
    assert rep.hubtool["version"] == hubtool_version() == metadata["hubtool_version"]
    assert set(rep.hubtool) >= {"version", "git_commit", "git_dirty"}
    assert rep.to_dict()["python"] == rep.python
    assert reproduction(root / "half-tiny", spec=_spec(root, "half-tiny")).spec_source == "family"


@pytest.mark.slow
def test_build_command_gives_the_same_bytes(root: Path, tmp_path: Path) -> None:
    rep = reproduction(root / "gpt2-5m", spec=resolve_spec("gpt2-5m", CONFIGS))
    args = shlex.split(rep.build_command)
    assert args[:2] == ["hubtool", "build"]
    done = subprocess.run([sys.executable, "-m", "hubtool", *args[1:], "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HUBTOOL_CONFIGS": str(CONFIGS)})
    assert done.returncode == 0, done.stderr
    assert sha256_file(tmp_path / "gpt2-5m" / "model.safetensors") == sha256_file(root / "gpt2-5m" / "model.safetensors")


@pytest.mark.slow
def test_trained_folder_gives_train_commands_that_reproduce_it(root: Path, tmp_path: Path) -> None:
    from hubtool.train.loop import train_model

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"Paragraph {i}: the quick brown fox jumps over the lazy dog." for i in range(200)))
    trained = tmp_path / "a" / "tiny-gpt2"
    shutil.copytree(root / "tiny-gpt2", trained)
    train_model(trained, corpus=[str(corpus)], steps=3, seq_len=16, batch_size=2, lr=0.01, seed=5)
    spec = resolve_spec("tiny-gpt2", CONFIGS)
    rep = reproduction(trained, spec=spec)
    assert rep.weights == "trained"
    assert rep.train_commands == [
        f"hubtool train tiny-gpt2 --corpus {corpus} --steps 3 --seq-len 16 --batch-size 2 --lr 0.01 --seed 5"
    ]
    assert rep.corpus["sources"] == [str(corpus)] and len(rep.corpus["sha256"]) == 64
    assert "weights before training" in " ".join(rep.notes)
    # Training keeps the build's record in the weights' metadata.
    assert read_header(trained / "model.safetensors").metadata == read_header(root / "tiny-gpt2" / "model.safetensors").metadata

    again = tmp_path / "b"
    env = {**os.environ, "HUBTOOL_CONFIGS": str(CONFIGS), "HUBTOOL_ARTIFACTS": str(again)}
    for command in [rep.build_command, *rep.train_commands]:
        done = subprocess.run([sys.executable, "-m", "hubtool", *shlex.split(command)[1:]], capture_output=True,
                              text=True, timeout=300, env=env, cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
    assert sha256_file(again / "tiny-gpt2" / "model.safetensors") == sha256_file(trained / "model.safetensors")


def test_folder_from_another_spec_is_refused(root: Path, tmp_path: Path) -> None:
    other = tmp_path / "tiny-gpt2.yaml"
    other.write_text((CONFIGS / "tiny-gpt2.yaml").read_text().replace("seed: 0", "seed: 1"))
    with pytest.raises(ArtifactError, match=r"was built from another version of tiny-gpt2\.yaml"):
        reproduction(root / "tiny-gpt2", spec=load_spec(other))
    assert transformers_lines(load_spec(other))[0] == "torch.manual_seed(1)"
