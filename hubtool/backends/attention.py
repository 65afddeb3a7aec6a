"""transformers with a named attention implementation: ``eager`` (plain PyTorch, the parity
reference) or ``sdpa`` (torch's scaled_dot_product_attention kernels).

``load`` reads safetensors only, never remote code, and records what transformers reported
while loading. ``proof`` checks that the model really runs the attention it is labelled
with: transformers can fall back silently when an implementation is unavailable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast


@dataclass
class Loaded:
    """A loaded model plus what is known about how it runs."""

    model: Any
    info: dict[str, Any] = field(default_factory=dict)
    refresh: Callable[[], dict[str, Any]] | None = None

    def refresh_info(self) -> dict[str, Any]:
        """``info`` with counters read now (compile's graph and cache counters)."""
        if self.refresh is not None:
            self.info.update(self.refresh())
        return self.info


def load(folder: Path, *, device: str = "cpu", dtype: str = "float32", attn_implementation: str = "eager") -> Loaded:
    """``from_pretrained`` without remote code (pickle weights get here only when allowed); records the load report."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    start = time.perf_counter()
    # output_loading_info=True makes it return (model, loading info); its annotation names the model only.
    model, loading = cast(tuple[Any, dict[str, Any]], AutoModelForCausalLM.from_pretrained(
        str(folder),
        attn_implementation=attn_implementation,
        dtype=getattr(torch, dtype),
        trust_remote_code=False,
        local_files_only=True,
        output_loading_info=True,
    ))
    model = model.to(device).eval()
    info = {
        "attn_implementation": attn_implementation,
        "attn_implementation_used": getattr(model.config, "_attn_implementation", None),
        "device": device,
        "dtype": dtype,
        "load_seconds": round(time.perf_counter() - start, 4),
        "missing_keys": sorted(loading.get("missing_keys", [])),
        "unexpected_keys": sorted(loading.get("unexpected_keys", [])),
        "mismatched_keys": sorted(str(k) for k in loading.get("mismatched_keys", [])),
    }
    return Loaded(model=model, info=info)


def proof(info: dict[str, Any]) -> list[str]:
    """Why this run does not count as the labelled attention (empty: it does)."""
    want, used = info.get("attn_implementation"), info.get("attn_implementation_used")
    if used != want:
        return [f"transformers ran attention {used!r}, not the requested {want!r}"]
    return []
