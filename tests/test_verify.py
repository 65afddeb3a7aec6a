"""hubtool verify on real built models: every backend, real torch.compile, real vLLM CPU build."""

from __future__ import annotations

import json
import os
import signal

import pytest
from click.testing import CliRunner

from hubtool.backends import vllm as vllm_backend
from hubtool.cli.main import cli
from hubtool.verify.run import SCHEMA, verify_target
from tests.conftest import linked_copy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # torch.compile, cold, on a loaded CPU
HAS_VLLM = vllm_backend.available()
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (make vllm installs its CPU build)")
REPORT_KEYS = {"schema", "target", "model_dir", "repo_id", "revision", "created", "fingerprint", "tolerances",
               "weights", "backends", "card_audit", "status"}
CELL_KEYS = {"status", "reason", "metrics", "seconds", "exit_code", "stderr_tail"}


def assert_torch_parity(cell: dict, *, exact: bool = False) -> None:
    m = cell["metrics"]
    assert cell["status"] == "passed", cell
    assert cell["reason"] is None and cell["exit_code"] == 0 and cell["stderr_tail"] is None
    assert cell["seconds"] > 0
    if exact:  # eager is the reference; a repeated forward is deterministic to the bit
        assert m["max_abs_diff"] == 0.0 and m["rmse_ratio"] == 1.0 and m["repeat_max_abs_diff"] == 0.0
    else:
        assert 0.0 < m["max_abs_diff"] < 1e-4
        assert 0.5 < m["rmse_ratio"] < 2.0
    assert m["compared"] == 50257 * sum(n + 8 for n in m["prompt_tokens"])
    assert len(m["prompt_tokens"]) == 3 and len(set(m["prompt_tokens"])) == 3
    assert m["top1_agreement"] == 1.0 and m["top1_disagreements"] == 0
    assert m["greedy_flips"] == 0 and m["greedy_tokens_compared"] >= 8


def assert_compiled(cell: dict) -> None:
    m = cell["metrics"]
    assert m["compiler_backend"] == "inductor"
    assert m["graphs"] > 0 and m["inductor_graphs"] == m["graphs"]
    assert m["failed_frames"] == 0 and m["graph_breaks"] == 0
    assert m["recompiles"] >= 0 and m["compile_seconds"] > 0
    assert m["fxgraph_cache_hits"] + m["fxgraph_cache_misses"] >= m["graphs"]


@pytest.fixture(scope="module")
def warm_verify_cache(verify_cache, tiny_dir, tmp_path_factory):
    """The run's compile cache after one compile of tiny-gpt2 in it: what a user's second verify
    finds. (Cheap when an earlier test already compiled tiny-gpt2 there.)"""
    folder = linked_copy(tiny_dir, tmp_path_factory.mktemp("warm") / "tiny-gpt2")
    report = verify_target(str(folder), backends="compile", cache_dir=verify_cache, out_json=folder / "r.json")
    assert report["backends"]["compile"]["status"] == "passed", report["backends"]["compile"]
    return verify_cache


@pytest.mark.vllm  # tries vLLM when installed (tiny-gpt2 is refused)
def test_tiny_gpt2_every_backend(tiny_copy, verify_cache):
    seen = []
    report = verify_target(str(tiny_copy), cache_dir=verify_cache,
                           progress=lambda event, backend, cell: seen.append((event, backend)))
    assert set(report) - {"report_path"} == REPORT_KEYS
    assert report["schema"] == SCHEMA and report["repo_id"] is None
    saved = json.loads((tiny_copy / "verification.json").read_text())
    assert saved["backends"].keys() == report["backends"].keys() == {"eager", "sdpa", "compile", "vllm"}
    assert report["weights"]["status"] == "passed"
    assert {c["name"] for c in report["weights"]["checks"] if c["status"] == "passed"} >= {
        "bit-identical to build", "tied weights", "tensor names", "dtype", "config matches spec", "reloaded tensors"}
    tol = report["tolerances"]
    assert tol["logits_max_abs_diff"] == 1e-4 and tol["near_tie_epsilon"] == 2e-4 and tol["greedy_new_tokens"] == 8
    cells = report["backends"]
    assert all(set(c) >= CELL_KEYS for c in cells.values())
    assert_torch_parity(cells["eager"], exact=True)
    assert_torch_parity(cells["sdpa"])
    assert_torch_parity(cells["compile"])
    assert_compiled(cells["compile"])
    if HAS_VLLM:
        assert cells["vllm"]["status"] == "unsupported"
        assert cells["vllm"]["reason"].startswith("Unsupported CPU attention configuration: head_dim=1")
    else:
        assert cells["vllm"]["status"] == "unavailable"
    assert report["status"] == "passed"  # unsupported does not fail the report
    assert report["fingerprint"]["libraries"]["torch"].startswith("2.")
    assert [b for e, b in seen if e == "done"] == ["eager", "sdpa", "compile", "vllm"]
    assert [b for e, b in seen if e == "start"] == ["eager", "sdpa", "compile", "vllm"][:4 if HAS_VLLM else 3]


def test_killed_backend_is_crashed_while_others_complete(tiny_copy, warm_verify_cache, tmp_path):
    def progress(event, backend, data):
        if event == "start" and backend == "sdpa":
            # At once, while the worker is still loading: a delay races its ~0.3 s run.
            os.kill(data["pid"], signal.SIGKILL)

    report = verify_target(str(tiny_copy), backends="eager,sdpa,compile", cache_dir=warm_verify_cache,
                           out_json=tmp_path / "r.json", progress=progress)
    cells = report["backends"]
    assert cells["sdpa"]["status"] == "crashed"
    assert cells["sdpa"]["exit_code"] == -9
    assert cells["sdpa"]["reason"] == "worker process killed by signal 9"
    assert cells["sdpa"]["metrics"] == {}
    assert cells["eager"]["status"] == "passed"
    assert cells["compile"]["status"] == "passed"
    assert_compiled(cells["compile"])
    assert cells["compile"]["metrics"]["fxgraph_cache_hits"] > 0  # warm: warm_verify_cache compiled tiny-gpt2 there
    assert report["status"] == "failed"
    assert json.loads((tmp_path / "r.json").read_text())["backends"]["sdpa"]["status"] == "crashed"


@pytest.mark.family
@pytest.mark.vllm
def test_gpt2_25m_cli_every_backend(private_models, verify_cache, tmp_path):
    built_root = private_models("gpt2-25m")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli, ["verify", "gpt2-25m", "--out", str(built_root), "--json", str(out)],
        env={"HUBTOOL_CACHE": str(verify_cache)},
    )
    assert result.exit_code == 0, result.output
    for backend in ("eager", "sdpa", "compile"):
        assert f"gpt2-25m: {backend:<8} passed" in result.output
    report = json.loads(out.read_text())
    assert report["target"] == "gpt2-25m" and report["status"] == "passed"
    cells = report["backends"]
    assert_torch_parity(cells["eager"], exact=True)
    assert_torch_parity(cells["sdpa"])
    assert_torch_parity(cells["compile"])
    assert_compiled(cells["compile"])
    if not HAS_VLLM:
        assert cells["vllm"]["status"] == "unavailable"
        pytest.skip("vLLM is not installed (make vllm installs its CPU build)")
    vllm = cells["vllm"]
    assert vllm["status"] == "passed", vllm
    m = vllm["metrics"]
    assert 0.0 < m["prompt_logprob_max_abs_diff"] < 1e-4
    assert m["prompt_logprob_compared"] == sum(n + 8 - 1 for n in m["prompt_tokens"])
    assert m["generated_logprob_compared"] == 24 and m["generated_logprob_max_abs_diff"] < 1e-4
    assert m["top1_agreement"] == 1.0 and m["greedy_flips"] == 0
    assert "gpt2-25m: vllm     passed" in result.output


@needs_vllm
@pytest.mark.family
@pytest.mark.vllm
def test_gpt2_100m_vllm_is_unsupported_with_its_reason(gpt2_100m_dir, verify_cache, tmp_path):
    folder = gpt2_100m_dir  # read-only: the report goes to tmp_path
    report = verify_target(str(folder), backends="vllm", cache_dir=verify_cache, out_json=tmp_path / "r.json")
    cell = report["backends"]["vllm"]
    assert cell["status"] == "unsupported"
    assert cell["reason"].startswith("Unsupported CPU attention configuration: head_dim=384")
    assert report["weights"]["status"] == "passed" and report["status"] == "passed"
