"""``hubtool train`` on tiny-gpt2: learning, determinism, resume, two processes, bad corpora."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubtool.cli.main import cli
from hubtool.evidence.provenance import read_provenance as _read_provenance
from hubtool.folder.hashing import sha256_file
from hubtool.folder.safetensors import tensor_digests as safetensors_digests
from hubtool.train.loop import CHECKPOINT_DIR, CHECKPOINT_FILE, train_model


def read_provenance(folder):
    return _read_provenance(folder).to_dict()

REPO = Path(__file__).resolve().parent.parent
# Small batches keep the 50,257-way softmax cheap; one thread avoids oversubscribing a shared CPU.
SMALL = {"seq_len": 32, "batch_size": 4, "lr": 2e-2}
SMALL_ARGS = ["--seq-len", "32", "--batch-size", "4", "--lr", "2e-2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HUBTOOL_CONFIGS": str(REPO / "model_configs")}


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny(tiny_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's freshly built tiny-gpt2 folder."""
    return Path(shutil.copytree(tiny_dir, tmp_path / "tiny-gpt2"))


def folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under the folder, hidden ones included."""
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def hubtool(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hubtool.cli.main", *args], env=ENV,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_loss_falls_and_outputs_are_recorded(tiny: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    before = sha256_file(tiny / "model.safetensors")
    seen = []
    result = train_model(tiny, steps=50, seed=0, progress=seen.append, **SMALL)

    curve = json.loads((tiny / "train_loss.json").read_text())
    losses = curve["loss"]
    assert curve["step"] == list(range(1, 51)) and len(losses) == 50
    assert [p.step for p in seen] == list(range(1, 51)) and all(p.tokens_per_s > 0 for p in seen)
    # From ~ln(50257) = 10.8 (uniform) the unigram statistics alone bring it well below 9.
    assert losses[0] > 10.5
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 1.5
    assert result.final_loss == losses[-1] < 9.0

    prov = read_provenance(tiny)
    training = prov["training"]
    assert training["steps"] == 50 and training["tokens"] == 50 * 4 * 32
    assert (training["seq_len"], training["batch_size"], training["lr"], training["seed"]) == (32, 4, 2e-2, 0)
    assert training["processes"] == 1 and training["loss_curve"] == "train_loss.json"
    assert training["final_loss"] == losses[-1]
    corpus = training["corpus"]
    assert corpus["sources"][0].startswith("python-stdlib-docstrings")
    assert len(corpus["sha256"]) == 64 and corpus["tokens"] > 50_000
    assert training["runs"][0]["weights_before"] == before
    for name in ("model.safetensors", "train_loss.json", "train_loss.png"):
        assert prov["files"][name] == {"sha256": sha256_file(tiny / name), "size": (tiny / name).stat().st_size}
    assert prov["tensors"] == safetensors_digests(tiny / "model.safetensors")
    assert (tiny / "train_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tiny / CHECKPOINT_DIR).exists()
    assert not [p.name for p in tiny.iterdir() if p.name.startswith(".")]

    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    batch = torch.arange(100, 132).unsqueeze(0)
    assert torch.isfinite(model(input_ids=batch, labels=batch).loss)

    # A second run continues from the trained weights and counts steps across runs.
    train_model(tiny, steps=5, seed=1, **SMALL)
    prov = read_provenance(tiny)
    assert prov["training"]["steps"] == 55 and len(prov["training"]["runs"]) == 2
    assert prov["training"]["runs"][1]["weights_before"] == prov["training"]["runs"][0]["weights_after"]
    assert json.loads((tiny / "train_loss.json").read_text())["step"][-1] == 55


@pytest.mark.slow
def test_same_seed_same_bytes(tiny_dir: Path, tmp_path: Path) -> None:
    digests = []
    for run in ("a", "b"):
        folder = Path(shutil.copytree(tiny_dir, tmp_path / run))
        train_model(folder, steps=15, seed=3, **SMALL)
        digests.append(sha256_file(folder / "model.safetensors"))
    other = Path(shutil.copytree(tiny_dir, tmp_path / "other-seed"))
    train_model(other, steps=15, seed=4, **SMALL)
    assert digests[0] == digests[1]
    assert digests[0] != sha256_file(tiny_dir / "model.safetensors")
    assert sha256_file(other / "model.safetensors") != digests[0]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_bytes(tiny_dir: Path, tmp_path: Path) -> None:
    steps, every = 120, 10
    reference = Path(shutil.copytree(tiny_dir, tmp_path / "reference"))
    train_model(reference, steps=steps, checkpoint_every=every, seed=0, **SMALL)

    folder = Path(shutil.copytree(tiny_dir, tmp_path / "interrupted"))
    untouched = sha256_file(folder / "model.safetensors")
    checkpoint = folder / CHECKPOINT_DIR / CHECKPOINT_FILE
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubtool.cli.main", "train", str(folder), "--steps", str(steps),
         "--checkpoint-every", str(every), *SMALL_ARGS],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert checkpoint.exists(), "the run never wrote a checkpoint"
    assert sha256_file(folder / "model.safetensors") == untouched  # killed runs leave the weights alone
    assert read_provenance(folder)["training"] is None

    # Resuming with different options is refused; with none, the checkpoint's are used.
    refused = CliRunner().invoke(cli, ["train", str(folder), "--resume", "--steps", "7"])
    assert refused.exit_code == 2  # the options given contradict the run to resume
    assert "steps=120" in refused.output and "--resume" in refused.output

    done = hubtool("train", str(folder), "--resume")
    assert done.returncode == 0, done.stderr
    assert "resumed at step" in done.stdout
    assert sha256_file(folder / "model.safetensors") == sha256_file(reference / "model.safetensors")
    assert json.loads((folder / "train_loss.json").read_text()) == json.loads((reference / "train_loss.json").read_text())
    assert not (folder / CHECKPOINT_DIR).exists()


@pytest.mark.slow
def test_two_processes_match_one(tiny_dir: Path, tmp_path: Path) -> None:
    """Two processes each take half of every batch; DDP averages their gradients.

    (accelerate's ``--cpu`` flag alone starts a single process; ACCELERATE_USE_CPU=1 with
    its multi-process launcher gives two CPU processes talking over gloo.)

    That is the same mean gradient as one process on the whole batch, summed in another
    order, so float32 rounding differs in the last bits. Adam divides each step by the
    gradient's running RMS, which lifts those rounding differences toward the size of
    one update (lr = 2e-2) for entries whose gradients are tiny. Tolerances: every
    logged loss within 1e-4, every weight within 5e-4 (2.5% of one update), and the
    whole difference under 0.1% of how far training moved the weights. Measured here
    (20 steps): losses 1.9e-6 apart, weights at most 1.3e-5, norm ratio 2.2e-7.
    """
    import torch
    from safetensors.torch import load_file

    steps = 20
    single = Path(shutil.copytree(tiny_dir, tmp_path / "single"))
    train_model(single, steps=steps, seed=0, **SMALL)
    double = Path(shutil.copytree(tiny_dir, tmp_path / "double"))
    launched = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "-m", "hubtool.cli.main", "train", str(double), "--steps", str(steps), *SMALL_ARGS],
        env={**ENV, "ACCELERATE_USE_CPU": "1"}, capture_output=True, text=True, timeout=240,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert read_provenance(double)["training"]["processes"] == 2

    one, two = (json.loads((f / "train_loss.json").read_text())["loss"] for f in (single, double))
    assert max(abs(a - b) for a, b in zip(one, two, strict=True)) < 1e-4
    start, w1, w2 = (load_file(f / "model.safetensors") for f in (tiny_dir, single, double))
    assert w1.keys() == w2.keys()
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 5e-4
    moved = torch.cat([(w1[k] - start[k]).flatten() for k in w1]).norm()
    apart = torch.cat([(w1[k] - w2[k]).flatten() for k in w1]).norm()
    assert apart < 1e-3 * moved


@pytest.mark.parametrize("kind", ["missing", "empty", "binary", "latin-1", "no-match"])
def test_bad_corpus_is_one_line_and_touches_nothing(tiny: Path, tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"corpus-{kind}.txt"
    if kind == "empty":
        path.write_text("")
    elif kind == "binary":
        path.write_bytes(b"text then \x00\x01\x02 binary")
    elif kind == "latin-1":
        path.write_bytes("caf\u00e9 cr\u00e8me".encode("latin-1"))
    source = str(tmp_path / "*.nothing") if kind == "no-match" else str(path)
    before = folder_digest(tiny)
    result = CliRunner().invoke(cli, ["train", str(tiny), "--corpus", source])
    assert result.exit_code == 2  # the text given is the user's input
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    expected = {"missing": "does not exist", "empty": "is empty", "binary": "binary",
                "latin-1": "not UTF-8", "no-match": "no corpus files match"}[kind]
    assert expected in lines[0]
    assert ("*.nothing" if kind == "no-match" else path.name) in lines[0]
    assert folder_digest(tiny) == before


def test_unbuilt_model_says_to_build(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["train", "tiny-gpt2", "--out", str(tmp_path / "nothing")],
                                env={"HUBTOOL_CONFIGS": str(REPO / "model_configs")})
    assert result.exit_code == 3
    assert "run hubtool build tiny-gpt2" in result.output
    assert not (tmp_path / "nothing").exists()


def test_bad_options_are_usage_errors(tiny: Path) -> None:
    before = folder_digest(tiny)
    for args, message in ((["--seq-len", "2000"], "exceeds the model's 1024 positions"),
                          (["--steps", "0"], "steps must be at least 1"),
                          (["--resume"], "no interrupted run to resume")):
        result = CliRunner().invoke(cli, ["train", str(tiny), *args])
        assert result.exit_code in (1, 2) and message in result.output, result.output
    assert folder_digest(tiny) == before


def test_corpus_globs_jsonl_and_packing(tiny_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from hubtool.train.corpus import load_corpus, pack

    (tmp_path / "b.txt").write_text("Hello world")
    (tmp_path / "a.txt").write_text("Hello world again")
    (tmp_path / "c.jsonl").write_text('{"text": "first"}\n\n{"text": "second line"}\n')
    corpus = load_corpus([str(tmp_path / "*.txt"), str(tmp_path / "c.jsonl")])
    assert corpus.documents == ("Hello world again", "Hello world", "first", "second line")
    assert [Path(s).name for s in corpus.sources] == ["a.txt", "b.txt", "c.jsonl"]
    assert load_corpus([str(tmp_path / "c.jsonl"), str(tmp_path / "*.txt")]).sha256 != corpus.sha256

    tok = AutoTokenizer.from_pretrained(str(tiny_dir))
    packed = pack(corpus, tok, seq_len=3)
    # "Hello world again" = 3 tokens, "Hello world" = [15496, 995], each followed by <|endoftext|>.
    stream = [*tok("Hello world again")["input_ids"], 50256, 15496, 995, 50256,
              *tok("first")["input_ids"], 50256, *tok("second line")["input_ids"], 50256]
    assert packed.tokens == len(stream)
    assert packed.sequences.flatten().tolist() == stream[: len(stream) // 3 * 3]
    assert packed.record()["sha256"] == corpus.sha256 and packed.record()["tokens"] == len(stream)

    default = load_corpus()
    assert default.sources[0].startswith("python-stdlib-docstrings") and len(default.documents) > 1000
    assert default.sha256 == load_corpus().sha256  # drawn afresh, identical
