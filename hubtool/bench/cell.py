"""One benchmark cell (one model x one backend), run inside an isolated worker process.

The worker loads the backend, measures the three phases and returns raw samples. After
each phase it writes what it has to ``progress_path``, so when the process dies (a
segfault, a CUDA graph crash, a timeout) the parent still knows which phase killed it
and keeps the phases that finished.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hubtool.folder.io import write_json

# bench backend -> (hubtool.backends module, compile mode, static KV cache)
TORCH_CELLS: dict[str, tuple[str, str | None, bool]] = {
    "eager": ("eager", None, False),
    "sdpa": ("sdpa", None, False),
    "compile": ("compile", None, False),
    # CUDA graphs replay fixed shapes and addresses: only with a preallocated cache.
    "compile-ro": ("compile", "reduce-overhead", True),
}


def torch_method(backend: str, *, device: str, prompt_len: int, new_tokens: int, batch_size: int) -> str:
    """How the numbers of a transformers cell were taken, in words, for the report."""
    _, mode, static = TORCH_CELLS[backend]
    clock = "CUDA events, synchronize after each batch" if device == "cuda" else "time.perf_counter_ns"
    cache = "StaticCache" if static else "DynamicCache"
    compiled = f"; forward compiled by Inductor (mode {mode or 'default'})" if backend.startswith("compile") else ""
    return (
        f"transformers, batch {batch_size}, seeded random {prompt_len}-token prompt, {cache}{compiled}. "
        f"prefill: one forward over the prompt with use_cache=True into a fresh cache. "
        f"decode: after an untimed prefill, {new_tokens} single-token forwards with past_key_values, "
        f"each step timed alone; a sample is the mean ms per step of one pass. "
        f"e2e: generate(max_new_tokens=min_new_tokens={new_tokens}, greedy, KV cache). "
        f"Clock: {clock}; GC off while timing."
    )


def _weight_bytes(model) -> int:
    """Bytes of unique parameters: what one decode step must read from memory at least once."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel() * p.element_size()
    return total


def run_cell(
    *, model_dir: str, backend: str, device: str, prompt_len: int, new_tokens: int, batch_size: int,
    warmup: int, repeats: int, seed: int, progress_path: str,
) -> dict[str, Any]:
    """Worker entry point (``hubtool.bench.cell:run_cell``); returns raw samples per phase."""
    import importlib

    import torch

    from hubtool.bench.phases import measure_phases
    from hubtool.bench.timing import clock_for
    from hubtool.bench.torch_runner import TorchRunner

    module, mode, static = TORCH_CELLS[backend]
    torch.manual_seed(seed)
    progress: dict[str, Any] = {"running": None, "phases": {}}

    def on_phase(phase: str, record: dict[str, Any] | None) -> None:
        if record is None:
            progress["running"] = phase
        else:
            progress["running"] = None
            progress["phases"][phase] = record
        write_json(Path(progress_path), progress)

    loader = importlib.import_module(f"hubtool.backends.{module}")
    load_kwargs = {"device": device, "mode": mode} if module == "compile" else {"device": device}
    loaded = loader.load(Path(model_dir), **load_kwargs)
    runner = TorchRunner(
        loaded.model, prompt_len=prompt_len, new_tokens=new_tokens, batch_size=batch_size, seed=seed,
        static_cache=static, mark_cudagraph_steps=mode == "reduce-overhead",
    )
    phases = measure_phases(runner, warmup=warmup, repeats=repeats, clock=clock_for(device), on_phase=on_phase)
    info = loaded.refresh_info()
    compile_proof = None
    if module == "compile":
        from hubtool.backends.compile import proof_problems

        compile_proof = proof_problems(info)
    return {
        "method": torch_method(backend, device=device, prompt_len=prompt_len, new_tokens=new_tokens,
                               batch_size=batch_size),
        "phases": phases,
        "threads": torch.get_num_threads(),
        "weight_bytes": _weight_bytes(loaded.model),
        "backend_info": info,
        "compile_problems": compile_proof,
    }
