"""The benchmark harness with a fake worker: interleaving, isolation, statistics, invalid rows, gating."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hubtool.backends import registry
from hubtool.backends.registry import Backend
from hubtool.bench.harness import BenchSettings, bench_models, fresh_verification, parity_gate
from hubtool.evidence.benchmark import Benchmark
from hubtool.evidence.verification import Verdict
from tests.card_fixtures import verification

FAKE = "tests.fake_cells:run"
OK_BACKENDS = ["fake-a", "fake-b", "fake-c"]
ALL = OK_BACKENDS + ["fake-crash", "fake-hang", "fake-zero", "fake-notokens", "fake-warmup", "fake-gated"]


@pytest.fixture(scope="module")
def fake_backends():
    """Registered for the module: real registry entries whose worker is the fake one."""
    for name in ALL:
        registry.register(Backend(name, f"Fake {name}", "hubtool.backends.attention", "transformers", "fake"),
                          replace=True)
    yield [registry.get(n) for n in ALL]
    for name in ALL:
        registry.unregister(name)


def _fake_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    report = verification(folder, statuses={b: "passed" for b in ALL})
    report.backends["fake-gated"] = Verdict(status="failed", reason="parity failed on purpose")
    report.write(folder / "verification.json")
    return folder


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory, fake_backends):
    root = tmp_path_factory.mktemp("fake")
    folder = _fake_model(root / "fake-model")
    seen = []
    settings = BenchSettings(repeats=11, warmup=1, seed=3, threads=1, timeout=8, processes=3)
    written = bench_models([("fake-model", folder)], backends=fake_backends, settings=settings, cache=root / "cache",
                           verify=False, cell_target=FAKE, progress=lambda e, d: seen.append((e, d)))
    report = Benchmark.from_file(written["fake-model"])
    calls = (folder / "fake-calls.log").read_text().split()
    return report, seen, calls, written["fake-model"]


@pytest.mark.slow
def test_cells_run_interleaved_in_seeded_rounds(fake_run):
    report, seen, calls, path = fake_run
    assert path.parent.name == "benchmarks" and path.name == f"{report.machine.id}.json"
    runnable = [b for b in ALL if b != "fake-gated"]
    assert len(report.order) == 3  # one round per process
    for round_order in report.order:
        assert sorted(round_order) == sorted(f"{b}@1" for b in runnable)
    assert report.order[0] != report.order[1]  # each round has its own order
    done = [d for e, d in seen if e == "done"]
    assert [d["round"] for d in done] == [1] * 8 + [2] * 8 + [3] * 8
    assert [f"{d['backend']}@1" for d in done] == [k for r in report.order for k in r]
    ran = [b for b in calls[0::2]]
    assert sorted(ran) == sorted([b for b in runnable if b not in ("fake-crash", "fake-hang")] * 3)


@pytest.mark.slow
def test_each_process_is_its_own_and_a_crash_stops_nothing(fake_run):
    report, _, calls, _ = fake_run
    pids = calls[1::2]
    assert len(set(pids)) == len(pids) and str(os.getpid()) not in pids
    crash = report.cell("fake-crash")
    assert crash.status == "crashed" and len(crash.processes) == 3
    assert crash.processes[0].exit_code == -6  # SIGABRT
    assert "during decode" in crash.reason
    assert crash.processes[0].phases["prefill"].samples[0] == 10.0  # the phase that finished is kept
    hang = report.cell("fake-hang")
    assert hang.status == "crashed" and "timed out after" in hang.reason
    for backend in OK_BACKENDS:
        assert report.cell(backend).status == "ok"


@pytest.mark.slow
def test_statistics_pool_processes_and_count_outliers(fake_run):
    report, _, _, _ = fake_run
    cell = report.cell("fake-a")
    assert len(cell.processes) == 3
    for phase, unit in (("prefill", "ms"), ("decode", "ms/token"), ("ttft", "ms")):
        stats = cell.phases[phase]
        assert stats.unit == unit
        assert stats.n == 33 and stats.processes == 3 and stats.median == 10.0 and stats.outliers == 3
        assert stats.process_medians == [10.0, 10.0, 10.0]
        assert stats.ci95 == [10.0, 10.0] and stats.p95 is None
        assert "hierarchical" in stats.ci_method
    assert cell.phases["itl"].n == 3 * 11 * 63
    assert cell.crash_rate["decode"] == 0.0
    # 4 MB of weights: the stream time at the measured bandwidth, and decode against it.
    bw = report.bandwidth["peak_gbps"]
    assert cell.stream_ms == pytest.approx(4e6 / (bw * 1e9) * 1e3)
    assert cell.decode_vs_stream == pytest.approx(10.0 / cell.stream_ms)
    assert cell.tokens_per_s["decode"] == pytest.approx(100.0)
    assert cell.e2e_check.predicted_ms == pytest.approx(10.0 + 63 * 10.0) == cell.e2e_check.measured_ms
    assert cell.e2e_check.gap == 0.0 and cell.e2e_check.within
    assert report.quality == "result" and report.interval_method.startswith("hierarchical")
    assert all(p.load_before >= 0 and p.cores >= 1 for p in cell.processes)
    # Same samples everywhere: no difference is claimed between the fake backends.
    assert report.comparisons and not any(c.resolved for c in report.comparisons)


@pytest.mark.slow
def test_zero_rows_and_failed_warmups_are_errors_not_results(fake_run):
    report, _, _, _ = fake_run
    zero = report.cell("fake-zero")
    assert zero.status == "crashed" and "zero latency or zero tokens" in zero.reason and "decode" in zero.reason
    assert zero.phases == {}
    assert report.cell("fake-notokens").status == "crashed"
    warm = report.cell("fake-warmup")
    assert warm.status == "crashed"
    assert warm.reason.startswith("decode: warmup failed after 1 attempt(s): warmup: RuntimeError: out of memory")
    assert warm.processes[0].phases["decode"].attempts == 0  # the attempts actually made


@pytest.mark.slow
def test_failed_parity_gates_the_backend(fake_run):
    report, _, calls, _ = fake_run
    gated = report.cell("fake-gated")
    assert gated.status == "gated" and gated.parity == "failed" and gated.processes == []
    assert "fake-gated" not in calls


def test_verification_for_other_bytes_is_not_trusted(tmp_path, fake_backends):
    from hubtool.folder.hashing import folder_identity

    folder = _fake_model(tmp_path / "m")
    identity = folder_identity(folder)
    assert fresh_verification(folder, identity) is not None
    os.utime(folder / "verification.json", (0, 0))  # file times play no part
    assert fresh_verification(folder, identity) is not None
    (folder / "model.safetensors").write_bytes(b"\1" * 16)
    changed = folder_identity(folder)
    assert fresh_verification(folder, changed) is None
    asked = []
    assert parity_gate(folder, changed, [registry.get("fake-a"), registry.get("compile-ro")],
                       verify=lambda d, b: asked.append(b)) is None
    assert asked == [["compile", "fake-a"]]


@pytest.mark.parametrize("args, code, message", [
    (["bench", "tiny-gpt2"], 3, "has no model.safetensors; run 'hubtool build tiny-gpt2' first"),
    (["bench", "tiny-gpt2", "--backend", "eager,bogus"], 2, "unknown backend 'bogus'"),
    (["bench", "tiny-gpt2", "--repeats", "0"], 2, "--repeats must be at least 1"),
    (["bench", "tiny-gpt2", "--batch-size", "1,x"], 2, "--batch-size: '1,x' is not a comma-separated list"),
    (["report"], 3, "run 'hubtool bench'"),
])
def test_cli_errors_are_one_line(tmp_path, args, code, message):
    from click.testing import CliRunner

    from hubtool.cli.main import cli

    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path)])
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
