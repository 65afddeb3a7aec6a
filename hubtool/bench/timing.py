"""Clocks and the timed-call loop: what exactly sits between the two timestamps.

On CPU a sample is two ``perf_counter_ns`` reads around the call. On a GPU it is a pair
of CUDA events recorded on the stream around the call, read after one
``torch.cuda.synchronize()`` at the end of the batch, so the host never waits inside the
timed region and the sample is the device's own time. Garbage collection is off while
timing (a collection inside a sample is noise, not the model's cost).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class CpuClock:
    """Wall time from ``time.perf_counter_ns`` (monotonic, nanosecond resolution)."""

    name = "perf_counter_ns"

    def mark(self) -> int:
        return time.perf_counter_ns()

    def sync(self) -> None:
        pass

    def elapsed_ms(self, pairs: list[tuple[Any, Any]]) -> list[float]:
        return [(end - start) / 1e6 for start, end in pairs]

    def host_now(self, sync: bool = False) -> float:
        """Milliseconds on the host clock (stamps inside a call: time to first token, inter-token)."""
        return time.perf_counter_ns() / 1e6


class CudaClock:
    """Device time from CUDA events; ``elapsed_ms`` synchronizes once for the whole batch."""

    name = "cuda_events"

    def __init__(self) -> None:
        import torch

        self._torch = torch

    def mark(self):
        event = self._torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def sync(self) -> None:
        self._torch.cuda.synchronize()

    def elapsed_ms(self, pairs: list[tuple[Any, Any]]) -> list[float]:
        self._torch.cuda.synchronize()
        return [start.elapsed_time(end) for start, end in pairs]

    def host_now(self, sync: bool = False) -> float:
        """Host milliseconds; with ``sync`` after the device finished queued work (a token's logits exist)."""
        if sync:
            self._torch.cuda.synchronize()
        return time.perf_counter_ns() / 1e6


def clock_for(device: str) -> CpuClock | CudaClock:
    return CudaClock() if device == "cuda" else CpuClock()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collect once, then keep the collector off for the timed region.

    Nested use does not collect again: a collection walks every object and flushes the
    CPU caches, so it must not sit right before a timed call (it slowed the first decode
    step measurably).
    """
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def time_calls(fn: Callable[[], Any], *, calls: int, clock: CpuClock | CudaClock) -> tuple[list[float], list[Any]]:
    """Call ``fn`` ``calls`` times, one sample per call. Returns (milliseconds, return values)."""
    pairs: list[tuple[Any, Any]] = []
    results: list[Any] = []
    clock.sync()
    with gc_paused():
        for _ in range(calls):
            start = clock.mark()
            results.append(fn())
            pairs.append((start, clock.mark()))
    return clock.elapsed_ms(pairs), results


def measure_memory_bandwidth(*, device: str, nbytes: int = 256 * 2**20, repeats: int = 8) -> dict[str, Any]:
    """Peak achieved copy bandwidth: ``dst.copy_(src)`` reads and writes ``nbytes`` each.

    This is the machine's practical limit for streaming weights, the yardstick for the
    decode phase (which must read every weight once per token). Runs in a worker, with
    the same thread count as the benchmark cells.
    """
    import torch

    dev = torch.device(device)
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=dev)
    dst = torch.empty_like(src)
    dst.copy_(src)  # touch every page before timing
    clock = clock_for(device)
    ms, _ = time_calls(lambda: dst.copy_(src), calls=repeats, clock=clock)
    moved = 2 * src.numel() * src.element_size()
    gbps = [moved / (m / 1e3) / 1e9 for m in ms]
    return {
        "method": f"torch copy_ of {nbytes // 2**20} MiB float32 on {device}, bytes read + written / time, "
        f"best of {repeats} ({clock.name})",
        "bytes_moved": moved,
        "samples_gbps": gbps,
        "peak_gbps": max(gbps),
        "threads": torch.get_num_threads(),
    }
