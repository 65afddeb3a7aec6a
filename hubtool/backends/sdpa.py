"""transformers with torch's scaled_dot_product_attention kernels."""

from __future__ import annotations

from pathlib import Path

from hubtool.backends.common import Loaded, load_transformers


def load(folder: Path, *, device: str = "cpu", dtype: str = "float32") -> Loaded:
    return load_transformers(folder, backend="sdpa", attn_implementation="sdpa", device=device, dtype=dtype)
