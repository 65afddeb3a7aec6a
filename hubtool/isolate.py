"""Run one worker function in a fresh Python process, so a crash or hang cannot take the caller down.

Verify and bench run every backend this way: a segfault in a compiled kernel, an engine
that never returns, or an out-of-memory kill is recorded (status, exit code, stderr tail)
and the other backends go on. The worker is named as ``"package.module:function"`` and
called with JSON-able keyword arguments; it returns a JSON-able value, which comes back
through a file (stdout stays free for the libraries' own chatter).

The child gets ``TMPDIR`` and ``TORCHINDUCTOR_CACHE_DIR`` inside a folder the caller
chooses, so compile caches can be kept and reused between runs, and a fixed CPU thread
count, so timings are comparable.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STDERR_TAIL_CHARS = 4000


def cache_root() -> Path:
    """Where compile caches and run scratch live: HUBTOOL_CACHE, else the user cache folder."""
    env = os.environ.get("HUBTOOL_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hubtool"


@dataclass(frozen=True)
class IsolatedResult:
    """What one isolated run produced. ``result`` is the worker's return value when ok."""

    status: str  # "ok" | "crashed" | "timeout"
    result: Any
    exit_code: int | None
    stderr_tail: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def child_env(*, cache_dir: Path, threads: int | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker: private temp and Inductor cache folders, pinned threads."""
    env = dict(os.environ)
    tmp = cache_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = str(tmp)
    env["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir / "inductor")
    env["TRITON_CACHE_DIR"] = str(cache_dir / "triton")
    if threads:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "HUBTOOL_THREADS"):
            env[name] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_isolated(
    target: str,
    kwargs: dict[str, Any] | None = None,
    *,
    timeout: float,
    cache_dir: Path,
    threads: int | None = None,
    env: dict[str, str] | None = None,
) -> IsolatedResult:
    """Call ``target(**kwargs)`` in a new process; never raises for what the child does.

    The child runs in its own process group, so engine subprocesses it starts are killed
    with it on timeout, and any it leaves behind are cleaned up after it exits.
    """
    cache_dir = Path(cache_dir).resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=cache_dir))
    request = run_dir / "request.json"
    result_path = run_dir / "result.json"
    request.write_text(json.dumps({"target": target, "kwargs": kwargs or {}, "result": str(result_path)}))
    start = time.perf_counter()
    try:
        with open(run_dir / "stdout.log", "wb") as out, open(run_dir / "stderr.log", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hubtool.isolate", str(request)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env=child_env(cache_dir=cache_dir, threads=threads, extra=env),
                start_new_session=True,
            )
            try:
                code: int | None = proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
                code = None
            except BaseException:  # Ctrl-C in the caller: take the child down too
                _kill_group(proc.pid)
                proc.wait()
                raise
            _kill_group(proc.pid)
            if timed_out:
                code = proc.wait()
        seconds = time.perf_counter() - start
        tail = _tail(run_dir / "stderr.log")
        if timed_out:
            return IsolatedResult("timeout", None, code, tail, seconds)
        if code == 0 and result_path.is_file():
            try:
                payload = json.loads(result_path.read_text())
            except ValueError:
                return IsolatedResult("crashed", None, code, tail or "unreadable result file", seconds)
            return IsolatedResult("ok", payload["result"], code, tail, seconds)
        return IsolatedResult("crashed", None, code, tail, seconds)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, chars: int = STDERR_TAIL_CHARS) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    text = data[-chars:].decode("utf-8", errors="replace").strip()
    return text or None


def _apply_threads() -> None:
    threads = os.environ.get("HUBTOOL_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def main(request_path: str) -> int:
    """Child side: import the worker, call it, write its return value atomically."""
    request = json.loads(Path(request_path).read_text())
    _apply_threads()
    module_name, func_name = request["target"].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    result = func(**request["kwargs"])
    out = Path(request["result"])
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps({"result": result}))
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":  # the guard vLLM's engine processes need when they re-import __main__
    sys.exit(main(sys.argv[1]))
