"""The benchmark harness with fake cells: ordering, isolation, statistics, invalid rows, gating."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hubtool.bench.harness import BenchSettings, bench_models, order_cells

FAKE = "tests.fake_cells:run"
OK_BACKENDS = ["fake-a", "fake-b", "fake-c"]
ALL = OK_BACKENDS + ["fake-crash", "fake-hang", "fake-zero", "fake-notokens", "fake-gated"]


def _fake_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    verdicts = {b: {"status": "passed"} for b in ALL}
    verdicts["fake-gated"] = {"status": "failed"}
    (folder / "verification.json").write_text(json.dumps({"created": "2999-01-01T00:00:00Z", "backends": verdicts}))
    return folder


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake")
    folder = _fake_model(root / "fake-model")
    seen = []
    settings = BenchSettings(repeats=11, warmup=1, seed=3, threads=1, timeout=8)
    written = bench_models(
        [("fake-model", folder)], backends=ALL, settings=settings, cache_dir=root / ".cache",
        cell_targets={b: FAKE for b in ALL}, verify=False,
        on_cell=lambda i, n, name, backend, cell: seen.append((i, n, backend, cell["status"])),
    )
    report = json.loads(written["fake-model"].read_text())
    calls = (folder / "fake-calls.log").read_text().split()
    return report, seen, calls


@pytest.mark.slow
def test_cells_run_in_a_seeded_random_order(fake_run):
    report, seen, calls = fake_run
    expected = [b for _, b in order_cells([("fake-model", b) for b in ALL], seed=3)]
    assert report["settings"]["order"] == expected
    assert expected != ALL  # the shuffle really reorders
    assert [b for _, b in order_cells([("m", b) for b in ALL], seed=4)] != expected
    assert [backend for _, _, backend, _ in seen] == expected
    assert [i for i, *_ in seen] == list(range(1, len(ALL) + 1))
    ran = [b for b in expected if b in OK_BACKENDS + ["fake-zero", "fake-notokens"]]
    assert calls[0::2] == ran


@pytest.mark.slow
def test_each_cell_is_its_own_process_and_a_crash_stops_nothing(fake_run):
    report, _, calls = fake_run
    pids = calls[1::2]
    assert len(set(pids)) == len(pids) and str(os.getpid()) not in pids
    crash = report["cells"]["fake-crash"]
    assert crash["status"] == "crashed"
    assert crash["exit_code"] == -6  # SIGABRT
    assert "during decode" in crash["reason"]
    # The phase that finished before the crash is kept; the one running is a crash.
    assert crash["phases"]["prefill"]["median"] == 10.0
    assert crash["crash_rate"] == {"prefill": 0.0, "decode": 1.0, "e2e": None}
    hang = report["cells"]["fake-hang"]
    assert hang["status"] == "crashed" and "timed out after" in hang["reason"]
    for backend in OK_BACKENDS:
        assert report["cells"][backend]["status"] == "ok"


@pytest.mark.slow
def test_statistics_keep_and_count_outliers(fake_run):
    report, _, _ = fake_run
    cell = report["cells"]["fake-a"]
    for phase, unit in (("prefill", "ms"), ("decode", "ms/token"), ("e2e", "ms")):
        stats = cell["phases"][phase]
        assert stats["unit"] == unit
        assert stats["n"] == 11 and stats["median"] == 10.0 and stats["outliers"] == 1
        assert max(stats["samples"]) == 50.0
        assert stats["ci95"] == [10.0, 10.0]
        assert stats["p95"] is None
        assert cell["crash_rate"][phase] == 0.0
    assert cell["first_call_ms"] == 123.0
    bw = report["memory_bandwidth_gbps"]
    assert bw > 0
    # 4 MB of weights per 10 ms step = 0.4 GB/s.
    assert cell["decode_bandwidth_fraction"] == pytest.approx(0.4 / bw)


@pytest.mark.slow
def test_zero_latency_or_zero_tokens_is_an_error(fake_run):
    report, _, _ = fake_run
    zero = report["cells"]["fake-zero"]
    assert zero["status"] == "crashed"
    assert "zero latency or zero tokens" in zero["reason"] and "decode" in zero["reason"]
    assert zero["phases"]["decode"] is None
    assert zero["phases"]["prefill"]["median"] == 10.0
    notokens = report["cells"]["fake-notokens"]
    assert notokens["status"] == "crashed" and notokens["phases"]["e2e"] is None


@pytest.mark.slow
def test_failed_parity_gates_the_backend(fake_run):
    report, _, calls = fake_run
    gated = report["cells"]["fake-gated"]
    assert gated["status"] == "gated" and gated["parity"] == "failed"
    assert all(v is None for v in gated["phases"].values())
    assert "fake-gated" not in calls


def test_stale_verification_is_not_trusted(tmp_path):
    from hubtool.bench.harness import fresh_verification, parity_verdicts

    folder = _fake_model(tmp_path / "m")
    assert fresh_verification(folder) is not None
    report = json.loads((folder / "verification.json").read_text())
    report["created"] = "2000-01-01T00:00:00Z"
    (folder / "verification.json").write_text(json.dumps(report))
    assert fresh_verification(folder) is None
    asked = []
    verdicts = parity_verdicts(folder, ["fake-a", "compile-ro"], verify=lambda d, b: asked.append((d, b)))
    assert asked == [(folder, ["compile", "fake-a"])]
    assert verdicts["fake-a"]["status"] is None


@pytest.mark.parametrize("args, code, message", [
    (["bench", "tiny-gpt2"], 1, "has no model.safetensors; run 'hubtool build tiny-gpt2' first"),
    (["bench", "tiny-gpt2", "--backend", "eager,bogus"], 2, "unknown backend 'bogus'"),
    (["bench", "tiny-gpt2", "--repeats", "0"], 2, "--repeats must be at least 1"),
    (["report"], 1, "run 'hubtool bench' first"),
])
def test_cli_errors_are_one_line(tmp_path, args, code, message):
    from click.testing import CliRunner

    from hubtool.cli.main import cli

    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path)])
    assert result.exit_code == code
    assert message in result.output and "Traceback" not in result.output
