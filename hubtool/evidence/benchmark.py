"""``benchmarks/<machine>.json``: latency of one model's backends on one machine, bound to its bytes.

One file per machine configuration (``Machine.id``), so runs from different machines
(a laptop GPU, a server GPU, a CPU with 2 or 16 threads) live side by side and a re-run
replaces only its own. Every cell keeps each worker process's raw samples; the published
interval of a phase comes from a hierarchical bootstrap over processes and their samples,
so it includes the variance between processes. ``quality`` is "smoke" for runs too small
to be results (``--quick``, or fewer than three processes): cards never present them as
results.
"""

from __future__ import annotations

from typing import Any, Literal

from hubtool.evidence.base import Record, Strict
from hubtool.evidence.provenance import HubtoolIdentity

PHASES = ("prefill", "decode", "e2e")
GENERATE_PHASES = ("ttft", "itl")  # measured inside a real generate loop
UNITS = {"prefill": "ms", "decode": "ms/token", "e2e": "ms", "ttft": "ms", "itl": "ms/token"}
CellStatus = Literal["ok", "partial", "unsupported", "unavailable", "gated", "crashed"]
PUBLISHABLE = ("ok", "partial")


class PhaseRecord(Strict):
    """One phase of one worker process: raw samples, as measured."""

    samples: list[float] = []
    tokens: list[int] = []
    attempts: int = 0  # timed attempts made (warmup not counted)
    failures: int = 0
    errors: list[str] = []
    warmup_attempts: int = 0
    warmup_failed: bool = False
    first_call_ms: float | None = None
    warmup_seconds: float | None = None
    stopped_by: str | None = None  # "repeats" | "target" | "time" | "max" | "failure"


class ProcessRun(Strict):
    """One worker process of a cell (cells run in several, interleaved with the other cells)."""

    round: int
    status: Literal["ok", "crashed", "timeout", "unsupported"]
    reason: str | None = None
    seconds: float
    load_before: float  # 1-minute load average before the process started
    load_after: float
    cores: int
    other_cpu: float | None = None  # share of the machine's CPU used by other processes meanwhile
    busy: bool = False
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    baseline_memory_bytes: int | None = None
    memory_kind: str | None = None  # "rss" | "cuda_max_allocated"
    phases: dict[str, PhaseRecord] = {}
    backend_info: dict[str, Any] = {}
    exit_code: int | None = None
    stderr_tail: str | None = None


class Stats(Strict):
    unit: str
    n: int
    processes: int
    median: float
    mean: float
    stdev: float
    iqr: float
    ci95: list[float]
    ci_method: str
    process_medians: list[float]
    p50: float
    p90: float | None = None
    p95: float | None = None  # only when n >= 100
    p99: float | None = None
    outliers: int


class E2ECheck(Strict):
    """Does end-to-end agree with prefill + (new_tokens - 1) decode steps?"""

    predicted_ms: float
    measured_ms: float
    gap: float  # (measured - predicted) / measured
    margin: float
    within: bool


class Cell(Strict):
    backend: str
    batch_size: int
    status: CellStatus
    reason: str | None = None
    raw_reason: str | None = None
    parity: str | None = None  # the verify verdict that licensed it
    method: str | None = None
    processes: list[ProcessRun] = []
    phases: dict[str, Stats | None] = {}
    tokens_per_s: dict[str, float | None] = {}
    peak_memory_bytes: int | None = None
    weight_bytes: int | None = None  # unique parameter bytes: what one decode step must read at least once
    stream_ms: float | None = None  # weight_bytes at the machine's measured bandwidth
    decode_vs_stream: float | None = None  # decode ms/token over stream_ms (1.0 = at the memory limit)
    e2e_check: E2ECheck | None = None
    busy: bool = False
    compile: dict[str, Any] | None = None
    crash_rate: dict[str, float | None] = {}

    @property
    def publishable(self) -> bool:
        return self.status in PUBLISHABLE


class Comparison(Strict):
    """Backend a against backend b on one phase: ratio of medians with its interval."""

    phase: str
    batch_size: int
    a: str
    b: str
    ratio: float  # median(a) / median(b)
    ci95: list[float]
    resolved: bool  # the interval excludes 1
    statement: str


class Machine(Strict):
    id: str
    device: Literal["cpu", "cuda"]
    name: str  # as a reader names it: "AMD EPYC, 2 threads", "NVIDIA H100 80GB HBM3, CUDA 12.4"
    cpu: str
    threads: int
    gpu: str | None = None
    cuda: str | None = None
    driver: str | None = None
    libraries: dict[str, str | None] = {}


class Benchmark(Record):
    SCHEMA = "hubtool.benchmark/2"
    REMEDY = "hubtool bench NAME"

    created: str
    hubtool: HubtoolIdentity
    subject: dict[str, str]
    model: str
    quality: Literal["result", "smoke"]
    machine: Machine
    fingerprint: dict[str, Any]
    settings: dict[str, Any]
    bandwidth: dict[str, Any]
    interval_method: str
    order: list[list[str]]  # per round: "backend@batch" in the order run
    cells: list[Cell]
    comparisons: list[Comparison] = []
    imported_from: str | None = None

    def cell(self, backend: str, batch_size: int = 1) -> Cell | None:
        return next((c for c in self.cells if c.backend == backend and c.batch_size == batch_size), None)

    @property
    def busy(self) -> bool:
        return any(c.busy for c in self.cells)
