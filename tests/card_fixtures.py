"""Fixed verification and benchmark reports (in the report contracts' shape) for card tests."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

VLLM_REFUSES = {"tiny-gpt2": 1, "gpt2-5m": 40, "gpt2-100m": 384}  # head_dim vLLM's CPU attention cannot run (measured)
FINGERPRINT = {
    "hubtool": {"version": "0.1.0", "git_commit": "0" * 40, "git_dirty": False},
    "libraries": {"python": "3.11.7", "torch": "2.13.0+cpu", "transformers": "5.19.0", "vllm": "0.32.0"},
    "cpu": {"model": "AMD EPYC", "logical_cores": 2, "torch_threads": 2},
    "gpu": None,
}


def verification_report(name: str, *, overrides: dict[str, dict] | None = None) -> dict[str, Any]:
    backends: dict[str, Any] = {
        b: {"status": "passed", "reason": None, "metrics": {}, "seconds": 1.0, "exit_code": 0, "stderr_tail": None}
        for b in ("eager", "sdpa", "compile", "vllm")
    }
    if name in VLLM_REFUSES:
        backends["vllm"].update(
            status="unsupported",
            reason=f"Unsupported CPU attention configuration: head_dim={VLLM_REFUSES[name]}",
        )
    for backend, fields in (overrides or {}).items():
        backends[backend].update(fields)
    return {
        "schema": "hubtool.verification/1", "target": name, "model_dir": name, "repo_id": None, "revision": None,
        "created": "2026-11-21T05:00:00Z", "fingerprint": FINGERPRINT, "tolerances": {},
        "weights": {"status": "passed", "checks": []}, "backends": backends, "status": "passed",
    }


def _stats(median: float, unit: str) -> dict[str, Any]:
    return {"unit": unit, "n": 30, "median": median, "mean": median * 1.01, "stdev": median * 0.02,
            "iqr": median * 0.03, "ci95": [median * 0.98, median * 1.03], "p95": None, "p99": None,
            "outliers": 1, "samples": [median] * 30}


def benchmark_report(name: str, n_layer: int) -> dict[str, Any]:
    cells = {}
    for i, backend in enumerate(("eager", "sdpa", "compile", "vllm")):
        refused = backend == "vllm" and name in VLLM_REFUSES
        base = 0.25 * n_layer + 0.1 * i
        cells[backend] = {
            "status": "unsupported" if refused else "ok",
            "reason": f"Unsupported CPU attention configuration: head_dim={VLLM_REFUSES[name]}" if refused else None,
            "parity": "unsupported" if refused else "passed",
            "method": "vLLM request metrics" if backend == "vllm" else "timed forward calls",
            "compile_seconds": 14.0 if backend == "compile" else None,
            "first_call_ms": 50.0,
            "phases": {} if refused else {
                "prefill": _stats(base * 3, "ms"), "decode": _stats(base, "ms/token"), "e2e": _stats(base * 70, "ms"),
            },
            "decode_bandwidth_fraction": None if refused else 0.2,
            "crash_rate": {"prefill": 0.0, "decode": 0.0, "e2e": 0.0},
        }
    return {
        "schema": "hubtool.benchmark/1", "model": name, "model_dir": name, "created": "2026-11-21T05:10:00Z",
        "device": "cpu", "fingerprint": FINGERPRINT,
        "settings": {"prompt_len": 32, "new_tokens": 64, "batch_size": 1, "warmup": 3, "repeats": 30, "seed": 0,
                     "threads": 2, "order": ["sdpa", "eager", "vllm", "compile"]},
        "memory_bandwidth_gbps": 10.0, "cells": cells,
    }


def linked_family(src_root: Path, dst_root: Path) -> Path:
    """A copy of a built family whose big files are hard links (cheap, and edits stay local)."""
    for folder in sorted(src_root.iterdir()):
        if folder.is_dir() and not folder.name.startswith("."):
            shutil.copytree(folder, dst_root / folder.name, copy_function=os.link)
            # Files a test may rewrite must not be shared with the session-wide build.
            for name in ("README.md", "measurements.json", "config.json"):
                path = dst_root / folder.name / name
                if path.exists():
                    data = path.read_bytes()
                    path.unlink()
                    path.write_bytes(data)
    return dst_root


def write_reports(folder: Path, verification: dict[str, Any], benchmark: dict[str, Any] | None) -> None:
    (folder / "verification.json").write_text(json.dumps(verification, indent=2))
    if benchmark is not None:
        (folder / "benchmark.json").write_text(json.dumps(benchmark, indent=2))
