"""The fingerprint every report carries: what changes results is recorded, and a machine is named and
identified by its configuration (pure functions of a fingerprint: no GPU is faked)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hubtool.bench.machine import machine_of
from hubtool.runtime.cache import compile_cache
from hubtool.runtime.isolate import run_isolated
from tests.conftest import REPO

CPU = {"cpu": {"model": "AMD EPYC 7763 64-Core Processor", "torch_threads": 2, "isa": ["avx2", "fma"]},
       "gpu": None, "libraries": {"torch": "2.13.0+cpu", "transformers": "5.19.0", "triton": None}}


@pytest.mark.slow
def test_fingerprint_records_what_changes_results(tmp_path: Path) -> None:
    res = run_isolated("hubtool.bench.machine:probe_machine", {"device": "cpu"}, timeout=300,
                       cache_dir=compile_cache(tmp_path), threads=1,
                       env={"TORCHINDUCTOR_MAX_AUTOTUNE": "1", "PYTHONPATH": str(REPO), "UNRELATED_VAR": "x"})
    assert res.status == "ok", res.stderr_tail
    fp = res.result["fingerprint"]
    env = fp["environment"]
    assert env["TORCHINDUCTOR_MAX_AUTOTUNE"] == "1" and env["PYTHONPATH"] == str(REPO)
    assert env["OMP_NUM_THREADS"] == "1" and env["TORCHINDUCTOR_CACHE_DIR"].endswith("inductor")
    assert "UNRELATED_VAR" not in env
    assert fp["cpu"]["torch_threads"] == 1 and fp["load_average"] is not None and fp["load_average"] >= 0
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if " avx2 " in flags:
        assert "avx2" in fp["cpu"]["isa"]
    assert fp["precision"]["float32_matmul_precision"] in ("highest", "high", "medium")
    assert res.result["bandwidth"]["peak_gbps"] > 0


def test_untracked_files_under_hubtool_make_the_source_dirty(tmp_path: Path) -> None:
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs hubtool's own git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    probe = [sys.executable, "-c", "from hubtool.runtime.environment import hubtool_identity as h; print(h())"]
    env = {**os.environ, "PYTHONPATH": str(clone)}
    clean = subprocess.run(probe, env=env, capture_output=True, text=True, check=True, cwd=clone).stdout
    assert "'git_dirty': False" in clean and "'untracked': 0" in clean
    (clone / "hubtool" / "injected.py").write_text("X = 1\n")
    dirty = subprocess.run(probe, env=env, capture_output=True, text=True, check=True, cwd=clone).stdout
    assert "'git_dirty': True" in dirty and "'untracked': 1" in dirty


def test_a_machine_is_its_configuration() -> None:
    two = machine_of(CPU, device="cpu")
    assert two.name == "AMD EPYC 7763 64-Core, 2 threads" and two.id.startswith("cpu-") and two.threads == 2
    one = machine_of({**CPU, "cpu": {**CPU["cpu"], "torch_threads": 1}}, device="cpu")
    assert one.name.endswith(", 1 thread") and one.id != two.id  # another thread count, another configuration
    newer = machine_of({**CPU, "libraries": {**CPU["libraries"], "torch": "2.14.0"}}, device="cpu")
    assert newer.id != two.id and newer.name == two.name
    assert machine_of(CPU, device="cpu").id == two.id  # the same configuration, the same file


def test_a_gpu_machine_is_named_by_its_gpu_and_cuda() -> None:
    gpu = {**CPU, "gpu": {"name": "NVIDIA H100 80GB HBM3", "cuda": "12.8", "driver": "570.86.15", "count": 1}}
    machine = machine_of(gpu, device="cuda")
    assert machine.name == "NVIDIA H100 80GB HBM3, CUDA 12.8" and machine.id.startswith("cuda-")
    assert (machine.gpu, machine.cuda, machine.driver) == ("NVIDIA H100 80GB HBM3", "12.8", "570.86.15")
    other_driver = machine_of({**gpu, "gpu": {**gpu["gpu"], "driver": "580.1"}}, device="cuda")
    assert other_driver.id != machine.id
    assert machine_of(gpu, device="cpu").gpu is None  # a CPU run on a GPU machine is a CPU configuration
