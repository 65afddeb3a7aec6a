"""transformers with its eager (plain PyTorch) attention: the parity reference."""

from __future__ import annotations

from pathlib import Path

from hubtool.backends.common import Loaded, load_transformers


def load(folder: Path, *, device: str = "cpu", dtype: str = "float32") -> Loaded:
    return load_transformers(folder, backend="eager", attn_implementation="eager", device=device, dtype=dtype)
