"""Is the folder what it claims to be? Checks beyond the weights' own structure.

Every file provenance lists is compared by sha256 (naming the file that differs), so an
edited config or a swapped tokenizer cannot pass while every backend agrees with every
other on the wrong model. The tokenizer is checked against the config (vocabulary size,
special-token ids) and identified (the GPT-2 BPE by the sha256 of OpenAI's files). For a
build that was never trained, the weights are regenerated from the spec and seed and
compared tensor by tensor, which turns "randomly initialised, seed N" into a verified
claim. Without provenance or a spec, the claims that cannot be tied to anything are listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hubtool.build.tokenizer import BUNDLED_SHA256, HELLO_WORLD_IDS
from hubtool.evidence.provenance import Provenance
from hubtool.evidence.verification import Check
from hubtool.folder.hashing import sha256_file
from hubtool.folder.names import CONFIG_FILE

_LIST_LIMIT = 5
GPT2_VOCAB_FILES = {"vocab.json": BUNDLED_SHA256["encoder.json"], "merges.txt": BUNDLED_SHA256["vocab.bpe"]}


def provenance_files(folder: Path, prov: Provenance | None) -> Check:
    """Every file provenance recorded, still present with the same sha256."""
    if prov is None:
        return Check(name="files match provenance", status="skipped", detail="no provenance.json: nothing recorded")
    changed, gone = [], []
    for name, meta in sorted(prov.files.items()):
        path = folder / name
        if not path.is_file():
            gone.append(name)
        elif sha256_file(path) != meta.sha256:
            changed.append(f"{name} (sha256 {meta.sha256[:12]} at build, now different)")
    if changed or gone:
        parts = [f"changed since the build: {', '.join(changed[:_LIST_LIMIT])}"] if changed else []
        parts += [f"missing: {', '.join(gone[:_LIST_LIMIT])}"] if gone else []
        return Check(name="files match provenance", status="failed", detail="; ".join(parts))
    return Check(name="files match provenance", status="passed",
                 detail=f"{len(prov.files)} files have the sha256 recorded at build")


def config_semantics(differences: list[str] | None) -> Check:
    """config.json against everything the spec's GPT2Config writes (not only the spec's own keys)."""
    if differences is None:
        return Check(name="config as the spec writes it", status="skipped", detail="no spec to compare with")
    if differences:
        return Check(name="config as the spec writes it", status="failed",
                     detail=f"{CONFIG_FILE}: " + "; ".join(differences[:_LIST_LIMIT]))
    return Check(name="config as the spec writes it", status="passed",
                 detail=f"{CONFIG_FILE} equals the spec's GPT2Config, key for key")


def tokenizer_identity(folder: Path) -> str | None:
    """'gpt2' when vocab.json and merges.txt are OpenAI's GPT-2 BPE files, byte for byte; else None."""
    for name, digest in GPT2_VOCAB_FILES.items():
        path = folder / name
        if not path.is_file() or sha256_file(path) != digest:
            return None
    return "gpt2"


def tokenizer_checks(folder: Path, facts: dict[str, Any], config: dict[str, Any], *,
                     claimed: str | None) -> list[Check]:
    """The tokenizer against the config, and against the tokenizer the spec or provenance names."""
    problems = []
    vocab = config.get("vocab_size")
    if vocab is not None and facts["length"] > vocab:
        problems.append(f"it has {facts['length']:,} tokens, more than the model's vocab_size {vocab:,}")
    for key in ("eos_token_id", "bos_token_id"):
        if config.get(key) is not None and facts.get(key) is not None and facts[key] != config[key]:
            problems.append(f"its {key} is {facts[key]}, {CONFIG_FILE} says {config[key]}")
    identity = tokenizer_identity(folder)
    if identity == "gpt2":
        if vocab is not None and facts["length"] != vocab:
            problems.append(f"the tokenizer loads with {facts['length']:,} tokens but vocab_size is {vocab:,} "
                            "(vocab.json and merges.txt are the GPT-2 BPE's: tokenizer.json is not)")
        if facts["hello_world"] != HELLO_WORLD_IDS:
            problems.append(f"'Hello world' encodes as {facts['hello_world']}, the GPT-2 BPE gives {HELLO_WORLD_IDS}")
    checks = [Check(name="tokenizer matches config", status="failed" if problems else "passed",
                    detail="; ".join(problems) if problems else
                    f"{facts['length']:,} tokens, special-token ids as in {CONFIG_FILE}")]
    if claimed == "gpt2" and identity != "gpt2":
        checks.append(Check(name="tokenizer identity", status="failed",
                            detail="the spec names the GPT-2 BPE but vocab.json/merges.txt are not OpenAI's files"))
    elif identity == "gpt2":
        checks.append(Check(name="tokenizer identity", status="passed",
                            detail="GPT-2 byte-level BPE: vocab.json and merges.txt are OpenAI's files (sha256)"))
    else:
        checks.append(Check(name="tokenizer identity", status="skipped",
                            detail="not the GPT-2 BPE files; no other tokenizer is identified"))
    return checks


def regeneration(file_digests: dict[str, dict[str, Any]], regenerated: dict[str, str] | None, *,
                 why_not: str) -> Check:
    """The weights against a fresh ``torch.manual_seed(seed); GPT2LMHeadModel(config)``."""
    if regenerated is None:
        return Check(name="regenerated from spec and seed", status="skipped", detail=why_not)
    differ = sorted(n for n, meta in file_digests.items() if n in regenerated and regenerated[n] != meta["sha256"])
    absent = sorted(n for n in file_digests if n not in regenerated)
    if differ or absent:
        return Check(name="regenerated from spec and seed", status="failed",
                     detail="tensor(s) " + ", ".join((differ + absent)[:_LIST_LIMIT]) +
                     " differ from what the spec and seed generate: not the random initialisation they claim")
    return Check(name="regenerated from spec and seed", status="passed",
                 detail=f"all {len(file_digests)} tensors equal a fresh initialisation from the spec's seed")
