"""hubtool verify on real built models: every backend, real torch.compile, real vLLM CPU build."""

from __future__ import annotations

import json
import os
import signal

import pytest
from click.testing import CliRunner

from hubtool.backends import vllm as vllm_backend
from hubtool.cli.main import cli
from hubtool.evidence.verification import Verification
from hubtool.verify.judge import RATIO
from hubtool.verify.run import verify_target
from tests.conftest import linked_copy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # torch.compile, cold, on a loaded CPU
HAS_VLLM = vllm_backend.available() is None
GROUPS = ("logits", "batch", "probe")


def assert_torch_parity(verdict, *, exact: bool = False) -> None:
    m = verdict.metrics
    assert verdict.status == "passed", verdict
    assert verdict.reason is None and verdict.exit_code == 0 and verdict.stderr_tail is None
    assert verdict.seconds > 0
    for group in GROUPS:
        g = m["groups"][group]
        assert g["compared"] > 0
        if exact:  # eager is the reference: its error is eager's own error, to the bit
            assert g["max_abs_diff"] == 0.0 and g["rmse_ratio"] == 1.0
        else:
            assert 0.0 <= g["max_abs_diff"] < 1e-4
            assert 0.5 < g["rmse_ratio"] < RATIO
    if exact:
        assert m["repeat_max_abs_diff"] == 0.0
    assert m["groups"]["logits"]["compared"] == 50257 * sum(n + 8 for n in m["prompt_tokens"])
    assert len(m["prompt_tokens"]) == 3 and len(set(m["prompt_tokens"])) == 3
    assert m["top1_agreement"] == 1.0 and m["top1_disagreements"] == 0
    assert m["greedy_flips"] == 0 and m["greedy_tokens_compared"] >= 8
    assert m["generate_flips"] == 0 and m["generate_tokens_compared"] >= 8


def assert_compiled(verdict) -> None:
    info = verdict.info
    assert info["compiler_backend"] == "inductor" and info["compile_dynamic"] is True
    assert info["graphs"] > 0 and info["inductor_graphs"] == info["graphs"]
    assert info["failed_frames"] == 0 and info["graph_breaks"] == 0
    assert info["compile_seconds"] > 0
    assert info["fxgraph_cache_hits"] + info["fxgraph_cache_misses"] >= info["graphs"]
    assert info["output_code_modules"] >= info["graphs"]  # Inductor's own evidence that it made the code
    # Two no-cache forwards (one prompt, a padded batch), then decoding's prefill, first cached step
    # and later steps, shared by the greedy loop and generate() (hubtool.backends.decoding).
    assert info["graphs"] == 5


@pytest.fixture(scope="module")
def warm_verify_cache(verify_cache, tiny_dir, tmp_path_factory):
    """The run's compile cache after one compile of tiny-gpt2 in it: what a user's second verify
    finds. (Cheap when an earlier test already compiled tiny-gpt2 there.)"""
    folder = linked_copy(tiny_dir, tmp_path_factory.mktemp("warm") / "tiny-gpt2")
    report, _ = verify_target(str(folder), backends="compile", cache_dir=verify_cache, output=folder / "r.json")
    assert report.backends["compile"].status == "passed", report.backends["compile"]
    return verify_cache


@pytest.mark.vllm  # tries vLLM when installed (tiny-gpt2 is refused)
def test_tiny_gpt2_every_backend(tiny_copy, warm_verify_cache):
    seen = []
    report, path = verify_target(str(tiny_copy), cache_dir=warm_verify_cache,
                                 progress=lambda event, backend, data: seen.append((event, backend)))
    assert path == tiny_copy / "verification.json"
    saved = Verification.from_file(path)
    assert saved == report and set(saved.backends) == {"eager", "sdpa", "compile", "vllm"}
    assert report.source.kind == "folder" and report.subject["model.safetensors"] and report.subject["config.json"]
    assert report.files_status == "passed" and report.unverified == []
    passed = {c.name for c in report.checks if c.status == "passed"}
    assert passed >= {"bit-identical to build", "tied weights", "tensor names", "dtype", "config matches spec",
                      "reloaded tensors", "files match provenance", "tokenizer matches config",
                      "tokenizer identity", "regenerated from spec and seed", "config as the spec writes it"}
    tol = report.tolerances
    assert tol["ratio"] == RATIO and tol["greedy_new_tokens"] == 8 and tol["graph_breaks_allowed"] == 0
    assert_torch_parity(report.backends["eager"], exact=True)
    assert_torch_parity(report.backends["sdpa"])
    assert_torch_parity(report.backends["compile"])
    assert_compiled(report.backends["compile"])
    vllm = report.backends["vllm"]
    if HAS_VLLM:  # vLLM's own refusal, in a sentence, with its raw message kept
        assert (vllm.status, vllm.reason) == ("unsupported", "vLLM's CPU attention does not run head size 1")
        assert vllm.raw_reason.startswith("Unsupported CPU attention configuration: head_dim=1")
    else:
        assert vllm.status == "unavailable" and "install" not in vllm.reason
    assert report.status == "passed"  # unsupported does not fail the report
    # head_dim 1: the blind spot is said, not hidden.
    blind = {c.bug_class: c for c in report.coverage if not c.visible}
    assert "invisible at head_dim 1" in blind["attention score scaling (1/sqrt(d) vs 1/d vs none)"].how
    assert [b for e, b in seen if e == "done"] == ["eager", "sdpa", "compile", "vllm"]


def test_killed_backend_is_crashed_while_others_complete(tiny_copy, warm_verify_cache, tmp_path):
    def progress(event, backend, data):
        if event == "start" and backend == "sdpa":
            # At once, while the worker is still loading: a delay races its run.
            os.kill(data["pid"], signal.SIGKILL)

    report, _ = verify_target(str(tiny_copy), backends="eager,sdpa,compile", cache_dir=warm_verify_cache,
                              output=tmp_path / "r.json", progress=progress)
    sdpa = report.backends["sdpa"]
    assert (sdpa.status, sdpa.exit_code, sdpa.reason) == ("crashed", -9, "worker process killed by signal 9")
    assert sdpa.metrics == {}
    assert report.backends["eager"].status == "passed"
    compiled = report.backends["compile"]
    assert compiled.status == "passed"
    assert_compiled(compiled)
    assert compiled.info["fxgraph_cache_hits"] > 0  # warm: warm_verify_cache compiled tiny-gpt2 there
    assert compiled.info["inductor_cache_dir"] == str(warm_verify_cache / "compile" / "inductor")
    assert report.status == "crashed"  # nothing found wrong, but a backend could not run
    assert json.loads((tmp_path / "r.json").read_text())["backends"]["sdpa"]["status"] == "crashed"


@pytest.mark.family
@pytest.mark.vllm
def test_gpt2_25m_cli_torch_and_vllm(private_models, verify_cache, tmp_path):
    """A real head size (64) through the CLI: eager, SDPA and vLLM (compile on tiny-gpt2 above)."""
    root = private_models("gpt2-25m")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(cli, ["verify", "gpt2-25m", "--backend", "eager,sdpa,vllm", "--out", str(root),
                                      "--output", str(out)], env={"HUBTOOL_CACHE": str(verify_cache)})
    assert result.exit_code == 0, result.output
    for backend in ("eager", "sdpa"):
        assert f"gpt2-25m: {backend:<8} passed" in result.output
    report = Verification.from_file(out)
    assert report.target == "gpt2-25m" and report.status == "passed" and report.source.kind == "spec"
    assert "compile" not in report.backends  # not asked for: absent, never "passed"
    assert_torch_parity(report.backends["eager"], exact=True)
    assert_torch_parity(report.backends["sdpa"])
    assert all(c.visible for c in report.coverage if c.bug_class.startswith("attention"))
    if not HAS_VLLM:
        assert report.backends["vllm"].status == "unavailable"
        pytest.skip("vLLM is not installed (make vllm installs its CPU build)")
    vllm = report.backends["vllm"]
    assert vllm.status == "passed", vllm
    m = vllm.metrics["groups"]
    assert 0.0 < m["prompt_logprobs"]["max_abs_diff"] < 1e-4
    assert m["prompt_logprobs"]["compared"] == sum(n + 8 - 1 for n in vllm.metrics["prompt_tokens"])
    assert m["generated_logprobs"]["compared"] == 24
    assert m["probe_logprobs"]["compared"] > 0 and m["probe_logprobs"]["rmse_ratio"] < RATIO
    # One engine start: the probe's weights reloaded into the running engine. Had they not changed,
    # the probe (sharper attention) would be far from its own reference, not within RATIO.
    assert vllm.info["probe_weights"] == "reloaded in place"
    assert vllm.metrics["top1_agreement"] == 1.0 and vllm.metrics["greedy_flips"] == 0
    assert "gpt2-25m: vllm     passed" in result.output



def test_jobs_overlap_targets_and_change_no_report(tiny_dir, warm_verify_cache, tmp_path):
    """--jobs 2: two targets' workers run at once, and each report equals a run on its own."""
    import time

    from hubtool.verify.run import verify_targets

    folders = [linked_copy(tiny_dir, tmp_path / name / "tiny-gpt2") for name in ("a", "b")]
    events: list[tuple[float, str, str, str]] = []

    def progress_for(target):
        return lambda event, backend, data: events.append((time.monotonic(), target, event, backend))

    results = list(verify_targets([str(f) for f in folders], jobs=2, progress_for=progress_for,
                                  backends="eager,compile", cache_dir=warm_verify_cache))
    assert [t for t, _, _ in results] == [str(f) for f in folders]  # in the order given
    alone, _ = verify_target(str(folders[0]), backends="eager,compile", cache_dir=warm_verify_cache,
                             output=tmp_path / "alone.json")
    for _, report, path in results:
        assert path.is_file() and report.status == "passed"
        for name in ("eager", "compile"):
            assert report.backends[name].metrics == alone.backends[name].metrics
    # Overlap: the second target's reference started before the first target's last worker ended.
    second_start = min(t for t, target, event, _ in events if target == str(folders[1]) and event == "start")
    first_end = max(t for t, target, event, _ in events if target == str(folders[0]) and event == "done")
    assert second_start < first_end


def _processes_using(path: str) -> list[int]:
    """Live processes whose environment mentions ``path`` (an isolated worker's cache folder)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as handle:
                    if path.encode() in handle.read():
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_ctrl_c_with_jobs_kills_every_worker_and_writes_nothing(tiny_dir, tmp_path):
    """Ctrl-C while two targets compile at once: exit 130, no worker left, no report written.

    The workers run in sessions of their own, so the terminal's signal reaches only hubtool;
    it must take down the worker of the other thread too. Readiness is the child's own
    progress line for each compile stage, not a sleep.
    """
    import subprocess
    import sys
    import threading
    import time

    folders = [linked_copy(tiny_dir, tmp_path / name / "tiny-gpt2") for name in ("a", "b")]
    cache = tmp_path / "cache"  # cold: the compiles run long enough to be interrupted
    proc = subprocess.Popen([sys.executable, "-m", "hubtool", "verify", *map(str, folders), "--backend",
                             "eager,compile", "--jobs", "2"], env={**os.environ, "HUBTOOL_CACHE": str(cache)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    compiling = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if sum("verify compile started" in seen for seen in lines) == 2:
                compiling.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert compiling.wait(300), "".join(lines[-20:])
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("hubtool verify --jobs 2 still ran 60 s after Ctrl-C:\n" + "".join(lines[-20:]))
        waited = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    assert proc.returncode == 130, "".join(lines[-20:])
    assert waited < 30  # the cold compiles had minutes to go
    assert "Traceback" not in "".join(lines)
    deadline = time.monotonic() + 15  # the forkserver notices its parent is gone on its own
    while _processes_using(str(cache)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_using(str(cache)) == []
    assert not any((f / "verification.json").exists() for f in folders)
