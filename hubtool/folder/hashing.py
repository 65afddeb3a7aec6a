"""sha256 of files, and a folder's identity: the hashes of the files that decide the model.

Evidence is bound to bytes, never to file times: every report records the identity of the
folder it measured, and every gate compares it with the identity now. Hashing is cheap
(about 1.5 GB/s here, a quarter of a second for gpt2-100m), so gates hash the files each
time instead of trusting a cache that a restored mtime could fool.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hubtool.folder.names import is_model_file

CHUNK = 1 << 22


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_files(folder: Path) -> list[Path]:
    """The top-level files of ``folder`` that make up the model's identity, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_model_file(p.name))


def folder_identity(folder: Path) -> dict[str, str]:
    """file name -> sha256 for every model file (weights, config, generation config, tokenizer)."""
    return {p.name: sha256_file(p) for p in model_files(folder)}


def identity_changes(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """What differs between two identities, one phrase per file (empty: the same bytes)."""
    changes = []
    for name in sorted(set(recorded) | set(current)):
        if name not in current:
            changes.append(f"{name} is gone")
        elif name not in recorded:
            changes.append(f"{name} is new")
        elif recorded[name] != current[name]:
            changes.append(f"{name} changed")
    return changes
