"""transformers with ``model.forward`` compiled by Inductor, and proof that it was.

``torch.compile(model).generate()`` compiles nothing (generate calls the uncompiled
module), so the forward method is replaced. A compiled number is only honest when
Inductor really produced the code. Three witnesses must agree: Dynamo's counters
(graphs captured, graph breaks, recompiles, frames that failed and ran eagerly), the
graphs handed to Inductor's entry point (a thin counting wrapper), and Inductor's own
evidence: each compiled graph is an FX-graph-cache miss (code generated) or hit (code
loaded), and its output-code modules are loaded from Inductor's code cache. A backend
that hands back the uncompiled graph (what a silent fallback to eager or aot_eager does)
passes the first two and fails the third, and ``proof`` names it.

``dynamic=True`` compiles shape-generic code, so the graphs do not depend on the prompt
lengths a caller happens to use first: verify's parity run and bench's cells then need the
same graphs and the second finds them in the shared Inductor cache.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hubtool.backends import attention
from hubtool.backends.attention import Loaded


def load(
    folder: Path, *, device: str = "cpu", dtype: str = "float32", attn_implementation: str = "sdpa",
    mode: str | None = None, dynamic: bool | None = True,
) -> Loaded:
    """Load with the given attention and compile ``forward``; compilation happens on the first call.

    ``dynamic`` is torch.compile's: True compiles shape-generic code from the start; None
    specializes on the first shapes and recompiles dynamically when they change.
    """
    import torch
    from torch._dynamo.utils import counters

    loaded = attention.load(folder, device=device, dtype=dtype, attn_implementation=attn_implementation)
    if not _STATE:  # once per process: a second model (verify's probe) shares the compiled code and counters
        torch._dynamo.reset()
        counters.clear()
        # Python float scalars in the model's code are compiled in as constants (and guarded) instead
        # of being traced as tensors: without it Dynamo restarts its analysis of every graph once
        # ("tensorify python scalars") and AOTAutograd's cache misses on the first attempt. Measured
        # on gpt2-25m's three decoding graphs with a warm cache: 13.4 s -> 9.7 s.
        torch._dynamo.config.specialize_float = True
        _STATE.append(_CountingInductor(mode))
    inductor = _STATE[0]
    loaded.model.forward = torch.compile(loaded.model.forward, backend=inductor, dynamic=dynamic)
    loaded.info.update(compiler_backend="inductor", compile_mode=mode or "default", compile_dynamic=dynamic,
                       compile_specialize_float=True)
    loaded.refresh = lambda: _stats(inductor)
    loaded.refresh_info()
    return loaded


_STATE: list[_CountingInductor] = []  # the process's one counting backend


def _output_code_modules() -> set[str]:
    """Inductor output-code modules (a compiled graph's ``call``) loaded in this process.

    Workers are fresh processes, so every one of them was generated or loaded for this model.
    """
    from torch._inductor.codecache import PyCodeCache

    return {getattr(m, "__file__", None) or m.__name__ for m in list(PyCodeCache.modules) if hasattr(m, "call")}


class _CountingInductor:
    """A Dynamo backend that hands every graph to Inductor and counts what it compiled."""

    def __init__(self, mode: str | None) -> None:
        self.mode = mode
        self.graphs = 0
        self.graphs_with_ops = 0  # a graph with no operation (between two breaks) needs no code
        self.handed_back = 0  # graphs the compiler returned as they came: not compiled
        self.seconds = 0.0

    def __call__(self, gm, example_inputs):
        from torch._inductor import list_mode_options
        from torch._inductor.compile_fx import compile_fx

        start = time.perf_counter()
        patches = list_mode_options(self.mode) if self.mode else None
        compiled = compile_fx(gm, example_inputs, config_patches=patches)
        self.graphs += 1
        self.graphs_with_ops += any(n.op in ("call_function", "call_method", "call_module") for n in gm.graph.nodes)
        self.handed_back += compiled is gm or compiled == gm.forward
        self.seconds += time.perf_counter() - start
        return compiled


def _stats(inductor: _CountingInductor) -> dict[str, Any]:
    from torch._dynamo.utils import counters, get_compilation_metrics

    metrics = get_compilation_metrics()
    frame_seconds = sum(m.entire_frame_compile_time_s or 0.0 for m in metrics)
    loaded_code = _output_code_modules()
    return {
        "graphs": counters["stats"]["unique_graphs"],
        "inductor_graphs": inductor.graphs,
        "graphs_with_ops": inductor.graphs_with_ops,
        "graphs_handed_back": inductor.handed_back,
        "graph_breaks": sum(counters["graph_break"].values()),
        "graph_break_reasons": sorted({reason.splitlines()[0] for reason in counters["graph_break"]})[:10],
        "recompiles": sum(1 for m in metrics if m.recompile_reason),
        # A frame Dynamo could not trace past a graph break ("Unsupported") is counted as a break;
        # any other failure means the compiler failed and the frame ran eagerly.
        "failed_frames": sum(1 for m in metrics if m.fail_type and m.fail_type != "Unsupported"),
        "failed_frame_reasons": sorted({f"{m.fail_type}: {(m.fail_reason or '').splitlines()[0][:200]}"
                                        for m in metrics if m.fail_type and m.fail_type != "Unsupported"})[:5],
        "compile_seconds": round(max(frame_seconds, inductor.seconds), 4),
        "inductor_seconds": round(inductor.seconds, 4),
        "fxgraph_cache_hits": counters["inductor"].get("fxgraph_cache_hit", 0),
        "fxgraph_cache_misses": counters["inductor"].get("fxgraph_cache_miss", 0),
        "fxgraph_cache_bypasses": counters["inductor"].get("fxgraph_cache_bypass", 0),
        "output_code_modules": len(loaded_code),
        "inductor_cache_dir": _cache_dir(),
    }


def _cache_dir() -> str | None:
    try:
        from torch._inductor.runtime.cache_dir_utils import cache_dir
    except ImportError:
        return None
    return cache_dir()


def proof(info: dict[str, Any]) -> list[str]:
    """Why a compiled run does not count as compiled (empty when Inductor really ran everything)."""
    problems = attention.proof(info)
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
    inductor_built = info.get("fxgraph_cache_hits", 0) + info.get("fxgraph_cache_misses", 0) + info.get(
        "fxgraph_cache_bypasses", 0)
    if info.get("graphs_with_ops") and (not info.get("output_code_modules") or not inductor_built):
        problems.append(
            f"Inductor generated or loaded no code for its {info['graphs_with_ops']} graph(s) with operations "
            f"({info.get('output_code_modules', 0)} output-code modules, {inductor_built} cache lookups): the graphs "
            "ran uncompiled (a silent fallback)"
        )
    if info.get("graphs_handed_back"):
        problems.append(f"the compiler handed back {info['graphs_handed_back']} graph(s) uncompiled")
    return problems
