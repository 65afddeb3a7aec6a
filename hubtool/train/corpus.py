"""Training text: where it comes from, its fingerprint, and its packing into token sequences.

Sources are plain-text files or globs, JSONL files (one ``{"text": ...}`` per line), or a
Hub dataset (``hf://datasets/ORG/NAME``, its .txt/.jsonl files, fetched through
huggingface_hub). With no source, the text is drawn at run time from the docstrings of
the installed Python standard library, so the default works offline and the repository
carries no third-party text. Whatever the source, the corpus is recorded by sha256 and
token count.
"""

from __future__ import annotations

import glob
import hashlib
import json
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubtool.errors import CorpusError, display_path

HUB_PREFIX = "hf://datasets/"
HUB_PATTERNS = ("*.txt", "*.jsonl")
STDLIB_DOCS_SCRIPT = Path(__file__).with_name("stdlib_docs.py")


@dataclass(frozen=True)
class Corpus:
    """Documents in a fixed order, with where they came from.

    ``sha256`` covers every document's UTF-8 bytes, each followed by a NUL byte (which
    no accepted document contains), so it changes with any text or order change.
    """

    sources: tuple[str, ...]
    documents: tuple[str, ...]

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for doc in self.documents:
            digest.update(doc.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()


@dataclass(frozen=True)
class PackedCorpus:
    """The corpus as ``sequences`` (a LongTensor [n, seq_len]) cut from one token stream."""

    corpus: Corpus
    sequences: Any
    tokens: int  # tokens in the stream, end-of-text separators included

    def record(self) -> dict[str, Any]:
        """What provenance keeps about the corpus."""
        return {
            "sources": list(self.corpus.sources),
            "sha256": self.corpus.sha256,
            "tokens": self.tokens,
            "documents": len(self.corpus.documents),
        }


def stdlib_documents() -> list[str]:
    """The standard library's docstrings, read in a fresh isolated interpreter (see stdlib_docs.py)."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(STDLIB_DOCS_SCRIPT)], capture_output=True, check=False, timeout=300
    )
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()
        raise CorpusError("cannot read the default corpus (standard library docstrings): "
                          f"{tail[-1] if tail else done.returncode}")
    return json.loads(done.stdout)


def _read_text(path: Path) -> str:
    """A file's text; one-line errors for missing, empty and binary files."""
    shown = display_path(path)
    if not path.is_file():
        raise CorpusError(f"{shown}: corpus file does not exist" if not path.exists() else f"{shown}: not a file")
    data = path.read_bytes()
    if not data.strip():
        raise CorpusError(f"{shown}: corpus file is empty")
    if b"\0" in data:
        raise CorpusError(f"{shown}: corpus file is binary (contains NUL bytes), not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{shown}: corpus file is not UTF-8 text (byte {exc.start})") from None


def file_documents(path: Path) -> list[str]:
    """A .jsonl file gives one document per line's "text"; any other file is one document."""
    text = _read_text(path)
    if path.suffix != ".jsonl":
        return [text]
    docs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line).get("text")
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, str):
            raise CorpusError(f"{display_path(path)}:{number}: expected a JSON object with a \"text\" string")
        if value.strip():
            docs.append(value)
    if not docs:
        raise CorpusError(f"{display_path(path)}: corpus file has no text")
    return docs


def _expand(source: str) -> list[Path]:
    """A path or a glob -> files, sorted; a glob matching nothing is an error."""
    if glob.has_magic(source):
        matches = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
        if not matches:
            raise CorpusError(f"{source}: no corpus files match")
        return matches
    return [Path(source)]


def _hub_files(repo_id: str) -> list[Path]:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, repo_type="dataset", allow_patterns=list(HUB_PATTERNS)))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        raise CorpusError(f"{HUB_PREFIX}{repo_id}: cannot fetch the dataset: {str(exc).splitlines()[0]}") from None
    files = sorted(p for pattern in HUB_PATTERNS for p in folder.rglob(pattern) if p.is_file())
    if not files:
        raise CorpusError(f"{HUB_PREFIX}{repo_id}: the dataset has no .txt or .jsonl files")
    return files


def load_corpus(sources: list[str] | tuple[str, ...] | None = None) -> Corpus:
    """Files, globs and ``hf://datasets/ORG/NAME`` in the order given; none: stdlib docstrings."""
    if not sources:
        label = f"python-stdlib-docstrings (Python {platform.python_version()})"
        return Corpus((label,), tuple(stdlib_documents()))
    names: list[str] = []
    docs: list[str] = []
    for source in sources:
        if source.startswith(HUB_PREFIX):
            repo_id = source[len(HUB_PREFIX):].strip("/")
            names.append(source)
            for path in _hub_files(repo_id):
                docs.extend(file_documents(path))
            continue
        for path in _expand(source):
            names.append(display_path(path))
            docs.extend(file_documents(path))
    return Corpus(tuple(names), tuple(docs))


def pack(corpus: Corpus, tokenizer: Any, *, seq_len: int) -> PackedCorpus:
    """Tokenize, join documents with end-of-text, cut into full ``seq_len`` rows (no padding).

    The incomplete tail of the stream is dropped rather than padded.
    """
    import torch

    eos = tokenizer.eos_token_id
    if eos is None:
        raise CorpusError("the model's tokenizer has no end-of-text token to separate documents")
    encoded = tokenizer(list(corpus.documents), add_special_tokens=False, verbose=False)["input_ids"]
    stream: list[int] = []
    for ids in encoded:
        stream.extend(ids)
        stream.append(eos)
    rows = len(stream) // seq_len
    if rows == 0:
        raise CorpusError(
            f"corpus ({', '.join(corpus.sources)}) has {len(stream)} tokens, fewer than one sequence of {seq_len}"
        )
    sequences = torch.tensor(stream[: rows * seq_len], dtype=torch.long).view(rows, seq_len)
    return PackedCorpus(corpus, sequences, len(stream))
