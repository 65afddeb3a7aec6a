"""What a model folder's own files say, measured rather than taken from any label.

Cards are rendered from these facts and audited against them, so both read the same
numbers: the architecture from config.json, parameters and dtype from the safetensors
header, sizes from the file system, training status from provenance or the weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hubtool.errors import ArtifactError, display_path
from hubtool.evidence.provenance import read_provenance
from hubtool.folder.io import read_json_object
from hubtool.folder.names import CONFIG_FILE, WEIGHT_SUFFIX
from hubtool.folder.safetensors import dtype_name, read_header


def weight_facts(folder: Path) -> dict[str, Any]:
    """Parameters, dtypes and bytes from every safetensors file's header (no tensor data read)."""
    files = sorted(p for p in folder.iterdir() if p.suffix == WEIGHT_SUFFIX and p.is_file())
    if not files:
        raise ArtifactError(f"{display_path(folder)}: no .safetensors weights")
    tensors = {name: meta for path in files for name, meta in read_header(path).tensors.items()}
    dtypes = sorted({dtype_name(m.dtype) for m in tensors.values()})
    stored = sum(m.numel for m in tensors.values())
    lm_head = tensors.get("lm_head.weight")
    return {
        "files": {p.name: p.stat().st_size for p in files},
        "bytes": sum(p.stat().st_size for p in files),
        "tensors": len(tensors),
        "parameters": stored,
        "dtypes": dtypes,
        "dtype": dtypes[0] if len(dtypes) == 1 else "mixed",
        "lm_head_parameters": lm_head.numel if lm_head else 0,
    }


def looks_untrained(folder: Path) -> bool | None:
    """True when every LayerNorm is exactly at its init (weight 1, bias 0), as a fresh GPT-2 is.

    Any optimisation step moves them, so this tells random weights from trained ones for
    cards without hubtool provenance. None when the folder has no LayerNorm tensors.
    """
    from safetensors import safe_open

    seen = False
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as fh:
            for name in fh.keys():
                if ".ln_" not in name and "ln_f" not in name:
                    continue
                seen = True
                tensor = fh.get_tensor(name)
                target = 1.0 if name.endswith(".weight") else 0.0
                if not bool((tensor == target).all()):
                    return False
    return True if seen else None


def folder_facts(folder: Path) -> dict[str, Any]:
    """Everything the card states about the model itself, read from its files."""
    config = read_json_object(folder / CONFIG_FILE)
    if config is None:
        raise ArtifactError(f"{display_path(folder)}: no config.json (is this a model folder?)")
    provenance = read_provenance(folder)
    weights = weight_facts(folder)
    training = provenance.training.model_dump() if provenance and provenance.training else None
    n_embd, n_head = config.get("n_embd"), config.get("n_head")
    tied = config.get("tie_word_embeddings", True)
    # A tied lm_head is one tensor with the embedding, however a writer stored it.
    parameters = weights["parameters"] - (weights["lm_head_parameters"] if tied else 0)
    return {
        "architecture": (config.get("architectures") or ["?"])[0],
        "model_type": config.get("model_type"),
        "n_layer": config.get("n_layer"),
        "n_embd": n_embd,
        "n_head": n_head,
        "head_dim": n_embd // n_head if n_embd and n_head else None,
        "n_inner": config.get("n_inner") or (4 * n_embd if n_embd else None),
        "n_positions": config.get("n_positions"),
        "vocab_size": config.get("vocab_size"),
        "activation_function": config.get("activation_function"),
        "tie_word_embeddings": tied,
        "config_dtype": config.get("dtype") or config.get("torch_dtype"),
        "parameters": parameters,
        "weights": weights,
        "trained": bool(training) if provenance else (looks_untrained(folder) is False),
        "training": training,
        "seed": provenance.seed if provenance else None,
        "spec_sha256": provenance.spec.sha256 if provenance else None,
    }
