"""The measurement loop: prefill, decode and end-to-end, each timed directly and apart.

A runner (``hubtool.bench.runners``) supplies the work; this module decides what is
timed and how many times. Each phase gets ``warmup`` untimed passes with the full token
count, then timed attempts until the stopping rule is met:

- fixed: exactly ``repeats`` attempts;
- adaptive: at least ``min_repeats``, then stop once the median's distribution-free 95%
  interval is narrower than ``target`` (relative to the median), or at ``max_repeats``, or
  when the phase has used ``max_seconds``; ``stopped_by`` records which.

An attempt that raises is a recorded failure of that phase (its crash rate), and the loop
goes on; a warmup that raises ends the phase with the attempts actually made (one
warmup, zero timed). Time to first token and inter-token latencies come from the same
end-to-end attempts (stamped inside ``generate``), so their sample counts are exactly
attempts and attempts x (new_tokens - 1). Results are raw samples; statistics are the
parent's job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hubtool.bench.runners import Runner
from hubtool.bench.stats import median_order_ci
from hubtool.bench.timing import gc_paused, time_calls

PHASES = ("prefill", "decode", "e2e")
MAX_ERRORS_KEPT = 3


@dataclass(frozen=True)
class StopRule:
    repeats: int | None = None  # fixed count; None: adaptive
    min_repeats: int = 10
    max_repeats: int = 200
    target: float = 0.05  # relative width of the median's 95% interval
    max_seconds: float = 30.0  # per phase, per process

    def describe(self) -> str:
        if self.repeats is not None:
            return f"{self.repeats} timed attempts per phase per process"
        return (f"at least {self.min_repeats} and at most {self.max_repeats} timed attempts per phase per process, "
                f"stopping once the median's 95% interval is within {self.target:.0%} of it "
                f"or after {self.max_seconds:g} s")

    def done(self, samples: list[float], attempts: int, elapsed: float) -> str | None:
        if self.repeats is not None:
            return "repeats" if attempts >= self.repeats else None
        if attempts >= self.max_repeats:
            return "max"
        if elapsed >= self.max_seconds and attempts >= 1:
            return "time"
        if len(samples) >= self.min_repeats:
            lo, hi = median_order_ci(samples)
            mid = sorted(samples)[len(samples) // 2]
            if mid > 0 and (hi - lo) / mid <= self.target:
                return "target"
        return None


def _new_record() -> dict[str, Any]:
    return {"samples": [], "tokens": [], "attempts": 0, "failures": 0, "errors": [], "warmup_attempts": 0,
            "warmup_failed": False, "first_call_ms": None, "warmup_seconds": None, "stopped_by": None}


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def measure_phase(runner: Runner, phase: str, *, warmup: int, rule: StopRule, clock: Any,
                  extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Warm up, then time attempts of one phase until ``rule`` says stop. Never raises for a model error.

    ``extra`` collects the generate phase's by-products: ``ttft`` and ``itl`` records.
    """
    record = _new_record()

    def attempt() -> tuple[float, int, Any]:
        if phase == "prefill":
            (ms,), (tokens,) = time_calls(runner.prefill, calls=1, clock=clock)
            return ms, tokens, None
        if phase == "decode":
            steps = runner.decode(clock)
            return sum(steps) / len(steps), runner.batch_size * len(steps), steps
        (ms,), (generated,) = time_calls(lambda: runner.generate(clock), calls=1, clock=clock)
        return ms, generated.tokens, generated

    start = time.perf_counter()
    for i in range(warmup):
        record["warmup_attempts"] += 1
        try:
            ms, _, _ = attempt()
        except Exception as exc:  # noqa: BLE001 - a failing warmup is recorded as the phase failing, nothing was timed
            record["warmup_failed"] = True
            record["errors"].append(f"warmup: {_error(exc)}")
            record["stopped_by"] = "failure"
            return record
        if i == 0:
            record["first_call_ms"] = ms
    record["warmup_seconds"] = time.perf_counter() - start

    began = time.perf_counter()
    # One collection before all repeats, none right before a timed call (see gc_paused).
    with gc_paused():
        while True:
            stop = rule.done(record["samples"], record["attempts"], time.perf_counter() - began)
            if stop:
                record["stopped_by"] = stop
                break
            record["attempts"] += 1
            try:
                ms, tokens, by_product = attempt()
            except Exception as exc:  # noqa: BLE001 - a failed call is counted and its error recorded
                record["failures"] += 1
                if len(record["errors"]) < MAX_ERRORS_KEPT:
                    record["errors"].append(_error(exc))
                continue
            record["samples"].append(ms)
            record["tokens"].append(tokens)
            if phase == "e2e" and extra is not None:
                ttft, itl = extra.setdefault("ttft", _new_record()), extra.setdefault("itl", _new_record())
                ttft["samples"].append(by_product.ttft_ms)
                ttft["tokens"].append(runner.batch_size)
                itl["samples"].extend(by_product.itl_ms)
                itl["tokens"].extend([runner.batch_size] * len(by_product.itl_ms))
                ttft["attempts"] += 1
                itl["attempts"] += len(by_product.itl_ms)
    return record


def measure_phases(runner: Runner, *, warmup: int, rule: StopRule, clock: Any,
                   on_phase: Callable[[str, dict[str, Any] | None], None] | None = None) -> dict[str, dict[str, Any]]:
    """Prefill, decode and end-to-end in order (plus ttft and itl from the latter)."""
    results: dict[str, dict[str, Any]] = {}
    extra: dict[str, dict[str, Any]] = {}
    for phase in PHASES:
        if on_phase:
            on_phase(phase, None)
        results[phase] = measure_phase(runner, phase, warmup=warmup, rule=rule, clock=clock, extra=extra)
        if on_phase:
            on_phase(phase, results[phase])
    for name, record in extra.items():
        record["stopped_by"] = results["e2e"]["stopped_by"]
        results[name] = record
    return results
