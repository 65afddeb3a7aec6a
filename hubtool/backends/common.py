"""Loading a model folder with transformers, shared by the torch backends."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class Loaded:
    """A loaded model plus what is known about how it runs."""

    model: Any
    info: dict[str, Any] = field(default_factory=dict)
    refresh: Callable[[], dict[str, Any]] | None = None

    def logits(self, input_ids, attention_mask=None):
        """Logits of one forward pass, no KV cache kept (parity and prefill measurements)."""
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out.logits

    def refresh_info(self) -> dict[str, Any]:
        if self.refresh is not None:
            self.info.update(self.refresh())
        return self.info


def load_transformers(
    folder: Path, *, backend: str, attn_implementation: str, device: str = "cpu", dtype: str = "float32"
) -> Loaded:
    """``from_pretrained`` with safetensors only and no remote code; records the load report."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    start = time.perf_counter()
    model, loading = AutoModelForCausalLM.from_pretrained(
        str(folder),
        attn_implementation=attn_implementation,
        dtype=getattr(torch, dtype),
        trust_remote_code=False,
        local_files_only=True,
        output_loading_info=True,
    )
    model = model.to(device).eval()
    seconds = time.perf_counter() - start
    info = {
        "backend": backend,
        "attn_implementation": attn_implementation,
        "device": device,
        "dtype": dtype,
        "load_seconds": round(seconds, 4),
        "missing_keys": sorted(loading.get("missing_keys", [])),
        "unexpected_keys": sorted(loading.get("unexpected_keys", [])),
        "mismatched_keys": sorted(str(k) for k in loading.get("mismatched_keys", [])),
    }
    return Loaded(model=model, info=info)
