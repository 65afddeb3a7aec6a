"""Fake benchmark cells for the harness tests: known samples, a crash, a hang.

They run in the harness's isolated workers exactly as the real cells do (same keyword
arguments, same progress file), so ordering, isolation and the statistics are tested
without loading a model.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

# Ten steady samples and one far outlier (Tukey fences at 10 +- 0): exactly one outlier.
STEADY = [10.0] * 10 + [50.0]


def _record(samples: list[float], tokens: int) -> dict:
    return {"samples": list(samples), "tokens": [tokens] * len(samples), "attempts": len(samples),
            "failures": 0, "errors": [], "first_call_ms": 123.0, "warmup_seconds": 0.1}


def run(*, model_dir, backend, device, prompt_len, new_tokens, batch_size, warmup, repeats, seed, progress_path):
    phases = {"prefill": _record(STEADY, prompt_len), "decode": _record(STEADY, new_tokens),
              "e2e": _record(STEADY, new_tokens)}
    if backend == "fake-zero":
        phases["decode"]["samples"][3] = 0.0
    if backend == "fake-notokens":
        phases["e2e"]["tokens"][0] = 0
    if backend in ("fake-crash", "fake-hang"):
        Path(progress_path).write_text(json.dumps({"running": "decode", "phases": {"prefill": phases["prefill"]}}))
        if backend == "fake-hang":
            time.sleep(3600)
        os.abort()
    with open(Path(model_dir) / "fake-calls.log", "a") as log:
        log.write(f"{backend} {os.getpid()}\n")
    return {"method": "fake", "phases": phases, "threads": 1, "weight_bytes": 4_000_000,
            "backend_info": {"backend": backend}, "compile_problems": None}
