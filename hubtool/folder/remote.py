"""What a Hub repo's files say, read without downloading its weights.

``folder_facts`` reads a local folder; this reads the same facts from a repo through
huggingface_hub: the file list and sizes (one model_info call), config.json and README.md
(small files), and each safetensors file's header through HTTP range reads
(``get_safetensors_metadata``, sharded checkpoints included). No tensor byte is fetched,
so re-checking a card costs kilobytes, not the 384 MB of gpt2-100m.

Config keys are read by their common names across architectures (num_hidden_layers or
n_layer, hidden_size or n_embd, ...), so any model whose figures sit in config.json and the
headers can be audited. Whether the weights are trained cannot be told from headers; it is
known only when the repo's provenance.json records the exact weight bytes (by sha256).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubtool.errors import HubError
from hubtool.folder.names import CARD_FILE, CONFIG_FILE, PROVENANCE_FILE, WEIGHT_SUFFIX, WEIGHTS_FILE
from hubtool.folder.safetensors import dtype_name, entries_to_tensors

# fact -> config.json keys that hold it, most common first (GPT-2's own names included).
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "n_layer": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "n_embd": ("hidden_size", "n_embd", "d_model", "dim"),
    "n_head": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "n_inner": ("intermediate_size", "n_inner", "ffn_dim", "d_ff", "hidden_dim"),
    "n_positions": ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "seq_length"),
    "vocab_size": ("vocab_size", "padded_vocab_size"),
}
TIED_BY_DEFAULT = ("gpt2",)  # model types whose config class ties embeddings unless it says otherwise


@dataclass(frozen=True)
class RemoteRepo:
    """One repo at one commit: its card, config, and the facts its files measure."""

    endpoint: str
    repo_id: str
    revision: str  # as asked ("main" when none)
    commit: str  # the commit every file was read at
    card: str | None
    config: dict[str, Any]
    facts: dict[str, Any]
    files_read: dict[str, str] = field(default_factory=dict)  # path -> how it was read
    header_problems: list[str] = field(default_factory=list)


def config_value(config: dict[str, Any], fact: str) -> Any:
    """The first of ``fact``'s keys that config.json (or its text_config) sets."""
    text_config = config.get("text_config")
    for scope in (config, text_config if isinstance(text_config, dict) else {}):
        for key in CONFIG_KEYS[fact]:
            if scope.get(key) is not None:
                return scope[key]
    return None


def _header_facts(files_metadata: dict[str, Any],
                  sizes: dict[str, int | None]) -> tuple[dict[str, Any], list[str], dict]:
    """Parameters, dtypes and bytes from parsed headers, checked with hubtool's own header rules."""
    tensors, problems = {}, []
    for filename, meta in sorted(files_metadata.items()):
        entries = {name: {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": list(t.data_offsets)}
                   for name, t in meta.tensors.items()}
        found, issues = entries_to_tensors(entries, name=filename, data_len=None)
        tensors.update(found)
        problems += issues
    missing = [name for name in files_metadata if sizes.get(name) is None]
    if missing:
        raise HubError(f"the hub did not report the size of {', '.join(sorted(missing))}")
    dtypes = sorted({dtype_name(m.dtype) for m in tensors.values()})
    lm_head = tensors.get("lm_head.weight")
    file_sizes = {name: size for name in sorted(files_metadata) if (size := sizes[name]) is not None}  # all known
    weights = {
        "files": file_sizes,
        "bytes": sum(file_sizes.values()),
        "tensors": len(tensors),
        "parameters": sum(m.numel for m in tensors.values()),
        "dtypes": dtypes,
        "dtype": dtypes[0] if len(dtypes) == 1 else "mixed",
        "lm_head_parameters": lm_head.numel if lm_head else 0,
    }
    return weights, problems, tensors


def _provenance_facts(api, repo_id: str, commit: str, weights_sha256: str | None) -> dict[str, Any] | None:
    """Training status, seed and spec hash from provenance.json, only if it records these exact weights."""
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(repo_id, PROVENANCE_FILE, revision=commit, endpoint=api.endpoint, token=api.token)
    try:
        prov = json.loads(Path(path).read_text(encoding="utf-8"))
        recorded = prov["files"][WEIGHTS_FILE]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not weights_sha256 or recorded != weights_sha256:
        return None
    spec = prov.get("spec") or {}
    return {"trained": bool(prov.get("training")), "training": prov.get("training"), "seed": prov.get("seed"),
            "spec_sha256": spec.get("sha256")}


def remote_facts(repo: str, *, endpoint: str | None = None, token: str | None = None) -> RemoteRepo:
    """Read ``ORG/NAME[@REV]``'s card, config and weight headers; HubError on any failure."""
    from hubtool.hub.client import describe_error, hub_exceptions, make_api, resolve_endpoint
    from hubtool.hub.pull import parse_repo_ref

    repo_id, revision = parse_repo_ref(repo)
    url = resolve_endpoint(endpoint)
    api = make_api(url, token)
    try:
        return _read(api, url, repo_id, revision)
    except HubError:
        raise
    except hub_exceptions() as exc:
        from huggingface_hub import get_token

        sent = bool(token) or get_token() is not None
        raise describe_error(exc, endpoint=url, repo_id=repo_id, revision=revision, token_sent=sent) from None


def _read(api, url: str, repo_id: str, revision: str | None) -> RemoteRepo:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import NotASafetensorsRepoError, SafetensorsParsingError

    info = api.model_info(repo_id, revision=revision, files_metadata=True)
    commit = info.sha
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    read: dict[str, str] = {}

    def small(name: str) -> str | None:
        if name not in siblings:
            return None
        path = hf_hub_download(repo_id, name, revision=commit, endpoint=url, token=api.token)
        read[name] = f"downloaded ({siblings[name].size or 0:,} bytes)"
        return Path(path).read_text(encoding="utf-8", errors="replace")

    card = small(CARD_FILE)
    config_text = small(CONFIG_FILE)
    if config_text is None:
        raise HubError(f"{repo_id}@{commit[:12]} at {url} has no {CONFIG_FILE}: its architecture cannot be read")
    try:
        config = json.loads(config_text)
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise HubError(f"{repo_id}@{commit[:12]}: {CONFIG_FILE} is not a JSON object")
    try:
        meta = api.get_safetensors_metadata(repo_id, revision=commit)
    except NotASafetensorsRepoError:
        raise HubError(f"{repo_id}@{commit[:12]} at {url} has no safetensors weights (model{WEIGHT_SUFFIX} or "
                       f"model{WEIGHT_SUFFIX}.index.json); only safetensors headers can be read without "
                       "downloading") from None
    except SafetensorsParsingError as exc:
        raise HubError(f"{repo_id}@{commit[:12]}: unreadable safetensors header: "
                       f"{' '.join(str(exc).split())[:200]}") from None
    for name in meta.files_metadata:
        read[name] = "header only (HTTP range read)"
    if meta.sharded:
        read[f"model{WEIGHT_SUFFIX}.index.json"] = "downloaded (shard index)"
    sizes = {name: siblings[name].size if name in siblings else None for name in meta.files_metadata}
    weights, problems, tensors = _header_facts(meta.files_metadata, sizes)

    model_type = config.get("model_type")
    tied = config.get("tie_word_embeddings")
    if tied is None:
        tied = model_type in TIED_BY_DEFAULT or "lm_head.weight" not in tensors
    n_embd, n_head = config_value(config, "n_embd"), config_value(config, "n_head")
    n_inner = config_value(config, "n_inner")
    if n_inner is None and model_type in TIED_BY_DEFAULT and n_embd:
        n_inner = 4 * n_embd  # GPT2Config's n_inner=None
    head_dim = config.get("head_dim") or (n_embd // n_head if n_embd and n_head else None)
    sibling = siblings.get(WEIGHTS_FILE)
    weights_sha = sibling.lfs.sha256 if sibling is not None and sibling.lfs else None
    provenance = None
    if PROVENANCE_FILE in siblings:
        provenance = _provenance_facts(api, repo_id, commit, weights_sha)
        read[PROVENANCE_FILE] = "downloaded" + ("" if provenance else " (it describes other weights; not used)")
    facts = {
        "architecture": (config.get("architectures") or ["?"])[0],
        "model_type": model_type,
        "n_layer": config_value(config, "n_layer"),
        "n_embd": n_embd,
        "n_head": n_head,
        "head_dim": head_dim,
        "n_inner": n_inner,
        "n_positions": config_value(config, "n_positions"),
        "vocab_size": config_value(config, "vocab_size"),
        "activation_function": config.get("activation_function") or config.get("hidden_act"),
        "tie_word_embeddings": tied,
        "config_dtype": config.get("dtype") or config.get("torch_dtype"),
        "parameters": weights["parameters"] - (weights["lm_head_parameters"] if tied else 0),
        "weights": weights,
        "trained": provenance["trained"] if provenance else None,
        "training": provenance["training"] if provenance else None,
        "seed": provenance["seed"] if provenance else None,
        "spec_sha256": provenance["spec_sha256"] if provenance else None,
    }
    return RemoteRepo(endpoint=url, repo_id=repo_id, revision=revision or "main", commit=commit, card=card,
                      config=config, facts=facts, files_read=read, header_problems=problems)
