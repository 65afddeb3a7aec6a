"""A real CPU benchmark of two tiny models, results from two machine configurations side by side,
import of a run made elsewhere, and the per-machine family report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubtool.build.folder import build_model
from hubtool.cli.main import cli
from hubtool.evidence.benchmark import Benchmark
from hubtool.spec.catalog import configs_dir
from hubtool.spec.model import load_spec

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
BACKENDS = ["eager", "sdpa", "compile"]
DEEP_BACKENDS = ["eager", "sdpa"]
REPEATS, NEW_TOKENS, PROCESSES = 3, 4, 3
COMMON = ["--repeats", str(REPEATS), "--warmup", "1", "--prompt-len", "8", "--new-tokens", str(NEW_TOKENS),
          "--processes", str(PROCESSES)]


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def family(tmp_path_factory, monkeypatch_module, verify_cache):
    """tiny-gpt2 and a deeper, wider tiny sibling, built and benchmarked (2 threads) once for this module."""
    configs = tmp_path_factory.mktemp("configs")
    for name in ("tiny-gpt2.yaml", "family.yaml"):
        shutil.copy(configs_dir() / name, configs / name)
    text = (configs / "tiny-gpt2.yaml").read_text().replace("n_layer: 2", "n_layer: 4").replace("n_embd: 2", "n_embd: 4")
    (configs / "tiny-deep.yaml").write_text(text.replace("n_inner: 8", "n_inner: 16"))
    monkeypatch_module.setenv("HUBTOOL_CONFIGS", str(configs))
    monkeypatch_module.setenv("HUBTOOL_CACHE", str(verify_cache))
    root = tmp_path_factory.mktemp("artifacts")
    for name in ("tiny-gpt2", "tiny-deep"):
        build_model(load_spec(configs / f"{name}.yaml"), root=root)
    result = CliRunner().invoke(cli, ["bench", "tiny-gpt2", "--backend", ",".join(BACKENDS), "--threads", "2",
                                      *COMMON, "--out", str(root)])
    assert result.exit_code == 0, result.output
    sibling = CliRunner().invoke(cli, ["bench", "tiny-deep", "--backend", ",".join(DEEP_BACKENDS), "--threads", "2",
                                       *COMMON, "--out", str(root)])
    assert sibling.exit_code == 0, sibling.output
    return root, result


def reports(folder: Path) -> list[Benchmark]:
    return [Benchmark.from_file(p) for p in sorted((folder / "benchmarks").glob("*.json"))]


def fixture_run(folder: Path) -> Benchmark:
    """The family fixture's 2-thread run (tests here run in any order; another adds a 1-thread run)."""
    (report,) = [r for r in reports(folder) if r.machine.threads == 2]
    return report


def test_report_contract(family):
    root, result = family
    report = fixture_run(root / "tiny-gpt2")
    assert report.model == "tiny-gpt2" and report.quality == "result" and report.machine.device == "cpu"
    assert report.machine.threads == 2 and report.machine.name.endswith(", 2 threads")
    assert report.subject["model.safetensors"] and report.interval_method.startswith("hierarchical")
    assert len(report.order) == PROCESSES and all(sorted(r) == sorted(f"{b}@1" for b in BACKENDS) for r in report.order)
    assert report.bandwidth["peak_gbps"] > 0
    assert report.fingerprint["cpu"]["isa"] and "load_average" in report.fingerprint
    for backend in BACKENDS:
        cell = report.cell(backend)
        assert cell.status == "ok", (backend, cell.reason)
        assert cell.parity == "passed"  # verify ran first, on these bytes
        assert len(cell.processes) == PROCESSES and len({p.round for p in cell.processes}) == PROCESSES
        for run in cell.processes:
            assert run.status == "ok" and run.load_before >= 0 and run.cpu_seconds > 0
            assert run.peak_memory_bytes > run.baseline_memory_bytes > 0 and run.memory_kind == "rss"
            assert len(run.phases["decode"].samples) == REPEATS
            assert run.phases["ttft"].attempts == REPEATS and len(run.phases["itl"].samples) == REPEATS * (NEW_TOKENS - 1)
        for phase, unit in (("prefill", "ms"), ("decode", "ms/token"), ("e2e", "ms"), ("ttft", "ms"), ("itl", "ms/token")):
            stats = cell.phases[phase]
            assert stats.unit == unit and stats.processes == PROCESSES and stats.median > 0
            assert stats.ci95[0] <= stats.median <= stats.ci95[1]
        assert cell.phases["decode"].n == PROCESSES * REPEATS
        assert cell.phases["itl"].n == PROCESSES * REPEATS * (NEW_TOKENS - 1)
        assert cell.tokens_per_s["decode"] == pytest.approx(1e3 / cell.phases["decode"].median)
        assert cell.weight_bytes == 102_714 * 4  # stored tensors (the tied output layer once), float32
        assert cell.stream_ms > 0 and cell.decode_vs_stream > 1.0  # slower than reading the weights once
        assert cell.e2e_check.predicted_ms > 0 and cell.e2e_check.margin == 0.25
        assert "logits_to_keep=1" in cell.method or backend == "vllm"
    assert "compile" in report.cell("compile").compile["inductor_cache_dir"]
    assert "process 3/3 [9/9] done in" in result.output  # progress: one stage per worker process


def test_bench_reuses_the_kernels_verify_compiled(family, verify_cache):
    """verify ran first (no verdict existed) in the same cache root: the compiled cells load Inductor's
    cached code in fresh processes instead of compiling again."""
    root, _ = family
    report = fixture_run(root / "tiny-gpt2")
    for run in report.cell("compile").processes:
        info = run.backend_info
        assert info["inductor_cache_dir"] == str(verify_cache / "compile" / "inductor")
        assert info["fxgraph_cache_hits"] > 0 and info["fxgraph_cache_misses"] == 0, info


def test_machines_side_by_side_reruns_replace_only_their_own(family, tmp_path):
    root, _ = family
    folder = root / "tiny-gpt2"
    args = ["bench", "tiny-gpt2", "--backend", "eager", "--threads", "1", *COMMON, "--out", str(root)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    two, one = (r for r in sorted(reports(folder), key=lambda r: -r.machine.threads))
    assert (two.machine.threads, one.machine.threads) == (2, 1) and two.machine.id != one.machine.id
    kept = (folder / "benchmarks" / f"{two.machine.id}.json").read_bytes()
    assert CliRunner().invoke(cli, args).exit_code == 0  # a re-run on the 1-thread configuration
    after = reports(folder)
    assert len(after) == 2
    assert (folder / "benchmarks" / f"{two.machine.id}.json").read_bytes() == kept
    assert next(r for r in after if r.machine.id == one.machine.id).created >= one.created
    card = CliRunner().invoke(cli, ["card", "tiny-gpt2", "--out", str(root)])
    assert card.exit_code == 0, card.output
    text = (folder / "README.md").read_text()
    assert f"### {two.machine.name}" in text and f"### {one.machine.name}" in text


def test_import_of_a_run_made_elsewhere(family, tmp_path):
    root, _ = family
    folder = root / "tiny-gpt2"
    elsewhere = tmp_path / "from-another-machine.json"
    (first,) = [p for p in (folder / "benchmarks").glob("*.json")][:1]
    original = first.read_bytes()
    shutil.copy(first, elsewhere)
    first.unlink()
    try:
        done = CliRunner().invoke(cli, ["bench", "tiny-gpt2", "--import", str(elsewhere), "--out", str(root)])
        assert done.exit_code == 0, done.output
        imported = Benchmark.from_file(first)
        assert imported.imported_from == "from-another-machine.json"
    finally:  # the other tests read the run as the fixture measured it
        first.write_bytes(original)
    refused = CliRunner().invoke(cli, ["bench", "tiny-deep", "--import", str(elsewhere), "--out", str(root)])
    assert refused.exit_code == 1
    assert "was measured on other bytes than" in refused.output and "model.safetensors changed" in refused.output
    assert "Traceback" not in refused.output


def test_family_report_per_machine(family):
    root, _ = family
    result = CliRunner().invoke(cli, ["report", "tiny-gpt2", "tiny-deep", "--out", str(root), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["design"]["n"] == 2 and data["design"]["rho"] is None  # two models: nothing to separate
    machines = data["machines"]
    assert any(m.endswith(", 2 threads") for m in machines)
    rows = [r for r in data["rows"] if r["machine"].endswith(", 2 threads")]
    assert {(r["model"], r["backend"]) for r in rows} == {("tiny-gpt2", b) for b in BACKENDS} | {
        ("tiny-deep", b) for b in DEEP_BACKENDS}
    assert all(r["decode_vs_stream"] > 1.0 for r in rows)
    eager = next(c for c in data["spearman"] if c["backend"] == "eager" and c["machine"].endswith(", 2 threads"))
    assert eager["n_layer"]["n"] == 2 and abs(eager["n_layer"]["rho"]) == 1.0 and eager["n_layer"]["p_value"] == 1.0
    compiled = next(c for c in data["spearman"] if c["backend"] == "compile" and c["machine"].endswith(", 2 threads"))
    assert compiled["n_layer"]["rho"] is None  # one model only: undefined, not zero
    out = root / "report"
    assert (out / "report.md").read_text().count("## AMD") + (out / "report.md").read_text().count("## ") >= 2
    assert len(list(out.glob("decode_vs_layers-*.png"))) == len(machines)


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU: CUDA events, CUDA graphs (reduce-overhead)")
@pytest.mark.family
def test_cuda_cells_finish_or_crash_never_hang(private_models, tmp_path):
    """eager, compile and reduce-overhead + StaticCache on a GPU, at a long decode (128 tokens)."""
    from hubtool.backends import registry
    from hubtool.bench.harness import BenchSettings, bench_models

    folder = private_models("gpt2-25m") / "gpt2-25m"
    settings = BenchSettings(device="cuda", new_tokens=128, warmup=1, repeats=5, processes=1, timeout=420)
    written = bench_models([("gpt2-25m", folder)], backends=registry.parse("eager,compile,compile-ro", default=[]),
                           settings=settings, cache=tmp_path / "cache")
    report = Benchmark.from_file(written["gpt2-25m"])
    assert report.machine.device == "cuda" and report.machine.gpu and "CUDA" in report.machine.name
    for cell in report.cells:
        assert cell.status in ("ok", "crashed"), (cell.backend, cell.reason)
        assert "timed out" not in (cell.reason or ""), cell.backend
        if cell.status == "ok":
            assert "CUDA events" in cell.method and cell.phases["decode"].median > 0
            assert cell.peak_memory_bytes and cell.processes[0].memory_kind == "cuda_max_allocated"
    assert report.cell("eager").status == "ok"


def _vllm() -> bool:
    from hubtool.backends import vllm

    return vllm.available() is None


@pytest.mark.skipif(not _vllm(), reason="vLLM is not installed (make vllm installs its CPU build)")
@pytest.mark.family
@pytest.mark.vllm
def test_vllm_cell_runs_through_the_same_phase_loop(private_models, tmp_path, verify_cache):
    """gpt2-25m through vLLM: the engine stepped as LLM.generate steps it, a stamp per token.
    Parity is test_verify's subject: a fixture verdict of these bytes stands in (no engine start for it)."""
    from hubtool.backends import registry
    from hubtool.bench.harness import BenchSettings, bench_models
    from tests.card_fixtures import verification

    folder = private_models("gpt2-25m") / "gpt2-25m"
    verification(folder, statuses={"vllm": "passed"}).write(folder / "verification.json")
    models = [("gpt2-25m", folder)]
    settings = BenchSettings(prompt_len=8, new_tokens=8, warmup=1, repeats=3, processes=1, timeout=600)
    written = bench_models(models, backends=registry.parse("vllm", default=[]), settings=settings, cache=verify_cache,
                           verify=False)
    cell = Benchmark.from_file(written["gpt2-25m"]).cell("vllm")
    assert cell.status == "ok", cell.reason
    assert "engine stepped" in cell.method
    for phase in ("prefill", "decode", "e2e", "ttft"):
        assert cell.phases[phase].n == 3 and cell.phases[phase].median > 0
    assert cell.phases["itl"].n == 3 * 7
    # A stamp per token: each decode pass of new_tokens + 1 steps gives new_tokens intervals. Inside each
    # request the first token and the gaps after it sum to no more than the request itself. (Orders across
    # phases, e.g. decode below e2e, measure the machine's load between phases; under make test's two
    # workers decode's fastest of 3 was once 153 ms/token against a fastest request of 96 ms.)
    (run,) = cell.processes
    gaps = settings.new_tokens - 1
    assert run.phases["decode"].tokens == [settings.new_tokens] * 3
    e2e, ttft, itl = (run.phases[p].samples for p in ("e2e", "ttft", "itl"))
    for i, whole in enumerate(e2e):
        inside = ttft[i] + sum(itl[gaps * i:gaps * (i + 1)])
        assert 0 < inside <= whole + 1e-6, (i, inside, whole)
    assert cell.parity == "passed" and cell.weight_bytes == 25_016_064 * 4
