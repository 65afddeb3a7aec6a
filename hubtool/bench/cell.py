"""One process of one benchmark cell (model x backend x batch size), run in an isolated worker.

The worker loads the backend named by its registry declaration, builds the engine's
runner, measures the phases and returns raw samples, its CPU time and peak memory. After
each phase it writes what it has to ``progress_path``, so when the process dies (a
segfault, a CUDA graph crash, a timeout) the parent still knows which phase killed it
and keeps the phases that finished.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

from hubtool.folder.io import write_json
from hubtool.folder.names import WEIGHT_SUFFIX
from hubtool.folder.safetensors import BY_CODE, read_header


def method(declaration: dict[str, Any], *, device: str, prompt_len: int, new_tokens: int, batch_size: int,
           rule: str) -> str:
    """How the numbers of a cell were taken, in words, for the report and the card."""
    clock = "CUDA events around each call" if device == "cuda" else "time.perf_counter_ns around each call"
    head = (f"{declaration['label']}: {declaration['summary']}; batch {batch_size}, seeded random "
            f"{prompt_len}-token prompt, {new_tokens} new tokens.")
    if declaration["engine"] == "vllm":
        body = ("prefill: a request for one token (LLM engine stepped to completion). decode: the engine stepped "
                f"for {new_tokens + 1} tokens, each step that produced tokens stamped; a sample is the mean "
                "interval of one pass. e2e: the whole batch's request, the quantity `vllm bench latency` reports "
                "(it averages whole generate calls); time to first token and inter-token latency are the step "
                "stamps inside it.")
    else:
        cache = "StaticCache" if declaration.get("static_cache") else "DynamicCache"
        body = (f"prefill: one forward over the prompt into a fresh {cache} with last-position logits only "
                "(logits_to_keep=1), as generate() does. decode: after an untimed prefill, single-token "
                "forwards with the KV cache, each timed alone; a sample is the mean step of one pass. "
                f"e2e: generate(max_new_tokens=min_new_tokens={new_tokens}, greedy); time to first token and "
                "inter-token latency come from a logits processor stamping each step inside it.")
    return f"{head} {body} Clock: {clock}; GC off while timing. Stopping rule: {rule}."


def unique_weight_bytes(folder: Path) -> int:
    """Bytes of the stored tensors (a tied output layer is stored once): what a decode step must read."""
    total = 0
    for path in sorted(folder.glob(f"*{WEIGHT_SUFFIX}")):
        total += sum(t.numel * BY_CODE[t.dtype].itemsize for t in read_header(path).tensors.values())
    return total


def _rss_bytes() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_cell(*, backend: dict[str, Any], model_dir: str, device: str, prompt_len: int, new_tokens: int,
             batch_size: int, warmup: int, rule: dict[str, Any], seed: int, progress_path: str) -> dict[str, Any]:
    """Worker entry point (``hubtool.bench.cell:run_cell``); returns raw samples per phase."""
    from hubtool.backends.registry import Backend
    from hubtool.bench.phases import StopRule, measure_phases
    from hubtool.bench.timing import clock_for

    cpu_start, baseline = _cpu_seconds(), _rss_bytes()
    declaration = Backend.from_dict(backend)
    stop = StopRule(**rule)
    progress: dict[str, Any] = {"running": "loading", "phases": {}}
    write_json(Path(progress_path), progress)

    def on_phase(phase: str, record: dict[str, Any] | None) -> None:
        progress["running"] = phase if record is None else None
        if record is not None:
            progress["phases"][phase] = record
        write_json(Path(progress_path), progress)

    common = {"prompt_len": prompt_len, "new_tokens": new_tokens, "batch_size": batch_size, "seed": seed}
    if declaration.engine == "vllm":
        result = _vllm(declaration, Path(model_dir), device=device, common=common, warmup=warmup, stop=stop,
                       on_phase=on_phase)
        if "unsupported" in result:
            return result
    else:
        import torch

        torch.manual_seed(seed)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        loaded = declaration.load_module().load(Path(model_dir), device=device, **declaration.options)
        from hubtool.bench.runners import TorchRunner

        mode = declaration.options.get("mode")
        runner = TorchRunner(loaded.model, static_cache=declaration.static_cache,
                             mark_cudagraph_steps=mode == "reduce-overhead", **common)
        phases = measure_phases(runner, warmup=warmup, rule=stop, clock=clock_for(device), on_phase=on_phase)
        info = loaded.refresh_info()
        proof = getattr(declaration.load_module(), "proof", None)
        result = {"phases": phases, "backend_info": info, "proof_problems": proof(info) if proof else [],
                  "threads": torch.get_num_threads()}
        if device == "cuda":
            result.update(peak_memory_bytes=torch.cuda.max_memory_allocated(), memory_kind="cuda_max_allocated")
    if "peak_memory_bytes" not in result:
        result.update(peak_memory_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, memory_kind="rss")
    result.update(
        method=method(backend, device=device, rule=stop.describe(), **{k: common[k] for k in
                                                                         ("prompt_len", "new_tokens", "batch_size")}),
        weight_bytes=unique_weight_bytes(Path(model_dir)),
        baseline_memory_bytes=baseline,
        cpu_seconds=_cpu_seconds() - cpu_start,
    )
    return result


def _vllm(declaration, folder: Path, *, device: str, common: dict[str, Any], warmup: int, stop, on_phase) -> dict:
    """vLLM: a refusal of the model's attention configuration is an unsupported cell, not a crash."""
    from hubtool.backends import vllm as vllm_backend
    from hubtool.bench.phases import measure_phases
    from hubtool.bench.runners import VllmRunner
    from hubtool.bench.timing import clock_for
    from hubtool.folder.io import read_json_object

    config = read_json_object(folder / "config.json") or {}
    head_dim = (config.get("n_embd") or 0) // max(config.get("n_head") or 1, 1) or None
    started = time.perf_counter()
    try:
        with vllm_backend.refusals(head_dim=head_dim, dtype=config.get("dtype")):
            llm = vllm_backend.load(folder, device=device,
                                    max_model_len=common["prompt_len"] + common["new_tokens"] + 8,
                                    seed=common["seed"], **declaration.options)
            runner = VllmRunner(llm, **common)
            runner.prefill()  # vLLM refuses some shapes only at their first forward, not at load
            phases = measure_phases(runner, warmup=warmup, rule=stop, clock=clock_for(device), on_phase=on_phase)
    except vllm_backend.BackendUnsupported as exc:
        return {"unsupported": exc.reason, "raw_reason": exc.raw}
    return {"phases": phases, "backend_info": {"vllm_version": vllm_backend.version(),
                                               "engine_seconds": round(time.perf_counter() - started, 3)},
            "proof_problems": [], "threads": None}
