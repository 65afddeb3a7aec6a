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

import atexit
import gc
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hubtool.runtime import interrupt

STDERR_TAIL_CHARS = 4000
CAUSE_SCAN_CHARS = 200_000
# "SomeError: message" at the start of a line, as a traceback ends; warnings are not causes.
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit|Failure)(?::.*)?$")


def root_cause(stderr: str) -> str | None:
    """The line naming the first exception in a child's stderr: the cause, not the last words.

    Python prints a chain of exceptions cause first, and libraries add boilerplate after
    the last one (PyTorch's "Set TORCHDYNAMO_VERBOSE=1 ..."), so the last line of stderr is
    rarely what went wrong.
    """
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            for candidate in lines[i + 1:]:
                text = candidate.strip()
                if candidate and not candidate[0].isspace() and _EXCEPTION_LINE.match(text):
                    return text[:500]
    for line in lines:
        if _EXCEPTION_LINE.match(line.strip()) and not line[:1].isspace():
            return line.strip()[:500]
    return None


@dataclass(frozen=True)
class IsolatedResult:
    """What one isolated run produced. ``result`` is the worker's return value when ok."""

    status: str  # "ok" | "crashed" | "timeout"
    result: Any
    exit_code: int | None
    stderr_tail: str | None
    seconds: float
    cause: str | None = None  # the first exception's line in the child's stderr (the root cause)

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
    preload: tuple[str, ...] = (),
    on_start: Callable[[int], None] | None = None,
) -> IsolatedResult:
    """Call ``target(**kwargs)`` in a new process; never raises for what the child does.

    The child runs in its own process group, so engine subprocesses it starts are killed
    with it on timeout, and any it leaves behind are cleaned up after it exits.
    ``preload`` (e.g. ``("torch", "transformers")``) forks the child from a server process
    that imported those modules once, instead of starting a new interpreter: each run is
    still a separate process, without paying seconds of imports every time.
    ``on_start`` receives the child's pid once it runs.
    """
    cache_dir = Path(cache_dir).resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=cache_dir))
    request = run_dir / "request.json"
    result_path = run_dir / "result.json"
    request.write_text(json.dumps({"target": target, "kwargs": kwargs or {}, "result": str(result_path)}))
    environ = child_env(cache_dir=cache_dir, threads=threads, extra=env)
    start = time.perf_counter()
    try:
        with _LIVE_LOCK:
            if interrupt.requested():  # another thread's run was interrupted: start nothing new
                raise KeyboardInterrupt
            child = _start(request, run_dir, environ, preload)
            _LIVE[child.pid] = child
        try:
            if on_start:
                on_start(child.pid)
            code = child.wait(timeout)
        except BaseException:  # Ctrl-C in the caller (or in on_start): take the child down too
            _kill(child)
            child.wait(None)
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.pop(child.pid, None)
        _kill_group(child.pid)
        if interrupt.requested():  # killed by kill_running() from the thread that took the Ctrl-C
            raise KeyboardInterrupt
        timed_out = code is None
        if timed_out:
            code = child.wait(None)
        seconds = time.perf_counter() - start
        tail = _tail(run_dir / "stderr.log")
        cause = root_cause(_tail(run_dir / "stderr.log", CAUSE_SCAN_CHARS) or "")
        if timed_out:
            return IsolatedResult("timeout", None, code, tail, seconds, cause)
        if code == 0 and result_path.is_file():
            try:
                payload = json.loads(result_path.read_text())
            except ValueError:
                return IsolatedResult("crashed", None, code, tail or "unreadable result file", seconds, cause)
            return IsolatedResult("ok", payload["result"], code, tail, seconds)
        return IsolatedResult("crashed", None, code, tail, seconds, cause)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


# Children now running, from any thread: kill_running() takes them down when the command is
# interrupted while several runs go on at once (verify --jobs). The lock also makes a start and
# its registration one step, so no child can start after kill_running() has looked.
_LIVE: dict[int, Any] = {}  # pid -> _Popen or _Forked
_LIVE_LOCK = threading.Lock()


def kill_running() -> int:
    """Kill every isolated child still running (each with its process group); returns how many.

    For the thread that took a Ctrl-C while other threads wait on their children: only the
    main thread sees KeyboardInterrupt, and the children run in sessions of their own, so the
    terminal's signal never reaches them.
    """
    with _LIVE_LOCK:
        running = list(_LIVE.values())
        for child in running:
            _kill(child)
    return len(running)


class _Popen:
    """A fresh interpreter running ``python -m hubtool.runtime.isolate REQUEST``."""

    def __init__(self, request: Path, run_dir: Path, environ: dict[str, str]) -> None:
        with open(run_dir / "stdout.log", "wb") as out, open(run_dir / "stderr.log", "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hubtool.runtime.isolate", str(request)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=environ, start_new_session=True,
            )
        self.pid = self.proc.pid

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        self.proc.kill()  # a no-op once the child is reaped


class _Forked:
    """A child forked from a multiprocessing forkserver that preloaded heavy modules."""

    def __init__(self, request: Path, run_dir: Path, environ: dict[str, str], preload: tuple[str, ...]) -> None:
        context = _forkserver(preload)
        self.proc = context.Process(
            target=_forked_main, args=(str(request), str(run_dir), environ), name="hubtool-isolated"
        )
        self.proc.start()
        self.pid = self.proc.pid

    def wait(self, timeout: float | None) -> int | None:
        self.proc.join(timeout)
        return self.proc.exitcode

    def kill(self) -> None:
        self.proc.kill()  # a no-op once the child is reaped


def _start(request: Path, run_dir: Path, environ: dict[str, str], preload: tuple[str, ...]):
    return _Forked(request, run_dir, environ, preload) if preload else _Popen(request, run_dir, environ)


_FORKSERVER: list[Any] = []  # the one multiprocessing context, once made


def _forkserver(preload: tuple[str, ...]):
    """One forkserver per process: the first caller's preload list is the one it keeps."""
    import multiprocessing

    if not _FORKSERVER:  # callers hold _LIVE_LOCK: one thread makes it
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["hubtool.runtime.isolate", *preload])
        _FORKSERVER.append(context)
        atexit.register(_stop_forkserver)
    return _FORKSERVER[0]


def _stop_forkserver() -> None:
    """Kill the fork server when this process exits, instead of letting it unwind.

    Left alone, the server sees this process go and exits like any interpreter: with torch
    loaded that took about 1.5 s, holding this process's stdout and stderr open all the while,
    so whoever reads them to the end (``out=$(hubtool verify ...)``, CI, subprocess.run) waited
    for it. The server holds nothing to save: its workers have all been reaped by now.
    ``_forkserver_pid`` is multiprocessing's private record of the server (Python 3.8 and later).
    """
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _forked_main(request: str, run_dir: str, environ: dict[str, str]) -> None:
    """Child side of a forked run: own session, own stdout/stderr files, the run's environment."""
    os.setsid()
    for fd, name in ((1, "stdout.log"), (2, "stderr.log")):
        handle = os.open(os.path.join(run_dir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    os.environ.clear()
    os.environ.update(environ)
    tempfile.tempdir = None  # re-read TMPDIR
    # The modules inherited from the server (torch, transformers: about 370,000 objects) live as
    # long as the worker: take them out of the collector's reach. Every full collection walked
    # them all, about 0.25 s each (bench collects before each phase), and wrote to every page it
    # touched, copying the server's memory. gc.freeze only relinks two lists. Measured: a bench
    # process of tiny-gpt2 (eager) 2.0 -> 0.7 s, of gpt2-25m (compile, warm cache) 9.8 -> 7.6 s.
    gc.freeze()
    code = 1
    try:
        code = main(request)
    except BaseException:  # noqa: BLE001 - reported through stderr and the exit code
        import traceback

        traceback.print_exc()
    finally:
        # What a normal interpreter exit does (pools and semaphores are released), then leave
        # without unwinding into the forkserver's own code.
        import atexit
        from multiprocessing import util

        atexit._run_exitfuncs()
        util._exit_function()  # type: ignore[attr-defined]  # private, so typeshed omits it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(child: Any) -> None:
    """Kill a running child and every process in its group.

    The child makes its own group (``setsid``) as its first step, but a kill can come before
    that step (a Ctrl-C right after the child started), when its group does not exist yet: the
    child itself is killed too, through its process object, which never signals a pid that
    was already reaped.
    """
    _kill_group(child.pid)
    child.kill()


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
