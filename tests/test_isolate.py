"""hubtool.runtime.isolate: a worker's crash, hang or exception is recorded, never raised."""

from __future__ import annotations

import os
import time

import pytest

from hubtool.runtime.isolate import run_isolated


def test_ok_result_env_and_threads(tmp_path):
    res = run_isolated("tests.isolate_workers:add", {"a": 2, "b": 40}, timeout=60, cache_dir=tmp_path, threads=1)
    assert res.status == "ok", res.stderr_tail
    assert res.exit_code == 0
    assert res.result["sum"] == 42
    assert res.result["pid"] != os.getpid()
    assert res.result["tmpdir"] == str(tmp_path.resolve() / "tmp")
    assert res.result["inductor"] == str(tmp_path.resolve() / "inductor")
    assert res.result["omp"] == "1"
    assert res.seconds > 0
    # the per-run scratch folder is removed; the cache folders stay for the next run
    assert not list(tmp_path.glob("run-*"))


def test_torch_threads_are_fixed(tmp_path):
    res = run_isolated("tests.isolate_workers:torch_threads", timeout=120, cache_dir=tmp_path, threads=1)
    assert (res.status, res.result) == ("ok", 1)


def test_killed_child_is_crashed_with_stderr(tmp_path):
    res = run_isolated("tests.isolate_workers:kill_self", timeout=60, cache_dir=tmp_path)
    assert res.status == "crashed"
    assert res.exit_code == -9
    assert "dying loudly" in res.stderr_tail
    assert res.result is None


def test_exception_is_crashed_with_traceback_tail(tmp_path):
    res = run_isolated("tests.isolate_workers:fail", timeout=60, cache_dir=tmp_path)
    assert res.status == "crashed"
    assert res.exit_code == 1
    assert "ValueError: worker refused: bad input 42" in res.stderr_tail


def test_hang_times_out_and_is_killed(tmp_path):
    start = time.perf_counter()
    res = run_isolated("tests.isolate_workers:hang", {"seconds": 120}, timeout=3, cache_dir=tmp_path)
    assert res.status == "timeout"
    assert res.exit_code == -9
    assert 3 <= res.seconds < 30
    assert time.perf_counter() - start < 30


def test_forked_from_preloaded_server(tmp_path):
    """With preload, runs are forked: a separate process per run, the same outcomes."""
    pids = []
    ok = run_isolated("tests.isolate_workers:add", {"a": 1, "b": 2}, timeout=60, cache_dir=tmp_path,
                      threads=1, preload=("json",), on_start=pids.append)
    assert ok.status == "ok", ok.stderr_tail
    assert ok.result["sum"] == 3 and ok.result["pid"] == pids[0] != os.getpid()
    assert ok.result["tmpdir"] == str(tmp_path.resolve() / "tmp") and ok.result["omp"] == "1"
    killed = run_isolated("tests.isolate_workers:kill_self", timeout=60, cache_dir=tmp_path, preload=("json",))
    assert (killed.status, killed.exit_code) == ("crashed", -9)
    assert "dying loudly" in killed.stderr_tail
    failed = run_isolated("tests.isolate_workers:fail", timeout=60, cache_dir=tmp_path, preload=("json",))
    assert (failed.status, failed.exit_code) == ("crashed", 1)
    assert "ValueError: worker refused: bad input 42" in failed.stderr_tail
    hung = run_isolated("tests.isolate_workers:hang", {"seconds": 120}, timeout=2, cache_dir=tmp_path,
                        preload=("json",))
    assert (hung.status, hung.exit_code) == ("timeout", -9)


def test_forked_workers_leave_what_they_inherit_to_the_collector_frozen(tmp_path):
    """A forked worker freezes the server's objects (modules, classes): a full collection, which bench
    makes before each phase, walks only what the worker made. A fresh interpreter freezes nothing."""
    fresh = run_isolated("tests.isolate_workers:gc_state", timeout=60, cache_dir=tmp_path)
    forked = run_isolated("tests.isolate_workers:gc_state", timeout=60, cache_dir=tmp_path, preload=("json",))
    assert fresh.status == forked.status == "ok", (fresh.stderr_tail, forked.stderr_tail)
    assert fresh.result["frozen"] == 0
    # The server imported hubtool.runtime.isolate and its standard-library modules: thousands of objects.
    assert forked.result["frozen"] > 5_000
    assert forked.result["walked"] < fresh.result["walked"] / 2


def test_fork_server_is_killed_with_its_parent_not_left_to_unwind(tmp_path):
    """A command that forked workers exits without its fork server outliving it: left to unwind (with
    torch, about 1.5 s), the server held the command's stdout open, and `out=$(hubtool ...)` waited."""
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from multiprocessing import forkserver\n"
        "from hubtool.runtime.isolate import run_isolated\n"
        "if __name__ == '__main__':\n"
        "    ok = run_isolated('tests.isolate_workers:add', {'a': 1, 'b': 2}, timeout=60, cache_dir=Path(sys.argv[1]),\n"
        "                      preload=('tests.forkserver_marker',))\n"
        "    print(ok.status, ok.result['sum'], forkserver._forkserver._forkserver_pid)\n"
    )
    root = Path(__file__).resolve().parent.parent
    marker = tmp_path / "unwound"
    env = {**os.environ, "HUBTOOL_TEST_UNWOUND": str(marker),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "work")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    status, total, server = done.stdout.split()
    assert (status, total) == ("ok", "3")
    assert not marker.exists(), marker.read_text()
    with pytest.raises(ProcessLookupError):  # gone (and reaped) by the time the pipe closed
        os.kill(int(server), 0)


@pytest.mark.parametrize("preload", [(), ("json",)], ids=["interpreter", "forked"])
def test_ctrl_c_the_moment_a_child_starts_kills_it(tmp_path, preload):
    """A Ctrl-C can land before the child has made its own process group (its first step):
    the child must die all the same, and the caller must not wait for its work."""
    pids: list[int] = []

    def interrupted(pid: int) -> None:
        pids.append(pid)
        raise KeyboardInterrupt

    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_isolated("tests.isolate_workers:hang", {"seconds": 120}, timeout=300, cache_dir=tmp_path,
                     preload=preload, on_start=interrupted)
    assert time.perf_counter() - start < 30
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)  # gone, and reaped


def test_kill_running_takes_down_other_threads_children(tmp_path):
    """What verify --jobs does on Ctrl-C: the thread that took it kills the children other threads wait on."""
    import threading

    from hubtool.runtime.isolate import kill_running

    started = threading.Event()
    results = []

    def run() -> None:
        results.append(run_isolated("tests.isolate_workers:hang", {"seconds": 120}, timeout=300,
                                    cache_dir=tmp_path, on_start=lambda pid: started.set()))

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(60)
    assert kill_running() == 1
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert (results[0].status, results[0].exit_code) == ("crashed", -9)
    assert kill_running() == 0


@pytest.mark.slow
def test_forked_torch_workers_start_with_inductor_s_machine_checks_done(tmp_path):
    """The fork server works out once which vector instruction sets Inductor can build (a dry build
    and a loading process per set, about 1.2 s): forked workers start knowing the answer, and it is
    the one a fresh interpreter works out. The server's dry builds and the precompiled header a
    forked worker's kernel build makes (150 MB) go to hubtool's compile cache, not torch's /tmp folder."""
    import json
    import math
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from hubtool.runtime.isolate import run_isolated\n"
        "from hubtool.verify.run import torch_preload\n"
        "if __name__ == '__main__':\n"
        "    runs = [run_isolated('tests.isolate_workers:inductor_isas', timeout=300, cache_dir=Path(sys.argv[1]),\n"
        "                         preload=preload) for preload in ((), torch_preload(compiled=True))]\n"
        "    runs.append(run_isolated('tests.isolate_workers:compile_small', timeout=300,\n"
        "                             cache_dir=Path(sys.argv[1]), preload=torch_preload(compiled=True)))\n"
        "    print(json.dumps([[r.status, r.result, r.stderr_tail] for r in runs]))\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "HUBTOOL_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "work")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (fresh_status, fresh, fresh_err), (forked_status, forked, forked_err), (small_status, small, small_err) = (
        json.loads(done.stdout.splitlines()[-1]))
    assert fresh_status == "ok", fresh_err
    assert forked_status == "ok", forked_err
    assert fresh["known_at_start"] is False
    assert forked["known_at_start"] is True
    assert forked["isas"] == fresh["isas"]
    assert list((tmp_path / "cache" / "compile" / "inductor").rglob("*.so")), "the server's dry builds are elsewhere"
    assert small_status == "ok", small_err
    assert small == pytest.approx(float(64 * math.sin(2.0)), rel=1e-5)
    assert list((tmp_path / "cache" / "compile").rglob("*.gch")), "the precompiled header went elsewhere"
