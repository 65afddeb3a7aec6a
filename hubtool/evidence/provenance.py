"""``provenance.json``: how a folder was made (spec, seed, libraries) and what it held then.

Written by ``build`` and updated by ``train``. ``files`` holds the sha256 and size of every
file the build wrote and ``tensors`` every tensor's digest, so verify can name the file
or tensor that changed since; ``training`` is the training record, bound to the weights it
produced by ``weights_after``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hubtool.evidence.base import Record, Strict
from hubtool.folder.names import PROVENANCE_FILE


class HubtoolIdentity(Strict):
    """The hubtool that wrote a record: version, git commit, and whether its source was edited."""

    version: str
    git_commit: str | None = None
    git_dirty: bool | None = None
    untracked: int | None = None  # untracked files under hubtool/ (counted in git_dirty)


class SpecRecord(Strict):
    name: str
    file: str
    sha256: str
    format: int
    config: dict[str, Any]
    dtype: str
    tokenizer: str


class FileRecord(Strict):
    sha256: str
    size: int


class TensorRecord(Strict):
    dtype: str
    shape: list[int]
    sha256: str


class TrainingRun(Strict):
    steps: int
    tokens: int
    seq_len: int
    batch_size: int
    lr: float
    seed: int
    processes: int
    torch_threads: int
    corpus_sha256: str
    first_loss: float
    final_loss: float
    weights_before: str
    weights_after: str


class TrainingRecord(Strict):
    steps: int
    tokens: int
    seq_len: int
    batch_size: int
    lr: float
    seed: int
    processes: int
    optimizer: str
    corpus: dict[str, Any]
    final_loss: float
    loss_curve: str
    runs: list[TrainingRun]

    @property
    def weights_after(self) -> str:
        """sha256 of the weights the last run wrote: the record describes those bytes only."""
        return self.runs[-1].weights_after


class Provenance(Record):
    SCHEMA = "hubtool.provenance/2"
    REMEDY = "hubtool build NAME --force"

    hubtool: HubtoolIdentity
    spec: SpecRecord
    seed: int
    parameters: int
    libraries: dict[str, str | None]
    files: dict[str, FileRecord]
    tensors: dict[str, TensorRecord]
    training: TrainingRecord | None = None


def read_provenance(folder: Path) -> Provenance | None:
    """The folder's provenance, None when it has none; an invalid one is an error naming it."""
    return Provenance.load(folder / PROVENANCE_FILE)
