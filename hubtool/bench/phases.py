"""The measurement loop: prefill, decode and end-to-end, each timed directly and apart.

A runner (see ``torch_runner.TorchRunner``) supplies four calls; this module decides what
is timed. Each phase gets ``warmup`` untimed passes with the full token count, then
``repeats`` timed attempts. An attempt that raises is a recorded failure of that phase
(its crash rate), and the loop goes on. Results are raw samples; statistics are the
parent's job, so a crash can never leave a half-computed summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from hubtool.bench.timing import CpuClock, CudaClock, gc_paused, time_calls

PHASES = ("prefill", "decode", "e2e")
MAX_ERRORS_KEPT = 3


class Runner(Protocol):
    new_tokens: int

    def prefill(self) -> int:
        """One forward over the prompt with a fresh KV cache; returns tokens processed."""

    def begin_decode(self) -> None:
        """Untimed: prefill into a fresh cache so that decode steps can follow."""

    def decode_step(self) -> int:
        """One single-token forward with the KV cache; returns tokens produced."""

    def generate(self) -> int:
        """Whole generation with the KV cache; returns tokens generated."""


def _prefill_once(runner: Runner, clock) -> tuple[float, int, None]:
    (ms,), (tokens,) = time_calls(runner.prefill, calls=1, clock=clock)
    return ms, tokens, None


def _decode_once(runner: Runner, clock) -> tuple[float, int, list[float]]:
    """``new_tokens`` steps, each timed alone; the prefill that fills the cache is not timed."""
    with gc_paused():  # (a no-op inside measure_phase's own pause; here for direct callers)
        runner.begin_decode()
        steps, produced = time_calls(runner.decode_step, calls=runner.new_tokens, clock=clock)
    return sum(steps) / len(steps), sum(produced), steps


def _e2e_once(runner: Runner, clock) -> tuple[float, int, None]:
    (ms,), (tokens,) = time_calls(runner.generate, calls=1, clock=clock)
    return ms, tokens, None


_ATTEMPTS = {"prefill": _prefill_once, "decode": _decode_once, "e2e": _e2e_once}


def measure_phase(
    runner: Runner, phase: str, *, warmup: int, repeats: int, clock: CpuClock | CudaClock
) -> dict[str, Any]:
    """Warm up, then time ``repeats`` attempts of one phase. Never raises for a model error."""
    attempt = _ATTEMPTS[phase]
    record: dict[str, Any] = {
        "samples": [], "tokens": [], "attempts": 0, "failures": 0, "errors": [],
        "first_call_ms": None, "warmup_seconds": None,
    }
    if phase == "decode":
        record["step_samples"] = []

    def fail(exc: BaseException) -> None:
        record["failures"] += 1
        if len(record["errors"]) < MAX_ERRORS_KEPT:
            record["errors"].append(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])

    start = time.perf_counter()
    for i in range(warmup):
        try:
            ms, _, _ = attempt(runner, clock)
        except Exception as exc:  # the warmup failing is the phase failing
            record["attempts"] = repeats
            record["failures"] = repeats - 1
            fail(exc)
            return record
        if i == 0:
            record["first_call_ms"] = ms
    record["warmup_seconds"] = time.perf_counter() - start

    # One collection before all repeats, none right before a timed call (see gc_paused).
    with gc_paused():
        for _ in range(repeats):
            record["attempts"] += 1
            try:
                ms, tokens, steps = attempt(runner, clock)
            except Exception as exc:
                fail(exc)
                continue
            record["samples"].append(ms)
            record["tokens"].append(tokens)
            if steps is not None:
                record["step_samples"].append(steps)
    return record


def measure_phases(
    runner: Runner, *, warmup: int, repeats: int, clock: CpuClock | CudaClock,
    on_phase: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """All three phases in order; ``on_phase`` sees each result as soon as it exists."""
    results: dict[str, dict[str, Any]] = {}
    for phase in PHASES:
        if on_phase:
            on_phase(phase, None)
        results[phase] = measure_phase(runner, phase, warmup=warmup, repeats=repeats, clock=clock)
        if on_phase:
            on_phase(phase, results[phase])
    return results
