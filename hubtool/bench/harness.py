"""Run benchmark cells (model x backend x batch size) in isolated workers; write one file per machine.

The parent never imports torch. It measures the machine once (memory bandwidth and the
environment fingerprint, in a worker with the cells' thread count), gates every backend
on a parity verdict for the *same bytes* (running verify first where there is none),
then runs every cell in several worker processes, interleaved: round 1 runs each cell
once in a seeded random order, round 2 again in another order, and so on, so drift of a
shared machine spreads over all cells instead of landing on one. The load of the machine
(1-minute load average, and the CPU other processes used meanwhile) is recorded around
every process. Raw samples become statistics whose interval includes the variance
between processes (``hubtool.bench.stats``); a zero-latency or zero-token row is an
error, never a result. The report goes to ``NAME/benchmarks/<machine id>.json``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hubtool.backends import registry
from hubtool.backends.registry import Backend
from hubtool.bench.machine import machine_of
from hubtool.bench.phases import PHASES, StopRule
from hubtool.bench.stats import HIERARCHICAL_METHOD, hierarchical_ratio, summarize_processes
from hubtool.errors import ArtifactError, FoundWrong, UsageError, display_path
from hubtool.evidence.benchmark import (
    GENERATE_PHASES,
    UNITS,
    Benchmark,
    Cell,
    Comparison,
    E2ECheck,
    Machine,
    PhaseRecord,
    ProcessRun,
    Stats,
)
from hubtool.evidence.verification import Verification
from hubtool.folder.hashing import folder_identity, identity_changes
from hubtool.folder.io import read_json_object
from hubtool.folder.names import BENCHMARK_DIR, VERIFICATION_FILE, WEIGHTS_FILE
from hubtool.runtime.cache import cache_root, compile_cache
from hubtool.runtime.environment import hubtool_identity

E2E_MARGIN = 0.25  # e2e may differ from prefill + (N-1) decode steps by this share before it is flagged
BUSY_OTHER_CPU = 0.25  # other processes used more than this share of the machine: the cell ran on a busy machine
RESULT_MIN_PROCESSES = 3


@dataclass(frozen=True)
class BenchSettings:
    device: str = "cpu"
    prompt_len: int = 32
    new_tokens: int = 64
    batch_sizes: tuple[int, ...] = (1,)
    warmup: int = 3
    repeats: int | None = None  # fixed count; None: the adaptive stopping rule
    min_repeats: int = 10
    max_repeats: int = 200
    target: float = 0.05
    max_seconds: float = 30.0
    processes: int = RESULT_MIN_PROCESSES
    seed: int = 0
    threads: int = 0  # 0: every core this process may use
    timeout: float = 900.0
    quick: bool = False
    graph_breaks_allowed: int = 0

    def checked(self) -> BenchSettings:
        """Settings with the thread count filled in; a usage error for impossible values."""
        for name in ("prompt_len", "new_tokens", "warmup", "processes", "min_repeats", "max_repeats"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.repeats is not None and self.repeats < 1:
            raise UsageError(f"--repeats must be at least 1, got {self.repeats}")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise UsageError(f"--batch-size: every size must be at least 1, got {list(self.batch_sizes)}")
        if not 0 < self.target < 1:
            raise UsageError(f"--target must be between 0 and 1, got {self.target}")
        if self.device not in ("cpu", "cuda"):
            raise UsageError(f"--device must be cpu or cuda, got {self.device!r}")
        return replace(self, threads=self.threads or available_cores())

    @property
    def rule(self) -> StopRule:
        return StopRule(repeats=self.repeats, min_repeats=self.min_repeats, max_repeats=self.max_repeats,
                        target=self.target, max_seconds=self.max_seconds)

    @property
    def quality(self) -> str:
        return "smoke" if self.quick or self.processes < RESULT_MIN_PROCESSES else "result"

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        data["batch_sizes"] = list(self.batch_sizes)
        data["stopping_rule"] = self.rule.describe()
        return data


# A smoke run: short, one process. Never a result. It keeps verify's thread count: Inductor's
# cache key includes the threads, so the kernels verify compiled are reused.
QUICK = {"prompt_len": 32, "new_tokens": 16, "warmup": 1, "repeats": 5, "processes": 1, "timeout": 300.0,
         "quick": True}


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_backends(device: str, *, quick: bool) -> list[str]:
    """Every backend bench runs by default on this device (--quick: the quick ones)."""
    return [b.name for b in registry.all_backends() if b.bench and (b.quick or not quick) and device in b.devices]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def report_path(folder: Path, machine: Machine) -> Path:
    return folder / BENCHMARK_DIR / f"{machine.id}.json"


# -- parity gate ----------------------------------------------------------------------------

def fresh_verification(folder: Path, identity: dict[str, str]) -> Verification | None:
    """The folder's verification report when it was made on these exact bytes, else None."""
    try:
        report = Verification.load(folder / VERIFICATION_FILE)
    except ArtifactError:
        return None
    if report is None or identity_changes(report.subject, identity):
        return None
    return report


def parity_gate(folder: Path, identity: dict[str, str], backends: list[Backend], *,
                verify: Callable[[Path, list[str]], None] | None) -> Verification | None:
    """A verification of these bytes covering every backend's parity verdict; runs verify when needed."""
    wanted = sorted({b.parity_backend for b in backends})
    report = fresh_verification(folder, identity)
    if verify is not None and (report is None or any(b not in report.backends for b in wanted)):
        already = list(report.backends) if report else []
        verify(folder, registry.order(sorted(set(wanted) | set(already))))
        report = fresh_verification(folder, identity)
    return report


def _gate(backend: Backend, report: Verification | None, settings: BenchSettings) -> Cell | None:
    """A not-run cell when the backend may not be timed here; None when it may."""
    def cell(status: str, reason: str, parity: str | None = None, raw: str | None = None) -> Cell:
        return Cell(backend=backend.name, batch_size=0, status=status, reason=reason, parity=parity, raw_reason=raw)

    refused = backend.unsupported_on(settings.device)
    if refused:
        return cell("unsupported", refused)
    missing = backend.unavailable()
    if missing:
        return cell("unavailable", missing)
    verdict = report.backends.get(backend.parity_backend) if report else None
    if verdict is None:
        return cell("gated", "no parity verdict for these bytes: latency is published only after parity passed")
    if verdict.status in ("unsupported", "unavailable"):
        return cell(verdict.status, verdict.reason or f"verify reported {verdict.status}", verdict.status,
                    verdict.raw_reason)
    if not verdict.working:
        return cell("gated", f"parity {verdict.status} in verification: latency is published only after parity "
                             "passed", verdict.status)
    return None


# -- one process of a cell --------------------------------------------------------------------

def _busy_jiffies() -> tuple[float, int] | None:
    """(busy CPU seconds of the whole machine, cores) from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(values[:8]) - idle) / hz, os.cpu_count() or 1


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def _process_run(round_: int, outcome: Any, progress: dict[str, Any] | None, *, load_before: float,
                 busy_before: tuple[float, int] | None, cores: int) -> ProcessRun:
    from hubtool.verify.run import crash_reason

    result = outcome.result if outcome.status == "ok" else None
    busy_after = _busy_jiffies()
    other = None
    if busy_before and busy_after and outcome.seconds > 0:
        own = (result or {}).get("cpu_seconds") or 0.0
        other = max(0.0, (busy_after[0] - busy_before[0] - own) / (outcome.seconds * busy_after[1]))
    load_after = _load()
    records = (result or {}).get("phases") or (progress or {}).get("phases") or {}
    common = {
        "round": round_, "seconds": round(outcome.seconds, 3), "load_before": load_before, "load_after": load_after,
        "cores": cores, "other_cpu": other, "busy": bool((other or 0) > BUSY_OTHER_CPU or load_before > cores),
        "phases": {k: PhaseRecord(**v) for k, v in records.items()},
    }
    if isinstance(result, dict) and "unsupported" in result:
        return ProcessRun(status="unsupported", reason=result["unsupported"], **common)
    if result is None:
        running = (progress or {}).get("running") or "loading"
        status = "timeout" if outcome.status == "timeout" else "crashed"
        return ProcessRun(status=status, reason=f"{crash_reason(outcome, outcome.seconds)} (during {running})",
                          exit_code=outcome.exit_code, stderr_tail=outcome.stderr_tail, **common)
    return ProcessRun(
        status="ok", cpu_seconds=result.get("cpu_seconds"), peak_memory_bytes=result.get("peak_memory_bytes"),
        baseline_memory_bytes=result.get("baseline_memory_bytes"), memory_kind=result.get("memory_kind"),
        backend_info={**(result.get("backend_info") or {}), "method": result.get("method"),
                      "weight_bytes": result.get("weight_bytes"), "threads": result.get("threads"),
                      "proof_problems": result.get("proof_problems") or []},
        **common,
    )


# -- turning processes into a cell -------------------------------------------------------------

def _phase_problem(phase: str, runs: list[ProcessRun]) -> str | None:
    for run in runs:
        record = run.phases.get(phase)
        if record is None:
            return f"{phase}: no record"
        if record.warmup_failed:
            return f"{phase}: warmup failed after {record.warmup_attempts} attempt(s): {'; '.join(record.errors)}"
        bad = sum(1 for ms, tok in zip(record.samples, record.tokens, strict=False) if not ms > 0 or not tok > 0)
        if bad or len(record.tokens) != len(record.samples):
            return f"invalid measurement: {phase} has {bad} row(s) with zero latency or zero tokens"
        if record.failures:
            return f"{phase}: {record.failures} of {record.attempts} attempts failed: {'; '.join(record.errors)}"
        if not record.samples:
            return f"{phase}: no sample"
    return None


def build_cell(backend: Backend, batch_size: int, runs: list[ProcessRun], *, parity: str | None,
               bandwidth_gbps: float | None, settings: BenchSettings, seed: int) -> Cell:
    """A report cell from the cell's worker processes."""
    cell = Cell(backend=backend.name, batch_size=batch_size, status="ok", parity=parity, processes=runs,
                busy=any(r.busy for r in runs))
    unsupported = next((r for r in runs if r.status == "unsupported"), None)
    if unsupported:
        return cell.model_copy(update={"status": "unsupported", "reason": unsupported.reason})
    ok = [r for r in runs if r.status == "ok"]
    info = ok[0].backend_info if ok else {}
    crash_rate = {}
    for phase in (*PHASES, *GENERATE_PHASES):
        attempts = sum(r.phases[phase].attempts for r in runs if phase in r.phases)
        failures = sum(r.phases[phase].failures for r in runs if phase in r.phases)
        crash_rate[phase] = failures / attempts if attempts else None
    update: dict[str, Any] = {"crash_rate": crash_rate, "method": info.get("method"),
                              "weight_bytes": info.get("weight_bytes")}
    crashed = [r for r in runs if r.status != "ok"]
    problem = crashed[0].reason if crashed else next(
        (p for p in (_phase_problem(phase, ok) for phase in (*PHASES, *GENERATE_PHASES)) if p), None)
    if problem:
        return cell.model_copy(update={**update, "status": "crashed", "reason": problem})
    phases: dict[str, Stats | None] = {}
    for i, phase in enumerate((*PHASES, *GENERATE_PHASES)):
        groups = [r.phases[phase].samples for r in ok]
        phases[phase] = Stats(**summarize_processes(groups, unit=UNITS[phase], seed=seed + i))
    update["phases"] = phases
    median = {p: s.median for p, s in phases.items() if s is not None}
    update["tokens_per_s"] = {
        "prefill": batch_size * settings.prompt_len / (median["prefill"] / 1e3),
        "decode": batch_size / (median["decode"] / 1e3),
        "e2e": batch_size * settings.new_tokens / (median["e2e"] / 1e3),
    }
    predicted = median["prefill"] + (settings.new_tokens - 1) * median["decode"]
    gap = (median["e2e"] - predicted) / median["e2e"]
    update["e2e_check"] = E2ECheck(predicted_ms=predicted, measured_ms=median["e2e"], gap=gap, margin=E2E_MARGIN,
                                   within=abs(gap) <= E2E_MARGIN)
    update["peak_memory_bytes"] = max((r.peak_memory_bytes or 0) for r in ok) or None
    weight_bytes = info.get("weight_bytes")
    if weight_bytes and bandwidth_gbps:
        stream_ms = weight_bytes / (bandwidth_gbps * 1e9) * 1e3
        update.update(stream_ms=stream_ms, decode_vs_stream=median["decode"] / stream_ms)
    if backend.compiled:
        update["compile"] = {k: info.get(k) for k in (
            "compile_seconds", "graphs", "graph_breaks", "recompiles", "fxgraph_cache_hits", "fxgraph_cache_misses",
            "output_code_modules", "inductor_cache_dir")}
    proofs = sorted({p for r in ok for p in r.backend_info.get("proof_problems", [])})
    if proofs:
        return cell.model_copy(update={**update, "status": "gated", "reason": "not proven to run as labelled: " +
                                       "; ".join(proofs)})
    breaks = max(int(r.backend_info.get("graph_breaks") or 0) for r in ok) if backend.compiled else 0
    if breaks > settings.graph_breaks_allowed:
        return cell.model_copy(update={**update, "status": "gated",
                                       "reason": f"{breaks} graph break(s) in the timed code "
                                                 f"(allowed: {settings.graph_breaks_allowed})"})
    if breaks or parity == "partial":
        return cell.model_copy(update={**update, "status": "partial",
                                       "reason": f"{breaks} graph break(s)" if breaks else "parity partial"})
    return cell.model_copy(update=update)


def comparisons(cells: list[Cell], *, seed: int) -> list[Comparison]:
    """Every pair of published backends, per phase and batch size, with the ratio's interval."""
    out = []
    published = [c for c in cells if c.publishable]
    for i, a in enumerate(published):
        for b in published[i + 1:]:
            if a.batch_size != b.batch_size:
                continue
            for k, phase in enumerate(PHASES):
                groups_a = [r.phases[phase].samples for r in a.processes if r.status == "ok"]
                groups_b = [r.phases[phase].samples for r in b.processes if r.status == "ok"]
                r = hierarchical_ratio(groups_a, groups_b, seed=seed + k)
                lo, hi = r["ci95"]
                resolved = hi < 1.0 or lo > 1.0
                if resolved:
                    faster, slower, ratio = (a.backend, b.backend, 1 / r["ratio"]) if r["ratio"] < 1 else (
                        b.backend, a.backend, r["ratio"])
                    statement = (f"{registry.label(faster)} is {ratio:.2f}x as fast as {registry.label(slower)} "
                                 f"({phase})")
                else:
                    statement = (f"{registry.label(a.backend)} and {registry.label(b.backend)}: no difference resolved "
                                 f"({phase}; ratio {r['ratio']:.2f}, 95% CI [{lo:.2f}, {hi:.2f}])")
                out.append(Comparison(phase=phase, batch_size=a.batch_size, a=a.backend, b=b.backend,
                                      ratio=r["ratio"], ci95=[lo, hi], resolved=resolved, statement=statement))
    return out


# -- the run -----------------------------------------------------------------------------------

@dataclass
class Models:
    """The models of one run: folder and identity of each, hashed once."""

    folders: dict[str, Path]
    identities: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, folder in self.folders.items():
            if not (folder / WEIGHTS_FILE).is_file():
                raise ArtifactError(f"{display_path(folder)} has no {WEIGHTS_FILE}; run 'hubtool build {name}' first")
            self.identities[name] = folder_identity(folder)


# progress(event, data): "machine" {machine}, "verify" {model, backend, verdict},
# "start" {model, backend, batch, round, rounds, index, total, pid}, "done" {... run: ProcessRun}
BenchProgress = Callable[[str, dict[str, Any]], None]


CELL_TARGET = "hubtool.bench.cell:run_cell"


def bench_models(
    models: list[tuple[str, Path]], *, backends: list[Backend], settings: BenchSettings, cache: Path | None = None,
    progress: BenchProgress | None = None, verify: bool = True, cell_target: str = CELL_TARGET,
) -> dict[str, Path]:
    """Benchmark every (model, backend, batch) cell; returns model name -> its report path.

    ``cell_target`` names the worker function (tests give the harness a fake one).
    """
    from hubtool.runtime.isolate import run_isolated
    from hubtool.verify.run import torch_preload

    settings = settings.checked()
    if settings.device == "cuda" and not _cuda_available():
        raise UsageError("--device cuda: no CUDA device is visible")
    run = Models(dict(models))
    cache = cache or cache_root()
    isolate: dict[str, Any] = {"cache_dir": compile_cache(cache), "threads": settings.threads}
    # The torch workers' server, where the cells need one. The machine probe forks from it too: about
    # 3 s less than a fresh interpreter, which imports torch and tears it down again just for the probe.
    preload = (torch_preload(compiled=any(b.compiled for b in backends))
               if any(b.engine == "transformers" for b in backends) else ())
    probe = run_isolated("hubtool.bench.machine:probe_machine", {"device": settings.device}, timeout=300,
                         preload=preload, **isolate)
    if probe.status != "ok":
        raise ArtifactError(f"measuring the machine failed ({probe.status}): {probe.cause or probe.stderr_tail}")
    machine = machine_of(probe.result["fingerprint"], device=settings.device)
    bandwidth = probe.result["bandwidth"]
    if progress:
        progress("machine", {"machine": machine, "bandwidth": bandwidth})

    def run_verify(folder: Path, wanted: list[str]) -> None:
        from hubtool.verify.run import verify_target

        def verified(event: str, backend: str, verdict: Any) -> None:
            if event == "done" and progress:
                progress("verify", {"model": folder.name, "backend": backend, "verdict": verdict})

        verify_target(str(folder), backends=wanted, cache_dir=cache, threads=settings.threads, progress=verified,
                      graph_breaks_allowed=settings.graph_breaks_allowed)

    gates: dict[tuple[str, str], Cell | None] = {}
    parity: dict[tuple[str, str], str | None] = {}
    for name, folder in run.folders.items():
        verification = parity_gate(folder, run.identities[name], backends, verify=run_verify if verify else None)
        for backend in backends:
            gates[name, backend.name] = _gate(backend, verification, settings)
            verdict = verification.backends.get(backend.parity_backend) if verification else None
            parity[name, backend.name] = verdict.status if verdict else None

    keys = [(name, b.name, size) for name in run.folders for b in backends for size in settings.batch_sizes
            if gates[name, b.name] is None]
    runs: dict[tuple[str, str, int], list[ProcessRun]] = {k: [] for k in keys}
    order: list[list[str]] = []
    cores = available_cores()
    total, index = len(keys) * settings.processes, 0
    for round_ in range(1, settings.processes + 1):
        ordered = list(keys)
        random.Random(settings.seed * 1_000 + round_).shuffle(ordered)
        order.append([f"{n}:{b}@{s}" for n, b, s in ordered])
        for name, backend_name, size in ordered:
            index += 1
            backend = registry.get(backend_name)
            runs[name, backend_name, size].append(_run_process(
                name, run.folders[name], backend, size, settings=settings, isolate=isolate, round_=round_,
                cores=cores, progress=progress, target=cell_target, preload=preload,
                position={"index": index, "total": total, "round": round_, "rounds": settings.processes}))

    written: dict[str, Path] = {}
    for name, folder in run.folders.items():
        cells: list[Cell] = []
        for backend in backends:
            gate = gates[name, backend.name]
            for size in settings.batch_sizes:
                if gate is not None:
                    cells.append(gate.model_copy(update={"batch_size": size}))
                else:
                    cells.append(build_cell(backend, size, runs[name, backend.name, size],
                                            parity=parity[name, backend.name], bandwidth_gbps=bandwidth["peak_gbps"],
                                            settings=settings, seed=settings.seed))
        report = Benchmark(
            created=_now(), hubtool=hubtool_identity(), subject=run.identities[name], model=name,
            quality=settings.quality, machine=machine, fingerprint=probe.result["fingerprint"],
            settings=settings.record(), bandwidth=bandwidth, interval_method=HIERARCHICAL_METHOD,
            order=[[key.split(":", 1)[1] for key in round_keys if key.startswith(f"{name}:")] for round_keys in order],
            cells=cells, comparisons=comparisons(cells, seed=settings.seed),
        )
        # The files may not change while they are measured: bind the report to what was measured.
        if identity_changes(run.identities[name], folder_identity(folder)):
            raise ArtifactError(f"{display_path(folder)}: model files changed while they were benchmarked; "
                                "nothing was written")
        path = report_path(folder, machine)
        path.parent.mkdir(exist_ok=True)
        report.write(path)
        written[name] = path
    return written


def _run_process(name: str, folder: Path, backend: Backend, batch_size: int, *, settings: BenchSettings,
                 isolate: dict[str, Any], round_: int, cores: int, progress: BenchProgress | None, target: str,
                 preload: tuple[str, ...], position: dict[str, Any]) -> ProcessRun:
    from hubtool.runtime.isolate import run_isolated

    progress_path = Path(isolate["cache_dir"]) / f"progress-{os.getpid()}-{position['index']}.json"
    where = {"model": name, "backend": backend.name, "batch": batch_size, **position}

    def started(pid: int) -> None:
        if progress:
            progress("start", {**where, "pid": pid, "progress_path": progress_path})

    load_before, busy_before = _load(), _busy_jiffies()
    try:
        outcome = run_isolated(
            target,
            {"backend": backend.to_dict(), "model_dir": str(folder.resolve()), "device": settings.device,
             "prompt_len": settings.prompt_len, "new_tokens": settings.new_tokens, "batch_size": batch_size,
             "warmup": settings.warmup, "rule": asdict(settings.rule), "seed": settings.seed,
             "progress_path": str(progress_path)},
            timeout=settings.timeout, preload=preload if backend.engine == "transformers" else (),
            on_start=started, **isolate,
        )
        progress_data = read_json_object(progress_path) if progress_path.is_file() else None
    finally:
        progress_path.unlink(missing_ok=True)
    result = _process_run(round_, outcome, progress_data, load_before=load_before, busy_before=busy_before,
                          cores=cores)
    if progress:
        progress("done", {**where, "run": result})
    return result


def import_benchmark(folder: Path, source: Path) -> Path:
    """Add a benchmark measured elsewhere to ``folder``, if it was measured on these exact bytes."""
    report = Benchmark.from_file(source)
    changes = identity_changes(report.subject, folder_identity(folder))
    if changes:
        raise FoundWrong(f"{display_path(source)} was measured on other bytes than {display_path(folder)} "
                            f"({'; '.join(changes)}); refusing to import it")
    path = report_path(folder, report.machine)
    path.parent.mkdir(exist_ok=True)
    report.model_copy(update={"imported_from": source.name}).write(path)
    return path


def load_benchmarks(folder: Path) -> list[Benchmark]:
    """Every machine's report in the folder (invalid files are errors naming them)."""
    directory = folder / BENCHMARK_DIR
    if not directory.is_dir():
        return []
    return [Benchmark.from_file(p) for p in sorted(directory.glob("*.json"))]


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()

