"""transformers with ``model.forward`` compiled by Inductor, and proof that it was.

``torch.compile(model).generate()`` compiles nothing (generate calls the uncompiled
module), so the forward method is replaced. A compiled number is only honest when
Inductor really produced the code: graphs are routed through a thin wrapper around
Inductor's entry point that counts them, and Dynamo's own counters give graph breaks,
recompiles and frames it gave up on (which then ran eagerly: a silent fallback).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hubtool.backends.common import Loaded, load_transformers

ATTN_IMPLEMENTATION = "sdpa"


def load(
    folder: Path, *, device: str = "cpu", dtype: str = "float32", mode: str | None = None, dynamic: bool | None = None
) -> Loaded:
    """Load with SDPA attention and compile ``forward``; compilation happens on the first call.

    ``dynamic`` is torch.compile's: None specializes on the first shapes and recompiles
    dynamically when they change; True compiles shape-generic code from the start.
    """
    import torch
    from torch._dynamo.utils import counters

    loaded = load_transformers(
        folder, backend="compile", attn_implementation=ATTN_IMPLEMENTATION, device=device, dtype=dtype
    )
    torch._dynamo.reset()
    counters.clear()
    inductor = _CountingInductor(mode)
    loaded.model.forward = torch.compile(loaded.model.forward, backend=inductor, dynamic=dynamic)
    loaded.info.update(compiler_backend="inductor", compile_mode=mode or "default", compile_dynamic=dynamic)
    loaded.refresh = lambda: _stats(inductor)
    loaded.refresh_info()
    return loaded


class _CountingInductor:
    """A Dynamo backend that hands every graph to Inductor and counts what it compiled."""

    def __init__(self, mode: str | None) -> None:
        self.mode = mode
        self.graphs = 0
        self.seconds = 0.0

    def __call__(self, gm, example_inputs):
        from torch._inductor import list_mode_options
        from torch._inductor.compile_fx import compile_fx

        start = time.perf_counter()
        patches = list_mode_options(self.mode) if self.mode else None
        compiled = compile_fx(gm, example_inputs, config_patches=patches)
        self.graphs += 1
        self.seconds += time.perf_counter() - start
        return compiled


def _stats(inductor: _CountingInductor) -> dict[str, Any]:
    from torch._dynamo.utils import counters, get_compilation_metrics

    metrics = get_compilation_metrics()
    frame_seconds = sum(m.entire_frame_compile_time_s or 0.0 for m in metrics)
    return {
        "graphs": counters["stats"]["unique_graphs"],
        "inductor_graphs": inductor.graphs,
        "graph_breaks": sum(counters["graph_break"].values()),
        "graph_break_reasons": sorted({reason.splitlines()[0] for reason in counters["graph_break"]})[:10],
        "recompiles": sum(1 for m in metrics if m.recompile_reason),
        "failed_frames": sum(1 for m in metrics if m.fail_type),
        "compile_seconds": round(max(frame_seconds, inductor.seconds), 4),
        "inductor_seconds": round(inductor.seconds, 4),
        "fxgraph_cache_hits": counters["inductor"].get("fxgraph_cache_hit", 0),
        "fxgraph_cache_misses": counters["inductor"].get("fxgraph_cache_miss", 0),
    }


def proof_problems(info: dict[str, Any]) -> list[str]:
    """Why a compiled run does not count as compiled (empty when Inductor really ran everything)."""
    problems = []
    if info.get("compiler_backend") != "inductor":
        problems.append(f"compiler backend is {info.get('compiler_backend')!r}, not inductor")
    if not info.get("graphs"):
        problems.append("Dynamo captured no graph: the model ran uncompiled")
    if info.get("inductor_graphs", 0) < info.get("graphs", 0) or not info.get("inductor_graphs"):
        problems.append(
            f"Inductor compiled {info.get('inductor_graphs', 0)} of {info.get('graphs', 0)} captured graphs"
        )
    if info.get("failed_frames"):
        problems.append(f"{info['failed_frames']} frame(s) failed to compile and fell back to eager")
    return problems
