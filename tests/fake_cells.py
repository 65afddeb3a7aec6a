"""A fake benchmark worker for the harness tests: known samples, a crash, a hang, zero rows.

It runs in the harness's isolated workers exactly as the real cell does (same keyword
arguments, same progress file, same result shape), so ordering, interleaving, isolation
and the statistics are tested without loading a model. The backend's name says what it does.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

# Ten steady samples and one far outlier (Tukey fences at 10 +- 0): exactly one outlier per process.
STEADY = [10.0] * 10 + [50.0]


def _record(samples: list[float], tokens: int) -> dict:
    return {"samples": list(samples), "tokens": [tokens] * len(samples), "attempts": len(samples), "failures": 0,
            "errors": [], "warmup_attempts": 1, "warmup_failed": False, "first_call_ms": 123.0,
            "warmup_seconds": 0.1, "stopped_by": "repeats"}


def run(*, backend, model_dir, device, prompt_len, new_tokens, batch_size, warmup, rule, seed, progress_path):
    name = backend["name"]
    phases = {"prefill": _record(STEADY, prompt_len * batch_size), "decode": _record(STEADY, new_tokens),
              "e2e": _record([v * new_tokens for v in STEADY], new_tokens), "ttft": _record(STEADY, 1),
              "itl": _record(STEADY * (new_tokens - 1), 1)}
    if name == "fake-zero":
        phases["decode"]["samples"][3] = 0.0
    if name == "fake-notokens":
        phases["e2e"]["tokens"][0] = 0
    if name == "fake-warmup":
        phases["decode"] = {**_record([], 1), "attempts": 0, "warmup_failed": True, "stopped_by": "failure",
                            "errors": ["warmup: RuntimeError: out of memory"]}
    if name in ("fake-crash", "fake-hang"):
        Path(progress_path).write_text(json.dumps({"running": "decode", "phases": {"prefill": phases["prefill"]}}))
        if name == "fake-hang":
            time.sleep(3600)
        os.abort()
    with open(Path(model_dir) / "fake-calls.log", "a") as log:
        log.write(f"{name} {os.getpid()}\n")
    return {"phases": phases, "backend_info": {"backend": name}, "proof_problems": [], "threads": 1,
            "peak_memory_bytes": 1_000_000, "memory_kind": "rss", "method": "fake",
            "weight_bytes": 4_000_000, "baseline_memory_bytes": 500_000, "cpu_seconds": 0.01}
