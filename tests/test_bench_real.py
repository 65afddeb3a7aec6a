"""A real CPU benchmark of two tiny models (eager, sdpa, compile), then the family report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubtool.build.folder import build_model
from hubtool.spec.catalog import configs_dir
from hubtool.cli.main import cli
from hubtool.spec.model import load_spec

BACKENDS = ["eager", "sdpa", "compile"]
DEEP_BACKENDS = ["eager", "sdpa"]
STATS_KEYS = {"unit", "n", "median", "mean", "stdev", "iqr", "ci95", "p95", "p99", "outliers", "samples"}
CELL_KEYS = {"status", "reason", "parity", "method", "compile_seconds", "first_call_ms", "phases",
             "decode_bandwidth_fraction", "crash_rate"}
REPEATS = 4
# The module's fixture benchmarks two models with a cold torch.compile: 220 s measured under load.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def family(tmp_path_factory, monkeypatch_module):
    """tiny-gpt2 and a deeper, wider tiny sibling, built and benchmarked once for this module."""
    configs = tmp_path_factory.mktemp("configs")
    for name in ("tiny-gpt2.yaml", "family.yaml"):
        shutil.copy(configs_dir() / name, configs / name)
    text = (configs / "tiny-gpt2.yaml").read_text().replace("n_layer: 2", "n_layer: 4").replace("n_embd: 2", "n_embd: 4")
    (configs / "tiny-deep.yaml").write_text(text.replace("n_inner: 8", "n_inner: 16"))
    monkeypatch_module.setenv("HUBTOOL_CONFIGS", str(configs))
    root = tmp_path_factory.mktemp("artifacts")
    for name in ("tiny-gpt2", "tiny-deep"):
        build_model(load_spec(configs / f"{name}.yaml"), root=root)
    common = ["--repeats", str(REPEATS), "--warmup", "1", "--prompt-len", "8", "--new-tokens", "4",
              "--threads", "1", "--out", str(root)]
    result = CliRunner().invoke(cli, ["bench", "tiny-gpt2", "--backend", ",".join(BACKENDS), *common])
    assert result.exit_code == 0, result.output
    # The sibling skips compile: a second cold compile would double this module's runtime.
    sibling = CliRunner().invoke(cli, ["bench", "tiny-deep", "--backend", ",".join(DEEP_BACKENDS), *common])
    assert sibling.exit_code == 0, sibling.output
    return root, result


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.slow
def test_report_has_every_key_of_the_contract(family):
    root, result = family
    report = json.loads((root / "tiny-gpt2" / "benchmark.json").read_text())
    assert report["schema"] == "hubtool.benchmark/1"
    assert report["model"] == "tiny-gpt2" and Path(report["model_dir"]) == root / "tiny-gpt2"
    assert report["created"].endswith("Z") and report["device"] == "cpu"
    assert report["fingerprint"]["libraries"]["torch"].startswith("2.")
    assert report["fingerprint"]["bench"]["compile"]["compile_mode"] == "default"
    s = report["settings"]
    assert {k: s[k] for k in ("prompt_len", "new_tokens", "batch_size", "warmup", "repeats", "seed", "threads")} == {
        "prompt_len": 8, "new_tokens": 4, "batch_size": 1, "warmup": 1, "repeats": REPEATS, "seed": 0, "threads": 1}
    assert sorted(s["order"]) == sorted(BACKENDS)
    assert report["memory_bandwidth_gbps"] > 0.1
    assert set(report["cells"]) == set(BACKENDS)
    for backend, cell in report["cells"].items():
        assert CELL_KEYS <= set(cell), backend
        assert cell["status"] == "ok", (backend, cell["reason"])
        assert cell["parity"] == "passed" and cell["reason"] is None
        assert cell["first_call_ms"] > 0
        assert cell["crash_rate"] == {"prefill": 0.0, "decode": 0.0, "e2e": 0.0}
        assert 0 < cell["decode_bandwidth_fraction"] < 1
        assert "decode" in cell["method"] and "prefill" in cell["method"]
        for phase, unit in (("prefill", "ms"), ("decode", "ms/token"), ("e2e", "ms")):
            stats = cell["phases"][phase]
            assert STATS_KEYS <= set(stats)
            assert stats["unit"] == unit and stats["n"] == REPEATS and len(stats["samples"]) == REPEATS
            assert all(v > 0 for v in stats["samples"])
            assert stats["ci95"][0] <= stats["median"] <= stats["ci95"][1]
            assert stats["p95"] is None and stats["p99"] is None
        # Decode keeps every step: 4 repeats x 4 single-token steps.
        assert [len(steps) for steps in cell["phases"]["decode"]["step_samples"]] == [4] * REPEATS
        assert cell["phases"]["e2e"]["tokens_per_sample"] == 4
    compiled = report["cells"]["compile"]
    assert compiled["compile_seconds"] > 0
    assert compiled["backend_info"]["graphs"] > 0 and compiled["backend_info"]["inductor_graphs"] > 0
    assert report["cells"]["eager"]["compile_seconds"] is None
    # The first (compiling) call is reported apart from, and far above, the steady state.
    assert compiled["first_call_ms"] > 5 * compiled["phases"]["prefill"]["median"]
    verification = json.loads((root / "tiny-gpt2" / "verification.json").read_text())
    assert {verification["backends"][b]["status"] for b in BACKENDS} == {"passed"}
    assert "[3/3] tiny-gpt2" in result.output
    assert "tiny-gpt2: parity compile: passed" in result.output  # verify ran first: no fresh verdict


@pytest.mark.slow
def test_family_report(family):
    root, _ = family
    result = CliRunner().invoke(cli, ["report", "--out", str(root)])
    assert result.exit_code == 0, result.output
    out = root / "report"
    data = json.loads((out / "report.json").read_text())
    rows = {(r["model"], r["backend"]): r for r in data["rows"]}
    assert set(rows) == {("tiny-gpt2", b) for b in BACKENDS} | {("tiny-deep", b) for b in DEEP_BACKENDS}
    assert rows[("tiny-gpt2", "eager")]["parameters"] == 102_714
    assert rows[("tiny-deep", "eager")]["n_layer"] == 4 and rows[("tiny-deep", "eager")]["n_embd"] == 4
    assert data["spearman"]["compile"]["decode"] == {"n_models": 1, "n_layer": None, "parameters": None}
    for backend in DEEP_BACKENDS:
        c = data["spearman"][backend]["decode"]
        assert c["n_models"] == 2
        # Two models: the rank correlation is exactly +1 or -1, and the deeper model is also the
        # bigger one, so both correlations agree.
        assert c["n_layer"] in (1.0, -1.0) and c["parameters"] == c["n_layer"]
    md = (out / "report.md").read_text()
    assert "| tiny-deep | " in md and "decode ms/token" in md and "Spearman" in md
    assert f"{rows[('tiny-gpt2', 'sdpa')]['decode']['median']:.3f}" in md
    for name in ("decode_vs_layers.png", "decode_vs_params.png"):
        png = (out / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
        import matplotlib.image

        assert matplotlib.image.imread(out / name).shape[2] in (3, 4)
    assert "decode Spearman with n_layer" in result.output


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.slow
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU: CUDA events, CUDA graphs (reduce-overhead)")
@pytest.mark.family
def test_cuda_cells_finish_or_crash_never_hang(private_models, tmp_path):
    """eager, compile and reduce-overhead + StaticCache on a GPU, at a long decode (128 tokens)."""
    from hubtool.bench.harness import BenchSettings, bench_models

    folder = private_models("gpt2-25m") / "gpt2-25m"
    settings = BenchSettings(device="cuda", new_tokens=128, warmup=1, repeats=5, timeout=420)
    written = bench_models([("gpt2-25m", folder)], backends=["eager", "compile", "compile-ro"], settings=settings,
                           cache_dir=tmp_path / ".cache")
    report = json.loads(written["gpt2-25m"].read_text())
    assert report["device"] == "cuda" and report["fingerprint"]["gpu"]["name"]
    for backend, cell in report["cells"].items():
        assert cell["status"] in ("ok", "crashed"), (backend, cell["reason"])
        assert "timed out" not in (cell["reason"] or ""), backend
        if cell["status"] == "ok":
            assert "CUDA events" in cell["method"]
            assert cell["phases"]["decode"]["median"] > 0
    assert report["cells"]["eager"]["status"] == "ok"
    ro = report["cells"]["compile-ro"]
    assert ro["status"] == "crashed" or "StaticCache" in ro["method"]


def _vllm() -> bool:
    from hubtool.backends import vllm

    return vllm.available()


@pytest.mark.slow
@pytest.mark.skipif(not _vllm(), reason="vLLM is not installed (make vllm installs its CPU build)")
@pytest.mark.family
@pytest.mark.vllm
def test_vllm_cell_uses_request_metrics(private_models, tmp_path):
    """gpt2-25m through vLLM: phases from its request timestamps (one engine start: a minute)."""
    from hubtool.bench.harness import BenchSettings, bench_models

    models = [("gpt2-25m", private_models("gpt2-25m") / "gpt2-25m")]
    settings = BenchSettings(prompt_len=8, new_tokens=8, warmup=1, repeats=3, threads=1, timeout=400)
    written = bench_models(models, backends=["vllm"], settings=settings, cache_dir=tmp_path / ".cache")
    cell = json.loads(written["gpt2-25m"].read_text())["cells"]["vllm"]
    assert cell["status"] == "ok", cell["reason"]
    assert "first_token_ts" in cell["method"]
    for phase in ("prefill", "decode", "e2e"):
        assert cell["phases"][phase]["n"] == 3 and cell["phases"][phase]["median"] > 0
    # Decode per token is well below the whole request's time.
    assert cell["phases"]["decode"]["median"] < cell["phases"]["e2e"]["median"]
    assert cell["parity"] == "passed"
