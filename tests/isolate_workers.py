"""Worker functions the isolation tests run in child processes."""

from __future__ import annotations

import os
import signal
import time


def add(*, a: int, b: int) -> dict:
    return {"sum": a + b, "pid": os.getpid(), "tmpdir": os.environ.get("TMPDIR"),
            "inductor": os.environ.get("TORCHINDUCTOR_CACHE_DIR"), "omp": os.environ.get("OMP_NUM_THREADS")}


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def kill_self() -> None:
    print("about to die", flush=True)
    import sys
    print("dying loudly", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def hang(*, seconds: float) -> None:
    time.sleep(seconds)


def fail() -> None:
    raise ValueError("worker refused: bad input 42")


def inductor_isas() -> dict:
    """Whether Inductor already knew this machine's vector instruction sets when the worker started, and which."""
    from torch._inductor import cpu_vec_isa

    known = cpu_vec_isa.valid_vec_isa_list.cache_info().currsize == 1
    return {"known_at_start": known, "isas": [str(isa) for isa in cpu_vec_isa.valid_vec_isa_list()]}


def compile_small() -> float:
    """Compile and run one small function with Inductor on the CPU (a C++ kernel, built with its precompiled header)."""
    import torch

    compiled = torch.compile(lambda x: (x * 2).sin().sum(), backend="inductor")
    return float(compiled(torch.ones(64)))


def gc_state() -> dict:
    """How many objects the collector leaves alone (frozen) and how many a full collection walks."""
    import gc

    return {"frozen": gc.get_freeze_count(), "walked": len(gc.get_objects())}
